package scaler

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// TestStrategies uses the seed HybridAutoscaler's examples. The reactive
// input is fixed by a sample: 45 RPS at 2 replicas -> 3 replicas.
func TestStrategies(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	inside := time.Date(2026, 11, 26, 9, 30, 0, 0, berlin)   // 08:30 UTC
	outside := time.Date(2026, 11, 26, 18, 30, 0, 0, berlin) // 17:30 UTC, inside 09:00-17:59 in UTC
	tests := []struct {
		name       string
		strategy   string
		now        time.Time
		prediction *Prediction
		want       int32
		wantReason string
	}{
		{"reactive ignores the predictor (shadow)", "reactive", t0, &Prediction{Replicas: 9, HasReplicas: true}, 3, "smoothed RPS 45 above 30 (scale-up threshold at 2 replicas)"},
		{"reactive ignores a failed predictor too", "reactive", t0, &Prediction{Err: errors.New("timeout")}, 3, "smoothed RPS 45 above 30 (scale-up threshold at 2 replicas)"},
		{"override: discrepancy > 2 picks reactive", "override", t0, &Prediction{Replicas: 6, HasReplicas: true}, 3, "override: reactive 3, predictive 6 differ by more than 2, using reactive"},
		{"override: discrepancy <= 2 picks predictive", "override", t0, &Prediction{Replicas: 5, HasReplicas: true}, 5, "override: reactive 3, predictive 5 within 2, using predictive"},
		{"override: predictive below reactive within 2", "override", t0, &Prediction{Replicas: 2, HasReplicas: true}, 2, "using predictive"},
		{"max", "max", t0, &Prediction{Replicas: 7, HasReplicas: true}, 7, "max: reactive 3, predictive 7"},
		{"max keeps reactive when higher", "max", t0, &Prediction{Replicas: 1, HasReplicas: true}, 3, "max: reactive 3, predictive 1"},
		{"weighted 0.7/0.3 rounds up", "weighted", t0, &Prediction{Replicas: 6, HasReplicas: true}, 6, "weighted: ceil(0.7*6 + 0.3*3)"}, // 5.1 -> 6
		{"weighted exact", "weighted", t0, &Prediction{Replicas: 3, HasReplicas: true}, 3, "weighted"},
		{"schedule inside hours in Europe/Berlin", "schedule", inside, &Prediction{Replicas: 8, HasReplicas: true}, 8, "inside predictive hours, using predictive"},
		{"schedule outside hours in Europe/Berlin", "schedule", outside, &Prediction{Replicas: 8, HasReplicas: true}, 3, "outside predictive hours, using reactive"},
		{"predictor error falls back to reactive", "override", t0, &Prediction{Err: errors.New("timeout")}, 3, "predictor unavailable (timeout), using reactive 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ann := map[string]string{"autoscale.io/strategy": tc.strategy, "autoscale.io/timezone": "Europe/Berlin"}
			spec := mustSpec(t, ann)
			st := State{EMA: 45, HasEMA: true, GoodStreak: 3}
			d, _ := Decide(tc.now, spec, st, Input{Current: 2, RPS: 45, Prediction: tc.prediction})
			if d.Desired != tc.want || d.Reactive != 3 {
				t.Errorf("desired %d (reactive %d), want %d (reactive 3); reason %q", d.Desired, d.Reactive, tc.want, d.Reason)
			}
			if !strings.Contains(d.Reason, tc.wantReason) {
				t.Errorf("reason %q does not contain %q", d.Reason, tc.wantReason)
			}
			if tc.strategy == "reactive" && d.Reason != tc.wantReason {
				t.Errorf("shadow mode changed the reason: %q, want the reactive %q", d.Reason, tc.wantReason)
			}
		})
	}
}

func TestStrategyBoundsAndCooldownApplyToFinal(t *testing.T) {
	spec := mustSpec(t, map[string]string{"autoscale.io/strategy": "max", "autoscale.io/max-replicas": "4"})
	st := State{EMA: 45, HasEMA: true, GoodStreak: 3}
	d, _ := Decide(t0, spec, st, Input{Current: 2, RPS: 45, Prediction: &Prediction{Replicas: 9, HasReplicas: true}})
	if d.Desired != 4 {
		t.Errorf("desired %d, want max bound 4; %s", d.Desired, d.Reason)
	}
	d, _ = Decide(t0.Add(10*time.Second), spec, st.Scaled(t0), Input{Current: 2, RPS: 45, Prediction: &Prediction{Replicas: 9, HasReplicas: true}})
	if d.Action != Hold || !strings.Contains(d.Reason, "cooldown") {
		t.Errorf("predictive scale-up inside the cooldown: %+v", d)
	}
}

