//go:build node

package node

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

// TestTheChartsControllerScalesRealPodsAndFailsOver installs the chart with
// the image make image builds, as a user would: two controller pods on the
// real node (restricted Pod Security, the chart's ServiceAccount, the
// in-cluster API address), one of them leader on the chart's Lease. Under
// 80 requests a second the leader scales web, whose pods serve 25 each and
// shed the rest, to four (five when the rate reads above 80); then the leader's pod is killed (no grace: no
// Lease release), the other pod takes the Lease, and, the load gone, it
// scales web back to one. The host is left as it was.
func TestTheChartsControllerScalesRealPodsAndFailsOver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	n := startNode(ctx, t, &localenv.PrometheusOptions{ScrapeInterval: time.Second}, "reactive-autoscaler-image.tar")
	defer n.env.Stop()
	env, client := n.env, n.client
	svc := n.serveScaledWeb(ctx, t)

	const ns, release, lease = "autoscaling", "ra", "ra-reactive-autoscaler"
	out, err := exec.CommandContext(ctx, filepath.Join(n.bin, "helm"), "install", release, "../../charts/reactive-autoscaler",
		"--kubeconfig", env.Kubeconfig, "--namespace", ns, "--create-namespace",
		"--set", "image.pullPolicy=Never", "--set", "prometheus.url="+env.FromPods(env.PrometheusURL),
		"--set", "leaderElection.leaseDuration=6s", "--set", "leaderElection.renewDeadline=4s").CombinedOutput()
	if err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}
	defer func() {
		if t.Failed() {
			t.Logf("controller pods:\n%s", podLogs(ctx, n, ns))
		}
	}()
	controllers := "app.kubernetes.io/name=reactive-autoscaler"
	readyIn(ctx, t, n, ns, controllers, 2)
	first := holder(ctx, t, n, ns, lease, "")
	t.Logf("leader: %s", first)

	load := newLoad(fmt.Sprintf("http://%s/", svc.Spec.ClusterIP), 80)
	loadCtx, stopLoad := context.WithCancel(ctx)
	go load.run(loadCtx)
	defer stopLoad()
	readyPods(ctx, t, env, client, 4)
	err = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, false, func(context.Context) (bool, error) {
		return load.window(5*time.Second).shed < 0.05, nil
	})
	if err != nil {
		t.Fatalf("four pods still shed %.0f%% of 80 RPS over 5 s", 100*load.window(5*time.Second).shed)
	}

	// Killed as a node failure would: no grace, no Lease release.
	zero := int64(0)
	if err := client.CoreV1().Pods(ns).Delete(ctx, first, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	next := holder(ctx, t, n, ns, lease, first)
	t.Logf("leader after %s was killed: %s", first, next)
	stopLoad()
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, false, func(context.Context) (bool, error) {
		dep, err := client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && *dep.Spec.Replicas == 1, nil
	})
	if err != nil {
		t.Fatalf("the new leader %s did not scale web back to 1 within 3 minutes of the load's end", next)
	}
	if _, err := client.CoreV1().Pods(ns).Get(ctx, next, metav1.GetOptions{}); err != nil {
		t.Fatalf("the leader that scaled down, %s: %v", next, err)
	}
	n.stopAndCompare(t)
}

// readyIn waits until want pods matching selector in ns are Ready.
func readyIn(ctx context.Context, t *testing.T, n *node, ns, selector string, want int) {
	t.Helper()
	var last []string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(context.Context) (bool, error) {
		pods, err := n.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		ready := 0
		last = last[:0]
		for _, p := range pods.Items {
			if podReady(&p) {
				ready++
			}
			last = append(last, fmt.Sprintf("%s %s %s", p.Name, p.Status.Phase, p.Status.Message))
		}
		return ready == want, nil
	})
	if err != nil {
		t.Fatalf("%d pods %s in %s not Ready: %v\nkubelet:\n%s", want, selector, ns, last, n.env.Logs("kubelet", 40))
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// holder waits until the Lease is held by a pod other than not, and
// returns its name.
func holder(ctx context.Context, t *testing.T, n *node, ns, name, not string) string {
	t.Helper()
	var l *coordinationv1.Lease
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		var err error
		if l, err = n.client.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{}); err != nil || l.Spec.HolderIdentity == nil {
			return false, nil
		}
		h := *l.Spec.HolderIdentity
		if h == "" || h == not {
			return false, nil
		}
		_, err = n.client.CoreV1().Pods(ns).Get(ctx, h, metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("no pod other than %q holds Lease %s/%s: %+v", not, ns, name, l)
	}
	return *l.Spec.HolderIdentity
}

// podLogs is the tail of each controller pod's log, for a failure.
func podLogs(ctx context.Context, n *node, ns string) string {
	pods, err := n.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	out := ""
	tail := int64(30)
	for _, p := range pods.Items {
		b, err := n.client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &tail}).DoRaw(ctx)
		out += fmt.Sprintf("--- %s (%s): %v\n%s\n", p.Name, p.Status.Phase, err, b)
	}
	return out
}
