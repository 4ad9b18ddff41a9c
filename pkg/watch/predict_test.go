package watch

import (
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/cycle"
	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/predict/predictstub"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// withStub starts a predictor stub and a harness whose external predictor
// is the real HTTP client pointed at it.
func withStub(t *testing.T, stub *predictstub.Stub, ann ...string) *harness {
	t.Helper()
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	client := &predict.Client{URL: srv.URL, Timeout: 200 * time.Millisecond}
	return newHarnessWithPredictor(t, client, managed("frontend", 1, ann...))
}

// TestOverrideFollowsThePredictorAndFallsBackOnEveryFailure: with the seed's
// override strategy at 20 RPS (reactive: 2 replicas) and a model answering
// 4 (within 2: predictive wins), the target follows the model; every way
// the model can fail gives the reactive 2, one PredictorUnavailable Event
// and a counted reason; when the model answers again, 4 again.
func TestOverrideFollowsThePredictorAndFallsBackOnEveryFailure(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		reason predict.Reason
		msg    string
	}{
		{predictstub.Fail, predict.ReasonHTTPStatus, "answered 500"},
		{predictstub.Timeout, predict.ReasonTimeout, "no answer within 200ms"},
		{predictstub.Garbage, predict.ReasonInvalidAnswer, "is not the JSON object"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			stub := predictstub.New(predictstub.Fixed)
			stub.Replicas, stub.Delay = 4, 5*time.Second
			h := withStub(t, stub, "strategy", "override", "predictor", "external", "cooldown", "0s")
			h.prom.Set(promtest.Value(20))
			h.evaluate("frontend", interval)
			if got := h.replicas("frontend"); got != 4 {
				t.Fatalf("replicas = %d, want the predictive 4 (reactive 2, within the override threshold)", got)
			}
			if ev := h.drainEvents(); !hasEvent(ev, "Normal SuccessfulRescale New size: 4; reason: smoothed RPS 20 above 10 (scale-up threshold at 1 replicas); override: reactive 2, predictive 4 (external) within 2, using predictive") {
				t.Errorf("events %q", ev)
			}

			stub.SetMode(tc.mode)
			h.evaluate("frontend", interval)
			h.evaluate("frontend", interval)
			if got := h.replicas("frontend"); got != 2 {
				t.Errorf("replicas = %d with the model failing, want the reactive 2", got)
			}
			ev := h.drainEvents()
			unavailable := 0
			for _, e := range ev {
				if strings.HasPrefix(e, "Warning PredictorUnavailable Predictor external unavailable: ") {
					unavailable++
					if !strings.Contains(e, tc.msg) {
						t.Errorf("event %q does not say %q", e, tc.msg)
					}
				}
			}
			if unavailable != 1 {
				t.Errorf("%d PredictorUnavailable events over two failing evaluations, want 1 (rate-limited): %q", unavailable, ev)
			}
			if !hasEvent(ev, "Normal SuccessfulRescale New size: 2; reason: ") || !strings.Contains(strings.Join(ev, "\n"), "using reactive 2") {
				t.Errorf("the fallback is not explained: %q", ev)
			}
			if n := h.counter("reactive_autoscaler_predictor_errors_total", "reason", string(tc.reason)); n != 2 {
				t.Errorf("predictor_errors_total{reason=%q} = %v, want 2", tc.reason, n)
			}

			h.clock.Step(cycle.PredictorEventEvery)
			h.evaluate("frontend", interval)
			if ev := h.drainEvents(); !hasEvent(ev, "Warning PredictorUnavailable") {
				t.Errorf("no new PredictorUnavailable after %v of failures: %q", cycle.PredictorEventEvery, ev)
			}

			stub.SetMode(predictstub.Fixed)
			h.evaluate("frontend", interval)
			if got := h.replicas("frontend"); got != 4 {
				t.Errorf("replicas = %d after the model came back, want 4", got)
			}
		})
	}
}

func TestExternalPredictorNotConfigured(t *testing.T) {
	h := newHarness(t, managed("frontend", 1, "strategy", "max", "predictor", "external"))
	h.prom.Set(promtest.Value(45))
	h.evaluate("frontend", interval)
	if got := h.replicas("frontend"); got != 3 {
		t.Errorf("replicas = %d, want the reactive 3", got)
	}
	if ev := h.drainEvents(); !hasEvent(ev, "Warning PredictorUnavailable Predictor external unavailable: predictor external is not configured") {
		t.Errorf("events %q", ev)
	}
}

