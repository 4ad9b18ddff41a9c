//go:build e2e

package e2e

import (
	"testing"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

// TestVictoriaMetricsServesTheRateAndTheForecastsHistory: the controller
// pointed at VictoriaMetrics instead of Prometheus (scraping the same demo
// services, its query latency offset lowered as REFERENCE says) scales a
// Deployment up under load and down after, and its forecaster reads two days
// of history imported into VictoriaMetrics alone. VictoriaMetrics' own
// request counters show that both the instant and the range queries went
// to it.
func TestVictoriaMetricsServesTheRateAndTheForecastsHistory(t *testing.T) {
	s := newScenario(t)
	vm, err := env.StartVictoriaMetrics(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Proc.Stop(10 * time.Second) })
	now := time.Now()
	history := localenv.CounterHistory(map[string]string{"namespace": s.ns, "service": "vmdaily", "job": "history"},
		now.Add(-50*time.Hour), now.Add(-time.Minute), 15*time.Second, func(time.Time) float64 { return 20 })
	if err := vm.Import(s.ctx, history); err != nil {
		t.Fatal(err)
	}
	walk, daily := s.demoService("vmwalk"), s.demoService("vmdaily")
	s.deployment("vmwalk", 1, fast())
	s.deployment("vmdaily", 2, map[string]string{"autoscale.io/reactive": "true", "autoscale.io/profile": "recommended",
		"autoscale.io/target-rps-per-replica": "10", "autoscale.io/max-replicas": "20", "autoscale.io/interval": "2s"})
	s.load(daily, "steady", 20)
	s.promURL = vm.URL
	s.startAutoscaler()

	s.load(walk, "steady", 80) // seed table: 80 RPS needs 4 replicas
	s.waitReplicas("vmwalk", "scaled up to 4 on VictoriaMetrics' rate", 90*time.Second, func(r int32) bool { return r == 4 })
	s.load(walk, "stop", 0)
	s.waitReplicas("vmwalk", "scaled down to 1", 90*time.Second, func(r int32) bool { return r == 1 })
	s.poll("vmdaily's forecaster holding the two days VictoriaMetrics alone has", time.Minute, func() (bool, error) {
		st := status(t, s, "vmdaily")
		return st.Predictor != nil && st.Predictor.HistoryDays == 2, nil
	})

	mfs, err := metricFamilies(vm.URL)
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]float64{}
	for _, m := range mfs["vm_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "path" {
				served[l.GetValue()] += m.GetUntyped().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	if served["/api/v1/query"] == 0 || served["/api/v1/query_range"] == 0 {
		t.Errorf("VictoriaMetrics served %v instant and %v range queries; want both", served["/api/v1/query"], served["/api/v1/query_range"])
	}
}

// TestThanosQueryServesTheRateAndTheForecastsHistory: the controller pointed
// at Thanos query, over a sidecar beside a Prometheus of its own (scraping
// the same demo services, an external replica label as a Prometheus pair
// has), scales a Deployment up under load and down after, and its
// forecaster reads two days of history backfilled into that Prometheus
// alone, through the sidecar. Query's own request counters show that both
// the instant and the range queries went to it.
func TestThanosQueryServesTheRateAndTheForecastsHistory(t *testing.T) {
	s := newScenario(t)
	now := time.Now()
	history := localenv.CounterHistory(map[string]string{"namespace": s.ns, "service": "thdaily", "job": "history"},
		now.Add(-50*time.Hour), now.Add(-time.Minute), 15*time.Second, func(time.Time) float64 { return 20 })
	th, err := env.StartThanos(s.ctx, history)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(th.Stop)
	walk, daily := s.demoService("thwalk"), s.demoService("thdaily")
	s.deployment("thwalk", 1, fast())
	s.deployment("thdaily", 2, map[string]string{"autoscale.io/reactive": "true", "autoscale.io/profile": "recommended",
		"autoscale.io/target-rps-per-replica": "10", "autoscale.io/max-replicas": "20", "autoscale.io/interval": "2s"})
	s.load(daily, "steady", 20)
	s.promURL = th.URL
	s.startAutoscaler()

	s.load(walk, "steady", 80) // seed table: 80 RPS needs 4 replicas
	s.waitReplicas("thwalk", "scaled up to 4 on Thanos query's rate", 90*time.Second, func(r int32) bool { return r == 4 })
	s.load(walk, "stop", 0)
	s.waitReplicas("thwalk", "scaled down to 1", 90*time.Second, func(r int32) bool { return r == 1 })
	s.poll("thdaily's forecaster holding the two days only Thanos' Prometheus has", time.Minute, func() (bool, error) {
		st := status(t, s, "thdaily")
		return st.Predictor != nil && st.Predictor.HistoryDays == 2, nil
	})

	mfs, err := metricFamilies(th.URL)
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]float64{}
	for _, m := range mfs["http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "handler" {
				served[l.GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	if served["query"] == 0 || served["query_range"] == 0 {
		t.Errorf("Thanos query served %v instant and %v range queries; want both", served["query"], served["query_range"])
	}
}
