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
	if err := vm.Import(s.ctx, storeHistory(s, "vmdaily")); err != nil {
		t.Fatal(err)
	}
	s.scaleAndForecastThrough("VictoriaMetrics", vm.URL, "vmwalk", "vmdaily")
	served := requestsServed(t, vm.URL, "vm_http_requests_total", "path")
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
	th, err := env.StartThanos(s.ctx, storeHistory(s, "thdaily"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(th.Stop)
	s.scaleAndForecastThrough("Thanos query", th.URL, "thwalk", "thdaily")
	served := requestsServed(t, th.URL, "http_requests_total", "handler")
	if served["query"] == 0 || served["query_range"] == 0 {
		t.Errorf("Thanos query served %v instant and %v range queries; want both", served["query"], served["query_range"])
	}
}

// storeHistory is two days of a steady 20 RPS for service, up to a minute
// ago: history that only the store under test is given.
func storeHistory(s *scenario, service string) []byte {
	now := time.Now()
	return localenv.CounterHistory(map[string]string{"namespace": s.ns, "service": service, "job": "history"},
		now.Add(-50*time.Hour), now.Add(-time.Minute), 15*time.Second, func(time.Time) float64 { return 20 })
}

// scaleAndForecastThrough starts the autoscaler on the store at url and
// requires that walk (the seed table) scales 1 -> 4 under 80 RPS and back to
// 1 after, and that daily's forecaster (recommended profile) holds the two
// days of storeHistory.
func (s *scenario) scaleAndForecastThrough(store, url, walkName, dailyName string) {
	walk, daily := s.demoService(walkName), s.demoService(dailyName)
	s.deployment(walkName, 1, fast())
	s.deployment(dailyName, 2, map[string]string{"autoscale.io/reactive": "true", "autoscale.io/profile": "recommended",
		"autoscale.io/target-rps-per-replica": "10", "autoscale.io/max-replicas": "20", "autoscale.io/interval": "2s"})
	s.load(daily, "steady", 20)
	s.promURL = url
	s.startAutoscaler()

	s.load(walk, "steady", 80) // seed table: 80 RPS needs 4 replicas
	s.waitReplicas(walkName, "scaled up to 4 on "+store+"'s rate", 90*time.Second, func(r int32) bool { return r == 4 })
	s.load(walk, "stop", 0)
	s.waitReplicas(walkName, "scaled down to 1", 90*time.Second, func(r int32) bool { return r == 1 })
	s.poll(dailyName+"'s forecaster holding the two days only "+store+" has", time.Minute, func() (bool, error) {
		st := status(s.t, s, dailyName)
		return st.Predictor != nil && st.Predictor.HistoryDays == 2, nil
	})
}

// requestsServed sums the store's own request counter family at url's
// /metrics by the value of label (the API path or handler).
func requestsServed(t *testing.T, url, family, label string) map[string]float64 {
	t.Helper()
	mfs, err := metricFamilies(url)
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]float64{}
	for _, m := range mfs[family].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				served[l.GetValue()] += m.GetUntyped().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return served
}