func TestSpikeEvaluationsDoNotAskThePredictor(t *testing.T) {
	stub := predictstub.New(predictstub.Fixed)
	stub.Replicas = 1
	h := withStub(t, stub, "strategy", "override", "predictor", "external")
	h.prom.Set(promtest.Value(150))
	h.clock.Step(interval)
	h.ctrl.Spike("shop", "frontend", h.clock.Now())
	if n := h.ctrl.spikes.Len(); n != 1 {
		t.Fatalf("%d spike evaluations queued, want 1", n)
	}
	key, _ := h.ctrl.spikes.Get()
	if _, err := h.ctrl.sync(h.ctx, key); err != nil {
		t.Fatal(err)
	}
	h.ctrl.spikes.Done(key)
	if n := stub.Requests(); n != 0 {
		t.Errorf("a spike evaluation asked the predictor %d times", n)
	}
	if got := h.replicas("frontend"); got != 5 {
		t.Errorf("replicas = %d, want the spike's reactive 5", got)
	}
}

// TestShadowMAPE: strategy reactive with a predictor is shadow mode. A
// model that knows the future scores MAPE 0; one that is always a horizon
// late scores well above 0. The decisions are the reactive ones either way.
func TestShadowMAPE(t *testing.T) {
	start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	load := func(at time.Time) float64 { // a 10-minute wave between 50 and 150 RPS
		return 100 + 50*math.Sin(2*math.Pi*at.Sub(start).Seconds()/600)
	}
	run := func(stub *predictstub.Stub) (*harness, float64) {
		stub.Trace = load
		h := withStub(t, stub, "predictor", "external", "predictive-horizon", "5m", "max-replicas", "1")
		for i := 0; i < 40; i++ {
			h.clock.Step(interval)
			h.prom.Set(promtest.Value(load(h.clock.Now())))
			if _, err := h.ctrl.sync(h.ctx, "shop/frontend"); err != nil {
				t.Fatal(err)
			}
		}
		return h, h.gauge("reactive_autoscaler_target_predictor_mape", "frontend")
	}
	perfect, mape := run(predictstub.New(predictstub.Trace))
	if mape > 1e-9 {
		t.Errorf("perfect foresight: MAPE %v, want 0", mape)
	}
	if st := perfect.status("frontend"); st.Predictor == nil || st.Predictor.MAPEPercent == nil || *st.Predictor.MAPEPercent != 0 || st.Predictor.Scored == 0 {
		t.Errorf("status predictor = %+v, want mapePercent 0 over the scored predictions", st.Predictor)
	}
	lagging := predictstub.New(predictstub.Lag)
	lagging.LagBy = 5 * time.Minute
	h, mape := run(lagging)
	if mape < 0.1 {
		t.Errorf("a model a horizon late: MAPE %v, want well above 0", mape)
	}
	if st := h.status("frontend"); st.Predictor == nil || st.Predictor.MAPEPercent == nil || *st.Predictor.MAPEPercent < 10 {
		t.Errorf("status predictor = %+v, want the lagging model's MAPE", st.Predictor)
	}
	t.Logf("MAPE: perfect %.4f, lagging by the horizon %.4f", 0.0, mape)
}

// TestThePredictorStatusSaysWhyThereIsNoForecast: the days of history and
// the reason for no forecast are written when they change, and kept when
// no predictor was asked (a spike evaluation, a sample without data).
func TestThePredictorStatusSaysWhyThereIsNoForecast(t *testing.T) {
	spec, err := scaler.Parse("f", map[string]string{"autoscale.io/reactive": "true", "autoscale.io/profile": "recommended"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sh scaler.Shadow
	young := cycle.Outcome{Predictor: cycle.PredictorNews{NoForecast: predict.ErrNoSeason}}
	st, changed := predictorStatus(nil, spec, &sh, young)
	if !changed || st.HistoryDays != 0 || !strings.Contains(st.NoForecast, "less than a day of history") || !strings.Contains(st.NoForecast, "deciding reactively") {
		t.Fatalf("no history yet: %+v (changed %v)", st, changed)
	}
	if _, changed := predictorStatus(st, spec, &sh, young); changed {
		t.Error("the same reason again is written again")
	}
	asked := cycle.Outcome{Predictor: cycle.PredictorNews{Answer: &scaler.Prediction{RPS: 10, HasRPS: true}, SeasonDays: 1}}
	st, changed = predictorStatus(st, spec, &sh, asked)
	if !changed || st.HistoryDays != 1 || st.NoForecast != "" {
		t.Fatalf("a day of history: %+v (changed %v)", st, changed)
	}
	// A period found at the next read is news; the spike evaluation
	// after it keeps it.
	periodic := cycle.Outcome{Predictor: cycle.PredictorNews{Answer: &scaler.Prediction{RPS: 10, HasRPS: true}, SeasonDays: 1, SeasonPeriod: 2 * time.Hour}}
	st, changed = predictorStatus(st, spec, &sh, periodic)
	if !changed || st.Period != "2h" {
		t.Fatalf("a 2 h period found: %+v (changed %v)", st, changed)
	}
	notAsked := cycle.Outcome{Spike: true}
	if kept, changed := predictorStatus(st, spec, &sh, notAsked); changed || kept.HistoryDays != 1 || kept.Period != "2h" {
		t.Errorf("a spike evaluation (no predictor asked): %+v (changed %v), want the last word kept", kept, changed)
	}
}
