package main

import (
	"testing"

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
