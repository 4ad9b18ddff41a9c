package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

// The chart's release, as the README's helm install names it.
const (
	chartNamespace = "autoscaling"
	chartRelease   = "ra"
	chartFullname  = chartRelease + "-reactive-autoscaler"
)

// installChart installs the chart with helm, as a user would, with the
// image make image built (imported into the node: pull policy Never), the
// local Prometheus at the address pods reach it, and the webhook token
// Alertmanager holds; waits until both pods are Ready and one holds the
// Lease; and points Alertmanager at the chart's webhook Service. It
// returns the leader's pod.
func installChart(ctx context.Context, env *localenv.Env, binDir, chart, tokenFile string) (string, error) {
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return "", err
	}
	fmt.Printf("\nhelm install %s %s --namespace %s --create-namespace --wait --set image.pullPolicy=Never --set prometheus.url=%s --set webhook.token=...\n",
		chartRelease, chart, chartNamespace, env.FromPods(env.PrometheusURL))
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "helm"), "install", chartRelease, chart,
		"--kubeconfig", env.Kubeconfig, "--namespace", chartNamespace, "--create-namespace", "--wait", "--timeout", "3m",
		"--set", "image.pullPolicy=Never", "--set", "prometheus.url="+env.FromPods(env.PrometheusURL),
		"--set", "webhook.token="+strings.TrimSpace(string(token))).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("helm install: %v\n%s\nkubelet:\n%s", err, out, env.Logs("kubelet", 20))
	}
	c, err := env.Client()
	if err != nil {
		return "", err
	}
	var leader string
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		l, err := c.CoordinationV1().Leases(chartNamespace).Get(ctx, chartFullname, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return false, nil
		}
		leader = *l.Spec.HolderIdentity
		return leader != "", nil
	})
	if err != nil {
		return "", fmt.Errorf("no controller pod took Lease %s/%s: %w", chartNamespace, chartFullname, err)
	}
	svc, err := c.CoreV1().Services(chartNamespace).Get(ctx, chartFullname+"-webhook", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	hook := fmt.Sprintf("http://%s:%d/webhook/alertmanager", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port)
	if err := env.ReloadAlertmanager(ctx, localenv.WebhookRoute(hook, tokenFile)); err != nil {
		return "", err
	}
	fmt.Printf("Alertmanager's webhook receiver: %s (the chart's Service)\n", hook)
	return leader, nil
}
