//go:build node

package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

// TestTheRealHPAAndKEDAScaleRealPods is make bench-real's short version:
// the real HorizontalPodAutoscaler (kube-controller-manager, reading
// Prometheus through prometheus-adapter) and real KEDA (its operator and
// metrics adapter, the Prometheus scaler) each scale a Deployment of
// demo-app pods that serve 25 requests a second, at 20 a replica on ours'
// recommended query; 80 requests a second through each Service takes both
// to at least four Ready pods, after which their pods shed (nearly)
// nothing; with the load gone both return to one. The host is left as it
// was.
func TestTheRealHPAAndKEDAScaleRealPods(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	n := startNodeWith(ctx, t, localenv.Options{Peers: true, Prometheus: &localenv.PrometheusOptions{ScrapeInterval: time.Second}})
	defer n.env.Stop()
	env, client := n.env, n.client
	defer func() {
		if t.Failed() {
			for _, p := range []string{"kube-controller-manager", "prometheus-adapter", "keda-operator", "keda-adapter"} {
				t.Logf("%s log (tail):\n%s", p, env.Logs(p, 15))
			}
		}
	}()
	loads := map[string]*load{}
	for _, name := range []string{"hpa", "keda"} {
		d := localenv.ServingDeployment("default", name, name, 1, nil, "--capacity", "25")
		if _, err := client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		svc, err := client.CoreV1().Services("default").Create(ctx, localenv.ServiceFor(d), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		loads[name] = newLoad(fmt.Sprintf("http://%s/", svc.Spec.ClusterIP), 80)
	}
	if err := env.StartPrometheusAdapter(ctx, localenv.AdapterRequestRate); err != nil {
		t.Fatal(err)
	}
	if err := env.StartKEDA(ctx); err != nil {
		t.Fatal(err)
	}
	// Quick both ways, so that the test is short: up by 4 pods or 300 %,
	// down by half, each per 15 s, a 5 % tolerance.
	behavior := localenv.HPABehavior(300, 4, 50, 0.05)
	query := `sum(irate(http_requests_total{namespace="default",service="keda"}[1m]))`
	if err := env.ApplyObjects(ctx, localenv.HPA("default", "hpa", 20, 6, behavior),
		localenv.ScaledObject("default", "keda", env.PrometheusURL, query, 20, 6, behavior)); err != nil {
		t.Fatal(err)
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	for _, l := range loads {
		go l.run(loadCtx)
	}
	replicas := func(name string) (spec, ready int32) {
		d, err := client.AppsV1().Deployments("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return 0, 0
		}
		return *d.Spec.Replicas, d.Status.ReadyReplicas
	}
	for _, name := range []string{"hpa", "keda"} {
		err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(context.Context) (bool, error) {
			_, ready := replicas(name)
			return ready >= 4 && loads[name].window(5*time.Second).shed < 0.05, nil
		})
		if err != nil {
			spec, ready := replicas(name)
			t.Fatalf("%s: %d replicas (%d Ready) shed %.0f%% of 80 RPS over 5 s; want at least 4 Ready and under 5%% shed",
				name, spec, ready, 100*loads[name].window(5*time.Second).shed)
		}
	}
	stopLoad()
	for _, name := range []string{"hpa", "keda"} {
		err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, false, func(context.Context) (bool, error) {
			spec, _ := replicas(name)
			return spec == 1, nil
		})
		if err != nil {
			spec, _ := replicas(name)
			t.Fatalf("%s: %d replicas 3 minutes after the load stopped, want 1", name, spec)
		}
	}
	n.stopAndCompare(t)
}
