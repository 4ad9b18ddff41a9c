package scaler

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func mustSpec(t *testing.T, ann map[string]string) *Spec {
	t.Helper()
	s, err := Parse("frontend", ann, nil)
	if err != nil {
		t.Fatalf("Parse(%v): %v", ann, err)
	}
	return s
}

// outcome is the part of a Decision the rule tests compare.
type outcome struct {
	Desired int32
	Action  Action
	DataOK  bool
	Code    Code
}

func outcomeOf(d Decision) outcome { return outcome{d.Desired, d.Action, d.DataOK, d.Code} }

// TestDecideRules has one case per numbered rule of docs/REFERENCE.md section 2.
func TestDecideRules(t *testing.T) {
	seed := mustSpec(t, nil)
	bounded := mustSpec(t, map[string]string{"autoscale.io/min-replicas": "2", "autoscale.io/max-replicas": "4"})
	primed := State{EMA: 20, HasEMA: true, GoodStreak: 5}
	errNoSeries := errors.New("query returned no series")

	tests := []struct {
		name       string
		spec       *Spec
		state      State
		now        time.Time
		in         Input
		want       outcome
		wantEMA    float64
		wantReason string // substring
	}{
		// Rule 1: an error, NaN, +-Inf is no data.
		{"1/error is no data and holds", seed, primed, t0, Input{Current: 2, NoData: errNoSeries},
			outcome{2, Hold, false, CodeNoData}, 20, "no data: query returned no series"},
		{"1/NaN is no data", seed, primed, t0, Input{Current: 2, RPS: nan()}, outcome{2, Hold, false, CodeNoData}, 20, "no data: unusable sample NaN"},
		{"1/+Inf is no data", seed, primed, t0, Input{Current: 2, RPS: inf(1)}, outcome{2, Hold, false, CodeNoData}, 20, "no data"},
		{"1/-Inf is no data", seed, primed, t0, Input{Current: 2, RPS: inf(-1)}, outcome{2, Hold, false, CodeNoData}, 20, "no data"},
		// Rule 2: EMA.
		{"2/first sample is the EMA", seed, State{}, t0, Input{Current: 1, RPS: 5}, outcome{1, Hold, true, CodeWithinThresholds}, 5, "smoothed RPS 5 within [0, 10] at 1 replicas"},
		{"2/EMA weights the newest sample by alpha", seed, primed, t0, Input{Current: 2, RPS: 10}, outcome{2, Hold, true, CodeWithinThresholds}, 0.7*10 + 0.3*20, "within [8, 30]"},
		// Rule 3: hysteresis.
		{"3/above UP(c) scales up one row", seed, primed, t0, Input{Current: 2, RPS: 40}, outcome{3, ScaleUp, true, CodeAboveThreshold}, 0.7*40 + 0.3*20, "above 30 (scale-up threshold at 2 replicas)"},
		{"3/a spike skips rows", seed, State{EMA: 5, HasEMA: true, GoodStreak: 3}, t0, Input{Current: 1, RPS: 150},
			outcome{5, ScaleUp, true, CodeAboveThreshold}, 0.7*150 + 0.3*5, "above 10"},
		{"3/below DOWN(c) scales down to the largest row that holds", seed, State{EMA: 30, HasEMA: true, GoodStreak: 3}, t0, Input{Current: 5, RPS: 30},
			outcome{3, ScaleDown, true, CodeBelowThreshold}, 30, "below 90 (scale-down threshold at 5 replicas)"},
		{"3/below every DOWN scales to 1", seed, State{EMA: 0, HasEMA: true, GoodStreak: 3}, t0, Input{Current: 4, RPS: 0}, outcome{1, ScaleDown, true, CodeBelowThreshold}, 0, "below 50"},
		{"3/inside the gap holds", seed, primed, t0, Input{Current: 2, RPS: 20}, outcome{2, Hold, true, CodeWithinThresholds}, 20, "within [8, 30] at 2 replicas"},
		{"3/rows past the table use the last row", seed, State{EMA: 200, HasEMA: true, GoodStreak: 3}, t0, Input{Current: 7, RPS: 200}, outcome{7, Hold, true, CodeWithinThresholds}, 200, "within [90, inf] at 7 replicas"},
		{"3/clamped to max", bounded, primed, t0, Input{Current: 3, RPS: 200}, outcome{4, ScaleUp, true, CodeBounded}, 0.7*200 + 0.3*20, "bounded to [2, 4]"},
		{"3/clamped to min", bounded, State{EMA: 0, HasEMA: true, GoodStreak: 3}, t0, Input{Current: 3, RPS: 0}, outcome{2, ScaleDown, true, CodeBounded}, 0, "bounded to [2, 4]"},
		{"3/current below min is corrected at once", bounded, primed.Scaled(t0), t0.Add(time.Second), Input{Current: 1, RPS: 20}, outcome{2, ScaleUp, true, CodeOutsideBounds}, 20, "current replicas 1 outside [2, 4]"},
		{"3/current above max is corrected at once", bounded, primed.Scaled(t0), t0.Add(time.Second), Input{Current: 9, RPS: 20}, outcome{4, ScaleDown, true, CodeOutsideBounds}, 20, "current replicas 9 outside [2, 4]"},
		{"3/past the bound, data-driven moves follow the rules", bounded, State{EMA: 0, HasEMA: true, GoodStreak: 3}, t0, Input{Current: 9, RPS: 0}, outcome{2, ScaleDown, true, CodeOutsideBounds}, 0, "outside [2, 4]"},
		{"3/current above max is corrected even without data", bounded, primed, t0, Input{Current: 9, NoData: errNoSeries}, outcome{4, ScaleDown, false, CodeOutsideBounds}, 20, "outside [2, 4]; no data"},
		// Rule 4: cooldowns.
		{"4/no scale-up inside the cooldown", seed, primed.Scaled(t0), t0.Add(59 * time.Second), Input{Current: 2, RPS: 40},
			outcome{2, Hold, true, CodeCooldown}, 0.7*40 + 0.3*20, "scale-up to 3 held: cooldown 1m0s until 2026-11-26T12:01:00Z"},
		{"4/scale-up once the cooldown has passed", seed, primed.Scaled(t0), t0.Add(60 * time.Second), Input{Current: 2, RPS: 40}, outcome{3, ScaleUp, true, CodeAboveThreshold}, 0.7*40 + 0.3*20, "above 30"},
		{"4/per-direction scale-down cooldown", mustSpec(t, map[string]string{"autoscale.io/scale-down-cooldown": "5m"}),
			State{EMA: 0, HasEMA: true, GoodStreak: 3}.Scaled(t0), t0.Add(4 * time.Minute), Input{Current: 3, RPS: 0}, outcome{3, Hold, true, CodeCooldown}, 0, "scale-down to 1 held: cooldown 5m0s"},
		{"4/per-direction scale-up cooldown", mustSpec(t, map[string]string{"autoscale.io/scale-up-cooldown": "10s"}),
			primed.Scaled(t0), t0.Add(10 * time.Second), Input{Current: 2, RPS: 40}, outcome{3, ScaleUp, true, CodeAboveThreshold}, 0.7*40 + 0.3*20, "above 30"},
		// Rule 5: no data never scales down; two good samples after it returns.
		{"5/no data never scales down", seed, State{EMA: 0, HasEMA: true, GoodStreak: 3}, t0, Input{Current: 5, NoData: errNoSeries}, outcome{5, Hold, false, CodeNoData}, 0, "no data"},
		{"5/first good sample after no data does not scale down", seed, State{EMA: 0, HasEMA: true, GoodStreak: 0}, t0, Input{Current: 5, RPS: 0},
			outcome{5, Hold, true, CodeTooFewGoodSamples}, 0, "scale-down to 1 held: 1 good sample(s) since data (re)started, 2 needed"},
		{"5/second good sample may scale down", seed, State{EMA: 0, HasEMA: true, GoodStreak: 1}, t0, Input{Current: 5, RPS: 0}, outcome{1, ScaleDown, true, CodeBelowThreshold}, 0, "below 90"},
		{"5/first good sample may scale up", seed, State{}, t0, Input{Current: 1, RPS: 50}, outcome{3, ScaleUp, true, CodeAboveThreshold}, 50, "above 10"},
		// Section 3: the spike path.
		{"spike/uses the raw sample when above the EMA", seed, State{EMA: 5, HasEMA: true, GoodStreak: 3}, t0, Input{Current: 1, RPS: 95, Spike: true},
			outcome{4, ScaleUp, true, CodeAboveThreshold}, 0.7*95 + 0.3*5, "spike: raw RPS 95"},
		{"spike/scales up inside the scale-up cooldown", seed, primed.Scaled(t0), t0.Add(time.Second), Input{Current: 2, RPS: 50, Spike: true}, outcome{3, ScaleUp, true, CodeAboveThreshold}, 0.7*50 + 0.3*20, "spike"},
		{"spike/never scales down", seed, State{EMA: 0, HasEMA: true, GoodStreak: 3}, t0, Input{Current: 5, RPS: 0, Spike: true},
			outcome{5, Hold, true, CodeSpikeNeverScalesDown}, 0, "spike evaluations never scale down"},
		{"spike/no data holds", seed, primed, t0, Input{Current: 2, NoData: errNoSeries, Spike: true}, outcome{2, Hold, false, CodeNoData}, 20, "no data"},
		// Scale-down stabilization and the predictive input, each the last step to change the outcome.
		{"stabilization/holds a scale-down at the window's highest", mustSpec(t, map[string]string{"autoscale.io/scale-down-stabilization": "2m"}),
			State{EMA: 0, HasEMA: true, GoodStreak: 3, Recent: []Recommendation{{At: t0.Add(-30 * time.Second), Replicas: 3}}}, t0, Input{Current: 3, RPS: 0},
			outcome{3, Hold, true, CodeScaleDownStabilized}, 0, "scale-down stabilized at 3"},
		{"predicted/max takes the predictive count", mustSpec(t, map[string]string{"autoscale.io/strategy": "max"}), primed, t0,
			Input{Current: 2, RPS: 20, Prediction: &Prediction{Replicas: 5, HasReplicas: true, Source: "external"}},
			outcome{5, ScaleUp, true, CodePredicted}, 20, "max: reactive 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, st := Decide(tc.now, tc.spec, tc.state, tc.in)
			if diff := cmp.Diff(tc.want, outcomeOf(d)); diff != "" {
				t.Errorf("decision (-want +got):\n%s\nreason: %s", diff, d.Reason)
			}
			if !strings.Contains(d.Reason, tc.wantReason) {
				t.Errorf("reason %q does not contain %q", d.Reason, tc.wantReason)
			}
			if diff := st.EMA - tc.wantEMA; diff > 1e-9 || diff < -1e-9 {
				t.Errorf("EMA = %v, want %v", st.EMA, tc.wantEMA)
			}
			if !st.LastScale.Equal(tc.state.LastScale) {
				t.Errorf("Decide changed LastScale; only Scaled may")
			}
		})
	}
}

