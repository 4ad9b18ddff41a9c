package watch

import (
	"context"
	"fmt"
	goruntime "runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics"
	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
)

// BenchmarkEvaluationCycle evaluates 10,000 managed Deployments once per
// iteration (fake clientset, httptest Prometheus; the load holds, so each
// evaluation is a query and a decision, as in steady state) and reports
// evaluations per second and allocations per evaluation.
func BenchmarkEvaluationCycle(b *testing.B) {
	const n = 10000
	klog.SetLogger(klog.Background().V(10)) // keep per-evaluation logging off
	objs := make([]runtime.Object, n)
	keys := make([]string, n)
	for i := range objs {
		name := fmt.Sprintf("svc-%05d", i)
		objs[i] = managed(name, 2)
		keys[i] = "shop/" + name
	}
	h := newHarness(b, objs...)
	h.prom.Set(promtest.Value(20)) // inside row 2: hold
	cycle := func() {
		h.clock.Step(interval)
		for _, k := range keys {
			if _, err := h.ctrl.sync(h.ctx, k); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Warm-up: the first cycle writes each target's status annotation once
	// (data health becomes "ok"); steady state writes nothing.
	cycle()
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		cycle()
	}
	took := time.Since(start)
	b.StopTimer()
	goruntime.ReadMemStats(&after)
	evals := float64(b.N * n)
	b.ReportMetric(evals/took.Seconds(), "evals/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/evals, "allocs/eval")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/evals, "B/eval")
}

// BenchmarkVictimLagBesideASlowTenant measures a victim namespace's
// evaluation lag (start minus due time; real clock, four workers as the
// binary's default; five victim targets) alone, and beside 20 targets of
// another namespace whose queries take 3 s, in the same run: p50 and p99
// in ms, and the ratio of the p99s. The victim's interval is 1 s, so its
// p99 must stay under 1000 ms. For scale, the same beside the tenant with
// the namespace limit lifted (every worker may serve one namespace; the
// evaluation deadline stays).
func BenchmarkVictimLagBesideASlowTenant(b *testing.B) {
	klog.SetLogger(klog.Background().V(10))
	const phase = 5 * time.Second
	var alone, beside, unlimited []time.Duration
	for b.Loop() {
		alone = append(alone, victimLags(b, 0, 0, phase)...)
		beside = append(beside, victimLags(b, 20, 0, phase)...)
		unlimited = append(unlimited, victimLags(b, 20, 4, phase)...)
	}
	pct := func(lags []time.Duration, p float64) float64 {
		if len(lags) == 0 {
			b.Fatal("the victim was never evaluated")
		}
		s := slices.Clone(lags)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(p*float64(len(s))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(alone, 0.5), "alone-p50-ms")
	b.ReportMetric(pct(alone, 0.99), "alone-p99-ms")
	b.ReportMetric(pct(beside, 0.5), "beside-p50-ms")
	b.ReportMetric(pct(beside, 0.99), "beside-p99-ms")
	b.ReportMetric(pct(beside, 0.99)/max(pct(alone, 0.99), 0.001), "p99-beside/alone")
	b.ReportMetric(pct(unlimited, 0.99), "no-ns-limit-p99-ms")
	b.Logf("victim (interval 1 s): %d evaluations alone, %d beside 20 targets with 3 s queries; p99 lag %.1f ms beside (must stay under 1000)",
		len(alone), len(beside), pct(beside, 0.99))
}

// victimLags runs a controller for d with five victim targets (namespace
// victim, interval 1 s) and slow targets of namespace tenant whose queries
// take 3 s, nsWorkers evaluations per namespace (0: the default), and
// returns the victims' evaluation lags.
func victimLags(b *testing.B, slow, nsWorkers int, d time.Duration) []time.Duration {
	prom := promtest.New()
	defer prom.Close()
	prom.Set(promtest.Value(5))
	prom.SetFor(`sum(rate(slow_requests_total{namespace="tenant"}[1m]))`, promtest.Answer{Delay: 3 * time.Second, Values: []string{"5"}})
	var objs []runtime.Object
	for i := range 5 {
		victim := managed(fmt.Sprintf("victim-%d", i), 1, "interval", "1s", "predictor", "none")
		victim.Namespace = "victim"
		objs = append(objs, victim)
	}
	for i := range slow {
		t := managed(fmt.Sprintf("slow-%02d", i), 1, "interval", "1s", "predictor", "none", "query", slowQuery)
		t.Namespace = "tenant"
		objs = append(objs, t)
	}
	client := fake.NewClientset(objs...)
	pc, err := api.NewClient(api.Config{Address: prom.URL})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory := informers.NewSharedInformerFactory(client, 0)
	mon := &lagMonitor{ns: "victim"}
	ctrl, err := New(Config{
		Client: client, Informer: factory.Apps().V1().Deployments().Informer(),
		Source:   metrics.NewSource(promv1.NewAPI(pc), 5*time.Second, nil), // the binary's default timeout
		Recorder: record.NewFakeRecorder(10000), Monitor: mon, NamespaceWorkers: nsWorkers,
	})
	if err != nil {
		b.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ctrl.Run(ctx, 4)
	}()
	time.Sleep(d) // the phase lasts d of real time
	cancel()
	<-done
	mon.mu.Lock()
	defer mon.mu.Unlock()
	return mon.lags
}

// lagMonitor records the lags of one namespace's scheduled evaluations.
type lagMonitor struct {
	nopMonitor
	ns   string
	mu   sync.Mutex
	lags []time.Duration
}

func (m *lagMonitor) Evaluated(t types.NamespacedName, e metrics.Evaluation) {
	if t.Namespace == m.ns && e.Scheduled {
		m.mu.Lock()
		m.lags = append(m.lags, e.Lag)
		m.mu.Unlock()
	}
}
