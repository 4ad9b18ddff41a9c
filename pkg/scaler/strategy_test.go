package scaler

import (
	"errors"
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
		{"reactive ignores the predictor (shadow)", "reactive", t0, &Prediction{Replicas: 9}, 3, "reactive (shadow predictive 9)"},
		{"override: discrepancy > 2 picks reactive", "override", t0, &Prediction{Replicas: 6}, 3, "override: reactive 3, predictive 6 differ by more than 2, using reactive"},
		{"override: discrepancy <= 2 picks predictive", "override", t0, &Prediction{Replicas: 5}, 5, "override: reactive 3, predictive 5 within 2, using predictive"},
		{"override: predictive below reactive within 2", "override", t0, &Prediction{Replicas: 2}, 2, "using predictive"},
		{"max", "max", t0, &Prediction{Replicas: 7}, 7, "max: reactive 3, predictive 7"},
		{"max keeps reactive when higher", "max", t0, &Prediction{Replicas: 1}, 3, "max: reactive 3, predictive 1"},
		{"weighted 0.7/0.3 rounds up", "weighted", t0, &Prediction{Replicas: 6}, 6, "weighted: ceil(0.7*6 + 0.3*3)"}, // 5.1 -> 6
		{"weighted exact", "weighted", t0, &Prediction{Replicas: 3}, 3, "weighted"},
		{"schedule inside hours in Europe/Berlin", "schedule", inside, &Prediction{Replicas: 8}, 8, "inside predictive hours, using predictive"},
		{"schedule outside hours in Europe/Berlin", "schedule", outside, &Prediction{Replicas: 8}, 3, "outside predictive hours, using reactive"},
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
		})
	}
}

func TestStrategyBoundsAndCooldownApplyToFinal(t *testing.T) {
	spec := mustSpec(t, map[string]string{"autoscale.io/strategy": "max", "autoscale.io/max-replicas": "4"})
	st := State{EMA: 45, HasEMA: true, GoodStreak: 3}
	d, _ := Decide(t0, spec, st, Input{Current: 2, RPS: 45, Prediction: &Prediction{Replicas: 9}})
	if d.Desired != 4 {
		t.Errorf("desired %d, want max bound 4; %s", d.Desired, d.Reason)
	}
	d, _ = Decide(t0.Add(10*time.Second), spec, st.Scaled(t0), Input{Current: 2, RPS: 45, Prediction: &Prediction{Replicas: 9}})
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
