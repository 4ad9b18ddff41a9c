package scaler

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// step runs Decide at t0+at and keeps the state as the controller does.
func step(spec *Spec, st State, at time.Duration, current int32, rps float64) (Decision, State) {
	now := t0.Add(at)
	d, next := Decide(now, spec, st, Input{Current: current, RPS: rps})
	if d.Action != Hold {
		next = next.Scaled(now)
	}
	return d, next
}

func TestScaleDownStabilizationHoldsTheHighestRecentRecommendation(t *testing.T) {
	spec := mustSpec(t, map[string]string{"autoscale.io/target-rps-per-replica": "10", "autoscale.io/max-replicas": "20",
		"autoscale.io/ema-alpha": "1", "autoscale.io/cooldown": "0s", "autoscale.io/scale-down-stabilization": "2m"})
	var st State
	d, st := step(spec, st, 0, 1, 80)
	if d.Desired != 8 {
		t.Fatalf("80 RPS at 10 per replica: %d, want 8", d.Desired)
	}
	_, st = step(spec, st, 15*time.Second, 8, 80) // a second good sample
	for at := 30 * time.Second; at < 2*time.Minute+15*time.Second; at += 15 * time.Second {
		d, st = step(spec, st, at, 8, 10)
		if d.Desired != 8 || !strings.Contains(d.Reason, "stabilized at 8") {
			t.Fatalf("at %v, inside the 2m window after a recommendation of 8: %d (%s)", at, d.Desired, d.Reason)
		}
	}
	d, _ = step(spec, st, 2*time.Minute+15*time.Second, 8, 10)
	if d.Desired != 2 {
		t.Errorf("once the 8 left the window: %d (%s), want 2 (the largest row whose DOWN 10 RPS meets)", d.Desired, d.Reason)
	}
}

func TestLeadTimeScalesUpForTheTrend(t *testing.T) {
	ann := map[string]string{"autoscale.io/target-rps-per-replica": "10", "autoscale.io/max-replicas": "40",
		"autoscale.io/ema-alpha": "1", "autoscale.io/cooldown": "0s"}
	plain := mustSpec(t, ann)
	ann["autoscale.io/lead-time"] = "60s"
	lead := mustSpec(t, ann)
	// A ramp of 1 RPS per second, sampled every 15 s.
	var sp, sl State
	var dp, dl Decision
	for i := range 4 {
		at := time.Duration(i) * 15 * time.Second
		dp, sp = step(plain, sp, at, dp.Desired+10*boolInt(i == 0), 100+at.Seconds())
		dl, sl = step(lead, sl, at, dl.Desired+10*boolInt(i == 0), 100+at.Seconds())
	}
	// At 45 s the rate is 145; the trend, smoothed with weight 1/2 from 0
	// over three slopes of 1/s, is 0.875/s and expects 197.5 a minute on.
	if dp.Desired != 15 {
		t.Errorf("without lead: %d, want ceil(145/10) = 15", dp.Desired)
	}
	if dl.Desired != 20 || !strings.Contains(dl.Reason, "expected in 1m0s 197.5") {
		t.Errorf("with a 60 s lead: %d (%s), want ceil(197.5/10) = 20", dl.Desired, dl.Reason)
	}
	// A falling trend never brings a scale-down forward.
	dl, sl = step(lead, sl, 60*time.Second, dl.Desired, 140)
	dl, sl = step(lead, sl, 75*time.Second, dl.Desired, 135)
	if strings.Contains(dl.Reason, "expected") {
		t.Errorf("a falling trend was used: %s", dl.Reason)
	}
	// A step projects no further than LeadCap times the smoothed rate.
	dl, sl = step(lead, sl, 90*time.Second, dl.Desired, 135)
	dl, _ = step(lead, sl, 105*time.Second, dl.Desired, 400)
	if dl.Desired != 40 || !strings.Contains(dl.Reason, "expected in 1m0s 600 ") {
		t.Errorf("a step to 400: %d (%s), want 400 x %v = 600 expected, bounded to 40", dl.Desired, dl.Reason, LeadCap)
	}
}