// walk replays a sequence of samples through Decide every interval, scaling
// whenever the decision says so, as the controller does.
func walk(spec *Spec, interval time.Duration, rps []float64) (replicas []int32, actions []time.Time) {
	var st State
	cur := spec.MinReplicas
	now := t0
	for _, r := range rps {
		d, next := Decide(now, spec, st, Input{Current: cur, RPS: r})
		st = next
		if d.Action != Hold {
			cur = d.Desired
			st = st.Scaled(now)
			actions = append(actions, now)
		}
		replicas = append(replicas, cur)
		now = now.Add(interval)
	}
	return replicas, actions
}

// TestSeedWalkthrough is the seed's operator walkthrough: seed table, alpha
// 0.7, 30 s interval, 60 s cooldown, a ramp from 0 to 120 RPS and then no load.
func TestSeedWalkthrough(t *testing.T) {
	spec := mustSpec(t, nil)
	var load []float64
	for r := 0.0; r <= 120; r += 10 { // 13 samples, 6 minutes of ramp
		load = append(load, r)
	}
	for range 6 { // 3 minutes at the peak
		load = append(load, 120)
	}
	for range 12 { // load stops
		load = append(load, 0)
	}
	got, actions := walk(spec, 30*time.Second, load)
	// Derived by hand: EMA 0, 7, 16.1 (>10: 2), 25.8, 35.7 (>30: 3), 45.7,
	// 55.7, 65.7 (>60: 4), 75.7, 85.7, 95.7, 105.7 (>100: 5), 115.7; at the
	// stop 36 (<90, >=25: 3), 10.8 (down to 2 held by the cooldown), 3.2 (1).
	want := []int32{
		1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, // ramp 0..120
		5, 5, 5, 5, 5, 5, // peak
		3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, // load stops
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("replicas (-want +got):\n%s", diff)
	}
	if len(actions) != 6 {
		t.Errorf("got %d scale actions at %v, want 6 (1->2->3->4->5->3->1)", len(actions), actions)
	}
	for i := 1; i < len(actions); i++ {
		if gap := actions[i].Sub(actions[i-1]); gap < spec.ScaleUpCooldown {
			t.Errorf("actions %v and %v only %v apart", actions[i-1], actions[i], gap)
		}
	}
}

