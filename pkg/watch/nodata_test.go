package watch

import (
	"strings"
	"testing"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
)

// TestAwkwardPrometheusNeverScalesDown runs a Deployment at 5 replicas whose
// true load (0 RPS) says "scale to 1", and feeds every awkward answer between
// good samples: no answer may scale down, each yields FailedGetMetrics, and
// once data is back a scale-down needs two consecutive good samples.
func TestAwkwardPrometheusNeverScalesDown(t *testing.T) {
	awkward := []struct {
		name string
		a    promtest.Answer
	}{
		{"error", promtest.Answer{Status: 400, Body: `{"status":"error","errorType":"bad_data","error":"parse error"}`}},
		{"5xx", promtest.Answer{Status: 503}},
		{"timeout", promtest.Answer{Delay: 3 * time.Second, Values: []string{"0"}}},
		{"empty", promtest.Answer{}},
		{"NaN", promtest.Answer{Values: []string{"NaN"}}},
		{"+Inf", promtest.Answer{Values: []string{"+Inf"}}},
		{"two series", promtest.Answer{Values: []string{"0", "0"}}},
		{"stale", promtest.Answer{Values: []string{"0"}, Age: 5 * time.Minute}},
	}
	h := newHarness(t, managed("frontend", 5))
	good := promtest.Value(0)
	for _, tc := range awkward {
		h.prom.Set(good) // one good sample: not enough to scale down
		h.evaluate("frontend", interval)
		h.prom.Set(tc.a)
		h.evaluate("frontend", interval)
		if got := h.replicas("frontend"); got != 5 {
			t.Fatalf("after %s: replicas = %d, want 5 (no scale-down without data)", tc.name, got)
		}
		ev := h.drainEvents()
		if !hasEvent(ev, "Warning FailedGetMetrics no data") {
			t.Errorf("%s: no FailedGetMetrics event in %q", tc.name, ev)
		}
		if st := h.status("frontend"); !strings.HasPrefix(st.DataHealth, "no data") {
			t.Errorf("%s: status dataHealth = %q", tc.name, st.DataHealth)
		}
	}
	h.prom.Set(good)
	h.evaluate("frontend", interval)
	if got := h.replicas("frontend"); got != 5 {
		t.Fatalf("scaled down to %d on the first good sample after no data", got)
	}
	h.evaluate("frontend", interval)
	if got := h.replicas("frontend"); got != 1 {
		t.Fatalf("replicas = %d after two good samples at 0 RPS, want 1", got)
	}
	if st := h.status("frontend"); st.DataHealth != "ok" {
		t.Errorf("dataHealth = %q after recovery", st.DataHealth)
	}
}
