package main

import (
	"math"
	"testing"

	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/simulate"
)

// TestATraceIsNotEscapedBySpending: a trace is judged when a peer loses
// GoalFloor of demand at ours' cost, and also when ours spends more than a
// peer can and that peer loses GoalFloor even at its dearest point; a peer
// at ours' cost that loses little leaves it unjudged.
func TestATraceIsNotEscapedBySpending(t *testing.T) {
	const demand = 1e6 // GoalFloor of it: 1,000 requests
	curve := func(name string, pts ...simulate.CurvePoint) simulate.Curve {
		return simulate.Curve{Policy: name, Points: pts}
	}
	for _, tc := range []struct {
		name   string
		ours   simulate.CurvePoint
		peer   simulate.Curve
		judged bool
	}{
		{"a peer loses 0.2 % at ours' cost", simulate.CurvePoint{ReplicaSeconds: 150, UnservedRequests: 10},
			curve("kpa", simulate.CurvePoint{ReplicaSeconds: 100, UnservedRequests: 3000}, simulate.CurvePoint{ReplicaSeconds: 200, UnservedRequests: 1000}), true},
		{"every policy loses under 0.1 %", simulate.CurvePoint{ReplicaSeconds: 150, UnservedRequests: 10},
			curve("kpa", simulate.CurvePoint{ReplicaSeconds: 100, UnservedRequests: 900}, simulate.CurvePoint{ReplicaSeconds: 200, UnservedRequests: 100}), false},
		{"ours spends more than the peer can, which loses 0.15 % at its dearest", simulate.CurvePoint{ReplicaSeconds: 300, UnservedRequests: 10},
			curve("kpa", simulate.CurvePoint{ReplicaSeconds: 100, UnservedRequests: 3000}, simulate.CurvePoint{ReplicaSeconds: 200, UnservedRequests: 1500}), true},
		{"ours spends more than the peer can, which loses 0.05 % at its dearest", simulate.CurvePoint{ReplicaSeconds: 300, UnservedRequests: 10},
			curve("kpa", simulate.CurvePoint{ReplicaSeconds: 100, UnservedRequests: 3000}, simulate.CurvePoint{ReplicaSeconds: 200, UnservedRequests: 500}), false},
	} {
		row := Row{Point: tc.ours, VS: map[string]simulate.EqualCost{"kpa": tc.peer.Compare(tc.ours)}}
		if got := judged(row, map[string]simulate.Curve{"kpa": tc.peer}, demand); got != tc.judged {
			t.Errorf("%s: judged %v, want %v", tc.name, got, tc.judged)
		}
	}
}

// TestTunedPeersAreSearchedAtOursCost: the reference a tuned peer's
// configuration is chosen at is the recommended profile's cost at the
// knob ours is read at, not the default peer's (which spends differently
// and made the search favour a configuration that loses at ours' cost).
func TestTunedPeersAreSearchedAtOursCost(t *testing.T) {
	tr := simulate.Shapes["flash-crowd"]()
	o := simulate.Options{World: simulate.DefaultWorld.WithScrape(GoalScrape), Utilization: 0.7, Builtin: predict.DefaultSeasonal(),
		Alerting: simulate.ChartAlerting(GoalScrape)}
	curves, _, err := simulate.Sweep(o, tr, []string{simulate.PolicyRecommended, simulate.PolicyHPA, simulate.PolicyKPA}, []float64{0.7})
	if err != nil {
		t.Fatal(err)
	}
	ours := curves[simulate.PolicyRecommended].Points[0].ReplicaSeconds
	if got := oursCost(o, tr); got != ours {
		t.Errorf("oursCost = %v, want the recommended profile's %v", got, ours)
	}
	for _, peer := range []string{simulate.PolicyHPA, simulate.PolicyKPA} {
		if c := curves[peer].Points[0].ReplicaSeconds; c == ours {
			t.Errorf("%s spends exactly ours' %v here: the test cannot tell the references apart", peer, c)
		}
	}
	if tuneKnobs[0] > 0.3 || tuneKnobs[len(tuneKnobs)-1] < 0.95 {
		t.Errorf("tuning knobs %v: want the equal-cost sweep's whole range, 0.3 to 0.95", tuneKnobs)
	}
}

// TestBisectionReadsTheWholeCurve: the tuned peer's unserved at a cost,
// read from the two knobs bisection brackets it with, is what the curve
// over every knob reads there (or at its nearest end).
func TestBisectionReadsTheWholeCurve(t *testing.T) {
	tr := simulate.Shapes["sawtooth"]()
	o := simulate.Options{World: simulate.DefaultWorld.WithScrape(GoalScrape), Utilization: 0.7, Builtin: predict.DefaultSeasonal(),
		Alerting: simulate.ChartAlerting(GoalScrape)}
	for _, policy := range []string{simulate.PolicyHPATuned, simulate.PolicyKPATuned} {
		curves, _, err := simulate.Sweep(o, tr, []string{policy}, tuneKnobs)
		if err != nil {
			t.Fatal(err)
		}
		c := curves[policy]
		lo, hi := c.Points[0], c.Points[len(c.Points)-1]
		for _, cost := range []float64{lo.ReplicaSeconds * 0.5, lo.ReplicaSeconds, (lo.ReplicaSeconds + hi.ReplicaSeconds) / 2,
			lo.ReplicaSeconds + (hi.ReplicaSeconds-lo.ReplicaSeconds)/7, hi.ReplicaSeconds, hi.ReplicaSeconds * 2} {
			want, ok := c.UnservedAt(cost)
			switch {
			case !ok && cost < lo.ReplicaSeconds:
				want = lo.UnservedRequests
			case !ok:
				want = hi.UnservedRequests
			}
			if got, _ := unservedAtCost(o, tr, policy, cost); math.Abs(got-want) > 1e-9*max(1, want) {
				t.Errorf("%s at %.0f replica-seconds: bisection reads %v unserved, the whole curve %v", policy, cost, got, want)
			}
		}
	}
}
