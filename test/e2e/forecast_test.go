//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
	"github.com/autoscale-io/reactive-autoscaler/pkg/watch"
)

// TestTheForecastScalesAheadOfARecurringRamp: the real Prometheus holds
// two days of a service's history (backfilled with promtool), in which the
// load climbed from 20 to 150 RPS at the same minute each day. On the
// recommended profile the controller reads that history, and scales up
// before today's ramp arrives: the replicas are written before the load
// steps, so before any scrape can show the rise. Its Event names the
// forecast. A service without that history is decided reactively, its
// status says why, and nothing fails in a loop.
func TestTheForecastScalesAheadOfARecurringRamp(t *testing.T) {
	s := newScenario(t)
	start := time.Now()
	ramp := start.Truncate(time.Minute).Add(3 * time.Minute) // today's ramp, on a minute boundary
	rate := func(at time.Time) float64 {                     // 150 RPS for 30 min from the ramp's time of day, else 20
		into := at.Sub(ramp) % (24 * time.Hour)
		if into < 0 {
			into += 24 * time.Hour
		}
		if into < 30*time.Minute {
			return 150
		}
		return 20
	}
	history := localenv.CounterHistory(map[string]string{"namespace": s.ns, "service": "daily", "job": "history"},
		ramp.Add(-48*time.Hour-3*time.Hour), start.Add(-30*time.Second), 15*time.Second, rate)
	if err := env.Backfill(s.ctx, history); err != nil {
		t.Fatal(err)
	}
	daily, fresh := s.demoService("daily"), s.demoService("fresh")
	s.load(daily, "steady", 20)
	s.load(fresh, "steady", 20)
	ann := func(service string) map[string]string {
		return map[string]string{"autoscale.io/reactive": "true", "autoscale.io/profile": "recommended", "autoscale.io/service": service,
			"autoscale.io/target-rps-per-replica": "10", "autoscale.io/max-replicas": "20", "autoscale.io/interval": "2s"}
	}
	for _, svc := range []string{"daily", "fresh"} { // an irate needs two live scrapes
		s.poll(svc+"'s live rate", time.Minute, func() (bool, error) {
			_, err := promQuery(fmt.Sprintf(`sum(irate(http_requests_total{job="demo",namespace=%q,service=%q}[1m]))`, s.ns, svc))
			return err == nil, nil
		})
	}
	changes := s.recordReplicaChanges("daily")
	s.deployment("daily", 2, ann("daily"))
	s.deployment("fresh", 2, ann("fresh"))
	s.startAutoscaler()

	// Ahead of the ramp: 150 RPS expected within the horizon is 15 replicas.
	s.waitReplicas("daily", "scaled for the forecast ramp", time.Until(ramp)+30*time.Second, func(r int32) bool { return r >= 15 })
	if now := time.Now(); !now.Before(ramp) {
		t.Fatalf("scaled to 15 at %s, not before the ramp at %s (changes %v)", now.Format("15:04:05"), ramp.Format("15:04:05"), changes())
	}
	t.Logf("scaled up %.1f s before the ramp; replica changes %v", time.Until(ramp).Seconds(), changes())
	s.poll("a SuccessfulRescale Event naming the forecast", 10*time.Second, func() (bool, error) {
		return s.hasEvent("daily", "SuccessfulRescale", "builtin: 2-day seasonal peak"), nil
	})
	if st := status(t, s, "daily"); st.Predictor == nil || st.Predictor.HistoryDays != 2 || st.Predictor.NoForecast != "" {
		t.Errorf("daily's predictor status %+v, want 2 days of history and a forecast", st.Predictor)
	}

	// Without history: reactive, said in the status, nothing failing.
	s.poll("fresh's status saying why it decides reactively", 30*time.Second, func() (bool, error) {
		st := status(t, s, "fresh")
		return st.Predictor != nil && strings.Contains(st.Predictor.NoForecast, "less than a day of history"), nil
	})
	// Its decisions are reactive (at 20 RPS, 2 replicas, or up to 4 while
	// the lead time still sees the service's start as a rising trend).
	if r := s.replicas("fresh"); r > 4 {
		t.Errorf("fresh at 20 RPS has %d replicas, want the reactive 2 to 4", r)
	}
	if s.hasEvent("fresh", "SuccessfulRescale", "builtin") {
		t.Error("fresh, without history, was scaled on a forecast")
	}
	for _, name := range []string{"daily", "fresh"} {
		for _, reason := range []string{"PredictorUnavailable", "FailedRescale"} {
			if evs := s.events(name, reason); len(evs) > 0 {
				t.Errorf("%s has %s Events: %s", name, reason, evs[0].Message)
			}
		}
		// An irate's first evaluations may find one scrape only; no more.
		n := int32(0)
		for _, ev := range s.events(name, "FailedGetMetrics") {
			n += max(ev.Count, 1)
		}
		if n > 2 {
			t.Errorf("%s has %d FailedGetMetrics Events: a loop", name, n)
		}
	}

	// The ramp arrives: the replicas were there already and stay.
	s.poll("the ramp's minute", time.Until(ramp)+5*time.Second, func() (bool, error) { return !time.Now().Before(ramp), nil })
	s.load(daily, "steady", 150)
	s.afterEvaluations(5)
	if r := s.replicas("daily"); r < 15 {
		t.Errorf("under the ramp's load daily has %d replicas, want at least 15", r)
	}
}

// status reads a Deployment's autoscale.io/status annotation.
func status(t testing.TB, s *scenario, name string) watch.Status {
	t.Helper()
	var st watch.Status
	raw := s.get(name).Annotations[watch.StatusAnnotation]
	if raw == "" {
		return st
	}
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatal(fmt.Errorf("status of %s: %w", name, err))
	}
	return st
}
