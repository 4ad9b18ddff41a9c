package watch

import (
	"context"

	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
	"github.com/autoscale-io/reactive-autoscaler/pkg/simulate"
)

// TestControllerAndSimulateDecideAlike replays one trace (a steady load, a
// metrics outage, a spike the alert rule catches, a fall) through simulate
// and through the controller (fake clock, fake clientset, an httptest
// Prometheus answering from the same model of scrapes), evaluating the
// controller at the instants simulate evaluated and posting the spike
// trigger when simulate's Alertmanager called: both must decide the same
// replicas with the same reasons at every instant. Both run pkg/cycle, so
// simulate reports what the controller does.
func TestControllerAndSimulateDecideAlike(t *testing.T) {
	var rows []float64
	for i := range 240 { // 40 min at 10 s
		switch at := i * 10; {
		case at >= 480 && at < 660:
			rows = append(rows, math.NaN()) // 3 min without metrics
		case at >= 1200 && at < 1560:
			rows = append(rows, 200) // the spike
		case at >= 1560:
			rows = append(rows, 30)
		default:
			rows = append(rows, 60+float64(i%7))
		}
	}
	trace := &simulate.Trace{Name: "replay", Step: 10 * time.Second, RPS: rows}
	world := simulate.DefaultWorld.WithScrape(5 * time.Second) // the 10 s spike rule needs two samples
	world.Initial = 2
	ann := map[string]string{
		"autoscale.io/reactive": "true", "autoscale.io/target-rps-per-replica": "20", "autoscale.io/max-replicas": "20",
		"autoscale.io/cooldown": "60s", "autoscale.io/interval": "30s",
		// The predictor path too: strategy max over a predictor that answers
		// from the recent samples (Holt's method; the seasonal forecaster
		// needs a day, and is replayed by simulate's own tests).
		"autoscale.io/strategy": "max", "autoscale.io/predictor": "external", "autoscale.io/predictive-horizon": "2m",
	}
	spec, err := scaler.Parse("frontend", ann, nil)
	if err != nil {
		t.Fatal(err)
	}
	alerting := simulate.DefaultAlerting
	sim := &simulate.Ours{Label: "frontend", Spec: spec, RateWindow: time.Minute, Phase: world.Phase,
		Spike: &alerting, Predictor: predict.DefaultForecaster()}
	// The simulator's predictor answers for both; the controller's is its external one.
	simulate.Run(world, trace, sim)

	var noData, spikes, ups, downs int
	for _, d := range sim.Decisions {
		switch {
		case !d.DataOK:
			noData++
		case d.Action == scaler.ScaleUp:
			ups++
		case d.Action == scaler.ScaleDown:
			downs++
		}
		if d.Spike {
			spikes++
		}
	}
	if noData == 0 || spikes == 0 || ups == 0 || downs == 0 || len(sim.Notified) == 0 {
		t.Fatalf("the trace must exercise an outage, a spike, scale-ups and scale-downs: no data %d, spike evaluations %d, notifications %d, up %d, down %d",
			noData, spikes, len(sim.Notified), ups, downs)
	}

	d := deployment("frontend", world.Initial, nil)
	d.Annotations = ann
	h := newHarnessWith(t, harnessOptions{start: simulate.Epoch, external: predict.DefaultForecaster()}, d)
	query, err := spec.RenderQuery("shop", "frontend")
	if err != nil {
		t.Fatal(err)
	}
	h.prom.Set(promtest.Answer{Model: func(q string, at time.Time) (float64, bool) {
		if q != query {
			return 0, false
		}
		v := trace.PromRate(at.Sub(simulate.Epoch), time.Minute, world.Scrape, false)
		return v, !math.IsNaN(v)
	}})

	type step struct {
		At       time.Duration
		Spike    bool
		Replicas int32
		Reason   string // of a scale action
	}
	var want, got []step
	for _, sd := range sim.Decisions {
		w := step{At: sd.At, Spike: sd.Spike, Replicas: sd.Replicas}
		if sd.Action != scaler.Hold {
			w.Reason = sd.Reason
		}
		want = append(want, w)

		h.clock.SetTime(simulate.Epoch.Add(sd.At))
		if slices.Contains(sim.Notified, sd.At) && sd.Spike && !h.ctrl.targets["shop/frontend"].cycle.InSpike(h.clock.Now()) {
			if !h.ctrl.Spike("shop", "frontend", h.clock.Now()) {
				t.Fatal("the controller does not manage frontend")
			}
		}
		before := h.replicas("frontend")
		if _, err := h.ctrl.syncDue(context.Background(), "shop/frontend", time.Time{}); err != nil {
			t.Fatalf("evaluation at %v: %v", sd.At, err)
		}
		g := step{At: sd.At, Spike: h.ctrl.targets["shop/frontend"].cycle.InSpike(h.clock.Now()), Replicas: h.replicas("frontend")}
		if g.Replicas != before {
			g.Reason = lastRescaleReason(t, h)
			h.sees("frontend", func(d *appsv1.Deployment) bool { return d != nil && *d.Spec.Replicas == g.Replicas })
		}
		got = append(got, g)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("simulate (-) and the controller (+) decided differently:\n%s", diff)
	}
	t.Logf("%d evaluations alike: %d without data, %d spike evaluations after %d notifications, %d scale-ups, %d scale-downs",
		len(want), noData, spikes, len(sim.Notified), ups, downs)
}

// lastRescaleReason returns the reason of the latest SuccessfulRescale Event.
func lastRescaleReason(t *testing.T, h *harness) string {
	t.Helper()
	var reason string
	for _, e := range h.drainEvents() {
		if _, r, ok := strings.Cut(e, "SuccessfulRescale New size: "); ok {
			_, reason, _ = strings.Cut(r, "; reason: ")
		}
	}
	if reason == "" {
		t.Fatal("replicas changed without a SuccessfulRescale Event")
	}
	return reason
}
