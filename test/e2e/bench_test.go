//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// BenchmarkWebhookToScale posts 200 alerts, each naming one Deployment, to
// the real binary's webhook and times each until the watch sees its new
// replica count on the real API server. Two baselines, measured in the same
// run and observed the same way, interleaved with the alerts: a bare
// UpdateScale call (the resourceVersion known beforehand, as a controller's
// cache knows it): the floor any controller has; and a read-modify-write
// (GetScale, then UpdateScale), what a controller without a cache does.
// Periodic evaluations are an hour apart and the spike window is off, so
// only the webhook path writes. The binary runs at its shipped defaults
// (BENCH_FLAGS adds flags, to compare settings).
func BenchmarkWebhookToScale(b *testing.B) {
	const n = 200
	s := newScenario(b)
	ctx := s.ctx
	svc := s.demoService("bench")
	// The load fires the real RequestRateSpike alert for service "bench":
	// the targets carry another service name, so that only the benchmark's
	// own alerts (by namespace + deployment) trigger them.
	// max-replicas 2: each alert scales 1 -> 2, as each baseline write does,
	// so that both cause the same work (one new pod) in the cluster.
	ann := map[string]string{"autoscale.io/reactive": "true", "autoscale.io/service": "bench-targets", "autoscale.io/interval": "1h", "autoscale.io/max-replicas": "2",
		"autoscale.io/query": `sum(rate(http_requests_total{service="bench"}[5s]))`}
	for i := range n {
		s.deployment(fmt.Sprintf("d-%03d", i), 1, ann)
	}
	for i := range n { // the baselines' own Deployments, not managed
		s.deployment(fmt.Sprintf("base-%03d", i), 1, nil)
		s.deployment(fmt.Sprintf("bare-%03d", i), 1, nil)
	}
	s.startAutoscaler(append([]string{"--webhook-bind-address", webhookAddr, "--webhook-token-file", tokenFile, "--spike-window=0s"}, benchFlags()...)...)
	// Every target's first (periodic) evaluation happens before the load:
	// after it, only the benchmark's alerts can scale them.
	s.poll("the first evaluation of every target", 2*time.Minute, func() (bool, error) { return s.evaluations() >= n, nil })
	s.load(svc, "steady", 150)
	s.poll("the load in Prometheus", 2*time.Minute, func() (bool, error) {
		v, err := promQuery(`sum(rate(http_requests_total{service="bench"}[5s]))`)
		return err == nil && v > 120, nil
	})
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		b.Fatal(err)
	}

	post := func(body string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+webhookAddr+"/webhook/alertmanager", bytes.NewBufferString(body))
		req.Header.Set("Authorization", "Bearer "+string(token))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	s.poll("the webhook taking triggers", 30*time.Second, func() (bool, error) {
		return post(`{"version":"4","alerts":[]}`) == http.StatusOK, nil
	})
	// The bare writes' resourceVersions, read before the clock starts.
	resourceVersions := map[string]string{}
	list, err := client.AppsV1().Deployments(s.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range list.Items {
		resourceVersions[d.Name] = d.ResourceVersion
	}
	changed := watchReplicas(b, ctx, s.ns)
	// Where the webhook path's time goes: the controller's own histograms.
	mean := func(name string) func() time.Duration {
		sum0, n0 := scrapeHistogram(b, s.metricsURL, name)
		return func() time.Duration {
			sum, n := scrapeHistogram(b, s.metricsURL, name)
			return time.Duration((sum - sum0) / max(1, n-n0) * float64(time.Second))
		}
	}
	spikeToScale, query := mean("reactive_autoscaler_spike_to_scale_seconds"), mean("reactive_autoscaler_prometheus_query_duration_seconds")
	var viaWebhook, direct, bare []time.Duration
	b.ResetTimer()
	for range b.N {
		viaWebhook, direct, bare = viaWebhook[:0], direct[:0], bare[:0]
		for i := range n {
			name := fmt.Sprintf("d-%03d", i)
			body := fmt.Sprintf(`{"version":"4","groupKey":"bench-%s-%d","status":"firing","receiver":"bench","alerts":[{"status":"firing","labels":{"alertname":"RequestRateSpike","namespace":%q,"deployment":%q},"startsAt":%q,"fingerprint":%q}]}`,
				name, time.Now().UnixNano(), s.ns, name, time.Now().UTC().Format(time.RFC3339Nano), name)
			start := time.Now()
			if code := post(body); code != http.StatusOK {
				b.Fatalf("webhook answered %d", code)
			}
			viaWebhook = append(viaWebhook, waitChange(b, changed, name, start))

			base := fmt.Sprintf("base-%03d", i)
			start = time.Now()
			sc, err := client.AppsV1().Deployments(s.ns).GetScale(ctx, base, metav1.GetOptions{})
			if err == nil {
				sc.Spec.Replicas++
				_, err = client.AppsV1().Deployments(s.ns).UpdateScale(ctx, base, sc, metav1.UpdateOptions{})
			}
			if err != nil {
				b.Fatal(err)
			}
			direct = append(direct, waitChange(b, changed, base, start))

			name = fmt.Sprintf("bare-%03d", i)
			sc = &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns, ResourceVersion: resourceVersions[name]},
				Spec: autoscalingv1.ScaleSpec{Replicas: 2}}
			start = time.Now()
			if _, err := client.AppsV1().Deployments(s.ns).UpdateScale(ctx, name, sc, metav1.UpdateOptions{}); err != nil {
				b.Fatal(err)
			}
			bare = append(bare, waitChange(b, changed, name, start))
		}
	}
	b.StopTimer()
	w50, w99 := quantile(viaWebhook, 0.50), quantile(viaWebhook, 0.99)
	d50, d99 := quantile(direct, 0.50), quantile(direct, 0.99)
	u50, u99 := quantile(bare, 0.50), quantile(bare, 0.99)
	b.ReportMetric(float64(w50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(w99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(w50)/float64(u50), "p50-vs-bare-update")
	b.ReportMetric(float64(w99)/float64(u99), "p99-vs-bare-update")
	b.Logf("%d alerts, webhook received -> replicas written (seen by a watch): p50 %v, p99 %v; inside the controller, mean: trigger -> write returned %v, of which the Prometheus query %v",
		n, w50, w99, spikeToScale().Round(10*time.Microsecond), query().Round(10*time.Microsecond))
	b.Logf("baseline bare UpdateScale: p50 %v, p99 %v; ratio p50 %.2fx, p99 %.2fx", u50, u99, float64(w50)/float64(u50), float64(w99)/float64(u99))
	b.Logf("baseline GetScale+UpdateScale: p50 %v, p99 %v; ratio p50 %.2fx, p99 %.2fx", d50, d99, float64(w50)/float64(d50), float64(w99)/float64(d99))
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// watchReplicas reports, per Deployment name, when its spec.replicas changed.
func watchReplicas(b *testing.B, ctx context.Context, ns string) <-chan replicaEvent {
	w, err := client.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	out := make(chan replicaEvent, 1024)
	go func() {
		last := map[string]int32{}
		for ev := range w.ResultChan() {
			if ev.Type != watch.Modified && ev.Type != watch.Added {
				continue
			}
			d := ev.Object.(*appsv1.Deployment)
			if old, ok := last[d.Name]; ok && old != *d.Spec.Replicas {
				out <- replicaEvent{d.Name, time.Now()}
			}
			last[d.Name] = *d.Spec.Replicas
		}
	}()
	return out
}

type replicaEvent struct {
	name string
	at   time.Time
}

func waitChange(b *testing.B, ch <-chan replicaEvent, name string, start time.Time) time.Duration {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-ch:
			if ev.name == name {
				return ev.at.Sub(start)
			}
		case <-timeout:
			b.Fatalf("%s never changed replicas", name)
		}
	}
}

// benchFlags are extra autoscaler flags from BENCH_FLAGS (space separated),
// to compare settings such as --kube-api-qps in the same environment.
func benchFlags() []string { return strings.Fields(os.Getenv("BENCH_FLAGS")) }
