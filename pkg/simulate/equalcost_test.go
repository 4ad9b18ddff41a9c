package simulate

import (
	"math"
	"testing"
	"time"
)

// TestCostAtIsTheLeastCostThatReachesTheLevel: the cheapest point that
// leaves at most the budget unserved, interpolated from the point before
// it where that one does not; a curve whose points all leave more never
// reaches the level; a curve whose cheapest point reaches it costs that.
func TestCostAtIsTheLeastCostThatReachesTheLevel(t *testing.T) {
	c := Curve{Points: []CurvePoint{{0.9, 100, 50}, {0.8, 200, 10}, {0.7, 300, 2}, {0.6, 400, 0}}}
	for _, tc := range []struct {
		budget, want float64
		ok           bool
	}{
		{10, 200, true}, // exactly a point
		{30, 150, true}, // halfway from 50 at 100 to 10 at 200
		{1, 350, true},  // halfway from 2 to 0
		{60, 100, true}, // the cheapest point reaches it
		{0, 400, true},  // every request served
		{-1, 0, false},  // nothing leaves less than none
	} {
		got, ok := c.CostAt(tc.budget)
		if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("CostAt(%v) = %v, %t; want %v, %t", tc.budget, got, ok, tc.want, tc.ok)
		}
	}
	// Not monotone: a dearer point that loses more does not move the
	// answer off the first point that reaches the level.
	bumpy := Curve{Points: []CurvePoint{{0.9, 100, 50}, {0.8, 200, 5}, {0.7, 300, 20}, {0.6, 400, 0}}}
	if got, _ := bumpy.CostAt(10); math.Abs(got-(100+100*40.0/45)) > 1e-9 {
		t.Errorf("bumpy CostAt(10) = %v", got)
	}
}

// TestTheFloorCarriesTheDemandExactly: 60 s at 30 RPS and 60 s at 100 RPS
// with 25 RPS a replica are 2 and 4 replicas, and a quiet minute still
// costs one; a policy of ours run on it costs no less.
func TestTheFloorCarriesTheDemandExactly(t *testing.T) {
	tr := &Trace{Name: "steps", Step: time.Minute, RPS: []float64{30, 100, 0}}
	w := DefaultWorld
	if got, want := FloorReplicaSeconds(w, tr), 60.0*(2+4+1); got != want {
		t.Errorf("floor = %v replica-seconds, want %v", got, want)
	}
	o := Options{World: w, Utilization: 0.7, Only: []string{PolicyReactive}}
	o = o.initial(tr)
	ps, err := Policies(o)
	if err != nil {
		t.Fatal(err)
	}
	if s := run(o.World, tr, ps[0], false); s.ReplicaSeconds < FloorReplicaSeconds(w, tr) && s.UnservedRequests == 0 {
		t.Errorf("a policy served everything below the floor: %v < %v", s.ReplicaSeconds, FloorReplicaSeconds(w, tr))
	}
}

// TestWithinKeepsTheKnobsAsked: the equal-cost curves are the service
// level's sweep within 0.3 to 0.95; a policy the knob does not reach keeps
// its one point.
func TestWithinKeepsTheKnobsAsked(t *testing.T) {
	c := Curve{Points: []CurvePoint{{0.3, 400, 0}, {0.95, 100, 10}, {1.3, 80, 40}}}
	if got := c.Within(Knobs); len(got.Points) != 2 || got.Points[1].Utilization != 0.95 {
		t.Errorf("Within(Knobs) = %+v", got.Points)
	}
	one := Curve{Points: []CurvePoint{{0.72, 300, 1}}}
	if got := one.Within(Knobs); len(got.Points) != 1 {
		t.Errorf("a one-point curve lost its point: %+v", got.Points)
	}
	if LevelKnobs[len(Knobs)-1] != Knobs[len(Knobs)-1] || LevelKnobs[len(LevelKnobs)-1] < 1.2 {
		t.Errorf("LevelKnobs %v do not extend Knobs past full", LevelKnobs)
	}
}