func TestClockWindowWrapsMidnight(t *testing.T) {
	w := ClockWindow{From: 22 * 60, To: 5*60 + 59}
	for h, want := range map[int]bool{21: false, 22: true, 0: true, 5: true, 6: false} {
		if got := w.Contains(time.Date(2026, 1, 1, h, 0, 0, 0, time.UTC)); got != want {
			t.Errorf("22:00-05:59 contains %02d:00 = %v, want %v", h, got, want)
		}
	}
}

func TestPredictionsAsARateOrOutsideTheBounds(t *testing.T) {
	tests := []struct {
		name       string
		ann        map[string]string
		prediction *Prediction
		want       int32
		wantReason string
	}{
		// Seed table from 2 replicas: 70 RPS needs 4 (UP(3)=60 < 70 <= UP(4)=100).
		{"a rate is mapped through the table", map[string]string{"autoscale.io/strategy": "max"},
			&Prediction{RPS: 70, HasRPS: true, Source: "builtin"}, 4, "max: reactive 3, predictive 4 (builtin, 70 RPS ahead) -> 4"},
		{"a band is named", map[string]string{"autoscale.io/strategy": "max"},
			&Prediction{RPS: 70, HasRPS: true, Source: "builtin", Band: [2]float64{40, 75}}, 4, "predictive 4 (builtin, 70 RPS ahead, days 40 to 75) -> 4"},
		{"replicas win over the rate", map[string]string{"autoscale.io/strategy": "max"},
			&Prediction{Replicas: 5, HasReplicas: true, RPS: 1, HasRPS: true}, 5, "predictive 5 (1 RPS ahead)"},
		{"above max is named and bounded", map[string]string{"autoscale.io/strategy": "override", "autoscale.io/max-replicas": "4"},
			&Prediction{Replicas: 5, HasReplicas: true}, 4, "predictive 5 (above max 4) within 2, using predictive -> 5 (bounded to [1, 4])"},
		{"below min is named and bounded", map[string]string{"autoscale.io/strategy": "override", "autoscale.io/min-replicas": "3"},
			&Prediction{Replicas: 1, HasReplicas: true}, 3, "predictive 1 (below min 3)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := Decide(t0, mustSpec(t, tc.ann), State{EMA: 45, HasEMA: true, GoodStreak: 3}, Input{Current: 2, RPS: 45, Prediction: tc.prediction})
			if d.Desired != tc.want || !strings.Contains(d.Reason, tc.wantReason) {
				t.Errorf("desired %d, reason %q; want %d and a reason containing %q", d.Desired, d.Reason, tc.want, tc.wantReason)
			}
		})
	}
}

func TestShadowScoresPredictionsWhenTheirTimeComes(t *testing.T) {
	const interval, horizon = 30 * time.Second, 5 * time.Minute
	actual := func(i int) float64 { return 100 + 10*float64(i) } // a steady ramp
	run := func(predict func(i int) float64) (float64, int) {
		var s Shadow
		for i := 0; i < 100; i++ {
			now := t0.Add(time.Duration(i) * interval)
			s.Measured(now, actual(i), interval)
			s.Predicted(now.Add(horizon), predict(i))
		}
		return s.MAPE()
	}
	steps := int(horizon / interval)
	if mape, n := run(func(i int) float64 { return actual(i + steps) }); mape != 0 || n != ShadowWindow {
		t.Errorf("perfect foresight: MAPE %v over %d, want 0 over %d", mape, n, ShadowWindow)
	}
	// "The last value": always 10 steps x 10 RPS = 100 RPS behind.
	mape, n := run(func(i int) float64 { return actual(i) })
	want := 0.0
	for i := 100 - ShadowWindow; i < 100; i++ {
		want += 100 / actual(i)
	}
	if want /= ShadowWindow; math.Abs(mape-want) > 1e-12 || n != ShadowWindow {
		t.Errorf("lagging by the horizon: MAPE %v over %d, want %v", mape, n, want)
	}

	var s Shadow
	if _, n := s.MAPE(); n != 0 {
		t.Errorf("empty shadow has %d samples", n)
	}
	s.Predicted(t0, 0.5)
	s.Measured(t0, 0, interval) // idle: the error is relative to 1 RPS, not 0
	if mape, _ := s.MAPE(); mape != 0.5 {
		t.Errorf("0.5 RPS predicted, 0 measured: MAPE %v, want 0.5 (floor %v RPS)", mape, MAPEFloorRPS)
	}
	s.Predicted(t0.Add(time.Minute), 10)
	s.Measured(t0.Add(10*time.Minute), 10, interval) // its moment passed without data
	if _, n := s.MAPE(); n != 1 {
		t.Errorf("a prediction whose moment passed unmeasured was scored (%d samples)", n)
	}
}
