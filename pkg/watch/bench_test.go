package watch

import (
	"fmt"
	goruntime "runtime"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"

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