func boolInt(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

func TestProfilePrecedence(t *testing.T) {
	rec := map[string]string{"autoscale.io/profile": "recommended"}
	s := mustSpec(t, rec)
	if s.Interval != 15*time.Second || s.EMAAlpha != 1 || s.ScaleUpCooldown != 0 || s.ScaleDownStabilization != 2*time.Minute ||
		s.Lead != time.Minute || !s.Instant || s.Source == nil || s.Source.Name != DefaultMetricSource ||
		s.Predictor != PredictorBuiltin || s.Strategy != StrategyMax || s.Horizon != 75*time.Second {
		t.Errorf("recommended profile: %+v", s)
	}
	// predictor: none turns the profile's forecast off (its strategy
	// yields); a strategy set on the Deployment does not yield.
	s, err := Parse("f", map[string]string{"autoscale.io/profile": "recommended", "autoscale.io/predictor": "none"}, nil)
	if err != nil || s.Strategy != StrategyReactive || s.Predictor != PredictorNone {
		t.Errorf("recommended without its forecast: strategy %v predictor %v (%v)", s.Strategy, s.Predictor, err)
	}
	if _, err := Parse("f", map[string]string{"autoscale.io/profile": "recommended", "autoscale.io/predictor": "none", "autoscale.io/strategy": "max"}, nil); err == nil {
		t.Error("an explicit strategy max with predictor none was accepted")
	}
	// Chosen on the Deployment, the profile beats controller defaults; an
	// annotation beats the profile.
	s, err = Parse("f", map[string]string{"autoscale.io/profile": "recommended", "autoscale.io/lead-time": "30s"}, map[string]string{"interval": "1m"})
	if err != nil || s.Interval != 15*time.Second || s.Lead != 30*time.Second {
		t.Errorf("profile on the Deployment: interval %v lead %v (%v), want 15s and 30s", s.Interval, s.Lead, err)
	}
	// Chosen controller-wide, the controller's own defaults beat it.
	s, err = Parse("f", nil, map[string]string{"profile": "recommended", "interval": "1m"})
	if err != nil || s.Interval != time.Minute || s.Lead != time.Minute {
		t.Errorf("profile controller-wide: interval %v lead %v (%v), want 1m and 1m", s.Interval, s.Lead, err)
	}
	// The seed profile is the built-in defaults.
	if s := mustSpec(t, nil); s.Interval != 30*time.Second || s.EMAAlpha != 0.7 || s.Lead != 0 || s.ScaleDownStabilization != 0 || s.Source == nil || s.Instant {
		t.Errorf("seed defaults changed: %+v", s)
	}
	for _, bad := range []map[string]string{
		{"autoscale.io/profile": "fast"},
		{"autoscale.io/lead-time": "11m"},
		{"autoscale.io/scale-down-stabilization": "2h"},
		{"autoscale.io/lead-time": "-1s"},
	} {
		if _, err := Parse("f", bad, nil); err == nil {
			t.Errorf("Parse(%v) accepted", bad)
		}
	}
}

// TestAFirstSeenTargetStartsItsWindowAtItsCount: a new process or leader
// seeds the stabilization window with the current count, so the first
// scale-down waits the window out, as the old leader's window would have.
func TestAFirstSeenTargetStartsItsWindowAtItsCount(t *testing.T) {
	spec := mustSpec(t, map[string]string{"autoscale.io/target-rps-per-replica": "10", "autoscale.io/max-replicas": "20",
		"autoscale.io/ema-alpha": "1", "autoscale.io/cooldown": "0s", "autoscale.io/scale-down-stabilization": "2m"})
	st := State{}.Seeded(spec, t0, 8)
	var d Decision
	for at := time.Duration(0); at < 2*time.Minute; at += 15 * time.Second {
		if d, st = step(spec, st, at, 8, 5); d.Desired != 8 {
			t.Fatalf("at %v after a takeover at 8 replicas: %d (%s), want 8 until the window passes", at, d.Desired, d.Reason)
		}
	}
	if d, _ = step(spec, st, 2*time.Minute, 8, 5); d.Desired != 1 {
		t.Errorf("after the window: %d (%s), want 1", d.Desired, d.Reason)
	}
	if got := (State{}).Seeded(mustSpec(t, nil), t0, 8); got.Recent != nil {
		t.Errorf("without a window nothing is seeded: %+v", got)
	}
}

// FuzzDecideRecommended drives the recommended profile (lead time,
// stabilization, no cooldowns) through any sequence of samples, unusable
// ones included: it never leaves [min, max] and never scales down on a
// sample without data or in a spike evaluation.
func FuzzDecideRecommended(f *testing.F) {
	f.Add([]byte{10, 200, 0, 255, 30, 30, 30, 1}, uint8(3))
	f.Add([]byte{255, 255, 0, 0, 128}, uint8(20))
	f.Fuzz(func(t *testing.T, samples []byte, maxR uint8) {
		spec, err := Parse("f", map[string]string{"autoscale.io/profile": "recommended",
			"autoscale.io/target-rps-per-replica": "10", "autoscale.io/max-replicas": strconv.Itoa(int(maxR%30) + 1)}, nil)
		if err != nil {
			t.Skip()
		}
		st := State{}.Seeded(spec, t0, 1)
		current := int32(1)
		for i, b := range samples {
			now := t0.Add(time.Duration(i) * 15 * time.Second)
			in := Input{Current: current, RPS: float64(b) * 4, Spike: b%7 == 0}
			switch b % 11 {
			case 0:
				in.NoData = errors.New("no data")
			case 1:
				in.RPS = math.NaN()
			case 2:
				in.RPS = -1
			}
			d, next := Decide(now, spec, st, in)
			if d.Desired < spec.MinReplicas || d.Desired > spec.MaxReplicas {
				t.Fatalf("step %d: desired %d outside [%d, %d]", i, d.Desired, spec.MinReplicas, spec.MaxReplicas)
			}
			if d.Action == ScaleDown && (!d.DataOK || in.Spike) {
				t.Fatalf("step %d: scaled down from %d to %d on %+v (%s)", i, current, d.Desired, in, d.Reason)
			}
			st = next
			if d.Action != Hold {
				st, current = next.Scaled(now), d.Desired
			}
		}
	})
}

// TestHugeReplicaCountsCostNothing: max-replicas is bounded (a generated
// table has a row per replica: 2147483647 asked for 48 GiB), and a
// Deployment at 2147483647 replicas is decided on from the table's last
// row down (the walk used to start at 2147483646: 8.6 s per evaluation).
func TestHugeReplicaCountsCostNothing(t *testing.T) {
	for _, v := range []string{"10001", "2147483647"} {
		_, err := Parse("f", map[string]string{"autoscale.io/target-rps-per-replica": "1", "autoscale.io/max-replicas": v}, nil)
		if err == nil || !strings.Contains(err.Error(), "at most 10000") {
			t.Errorf("max-replicas=%s: %v, want refused", v, err)
		}
	}
	if _, err := Parse("f", map[string]string{"autoscale.io/min-replicas": "20000"}, nil); err == nil {
		t.Error("min-replicas=20000 accepted")
	}
	s := mustSpec(t, map[string]string{"autoscale.io/target-rps-per-replica": "1", "autoscale.io/max-replicas": "10000"})
	if len(s.Table) != 10000 {
		t.Fatalf("table of %d rows", len(s.Table))
	}
	r, act := s.Table.Recommend(math.MaxInt32, 5, s.MaxReplicas)
	if r != 7 || act != ScaleDown {
		t.Errorf("from 2147483647 at 5 RPS: %d %v, want 7 (DOWN(7)=4.8, DOWN(8)=5.6)", r, act)
	}
}