func nan() float64         { var z float64; return z / z }
func inf(sign int) float64 { var z float64; return float64(sign) / z }

func TestWarmStateFoldsHistoryIntoTheEMA(t *testing.T) {
	spec := mustSpec(t, nil)
	last := t0.Add(-time.Minute)
	st := WarmState(spec, State{LastScale: last, GoodStreak: 4}, []float64{100, nan(), 50, -1, 20})
	// 100; 0.7*50+0.3*100 = 65; 0.7*20+0.3*65 = 33.5
	if !st.HasEMA || st.EMA != 33.5 || st.GoodStreak != 0 || !st.LastScale.Equal(last) {
		t.Fatalf("WarmState = %+v, want EMA 33.5, no good samples, LastScale kept", st)
	}
	// The warmed EMA drives the first decision, which still cannot scale down.
	d, _ := Decide(t0, spec, st, Input{Current: 5, RPS: 0})
	if d.Action != Hold || d.SmoothedRPS != 0.3*33.5 {
		t.Errorf("first decision after warm-up = %+v", d)
	}
	if empty := WarmState(spec, State{}, nil); empty.HasEMA {
		t.Error("no history must leave the EMA unset")
	}
}

// TestReferenceListsEveryDecisionCode: docs/REFERENCE.md names every code.
func TestReferenceListsEveryDecisionCode(t *testing.T) {
	data, err := os.ReadFile("../../docs/REFERENCE.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range Codes() {
		if !strings.Contains(string(data), "`"+string(c)+"`") {
			t.Errorf("docs/REFERENCE.md does not name the decision code %s", c)
		}
	}
}
