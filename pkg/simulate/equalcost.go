package simulate

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Knobs is the sweep of the shared cost knob (Options.Utilization): every
// policy is run at each, from generous (0.3 of a replica's capacity) to
// tight (0.95). Unserved at equal cost reads the curves over these.
var Knobs = []float64{0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95}

// LevelKnobs extend Knobs beyond full (1.3) for the cost at a service
// level: a policy with headroom of its own (a hysteresis table, a
// scale-down delay, a tolerance) still serves 99.9 % aimed past a
// replica's capacity, and read only up to 0.95 its cost would be the
// sweep's edge, not its own.
var LevelKnobs = append(slices.Clone(Knobs), 1, 1.05, 1.1, 1.15, 1.2, 1.3)

// Within returns c with only its points at the knobs given.
func (c Curve) Within(knobs []float64) Curve {
	out := Curve{Policy: c.Policy}
	for _, p := range c.Points {
		if slices.ContainsFunc(knobs, func(u float64) bool { return math.Abs(u-p.Utilization) < 1e-9 }) {
			out.Points = append(out.Points, p)
		}
	}
	if len(out.Points) == 0 {
		out.Points = c.Points // a policy the knob does not reach
	}
	return out
}

// CurvePoint is one run of a policy at one knob.
type CurvePoint struct {
	Utilization      float64 `json:"utilization"`
	ReplicaSeconds   float64 `json:"replicaSeconds"`
	UnservedRequests float64 `json:"unservedRequests"`
}

// Curve is a policy's cost against unserved requests over the knob's sweep,
// by increasing cost. A policy the knob does not reach (seed-defaults, with
// its fixed table) has one point.
type Curve struct {
	Policy string       `json:"policy"`
	Points []CurvePoint `json:"points"`
}

// Sweep runs each named policy of o on trace at every knob (once for one the
// knob does not reach), in parallel, and returns their curves by name and
// the demand's total.
func Sweep(o Options, trace *Trace, names []string, knobs []float64) (map[string]Curve, float64, error) {
	type job struct {
		name string
		u    float64
	}
	var jobs []job
	for _, name := range names {
		if name == PolicySeed {
			jobs = append(jobs, job{name, o.Utilization})
			continue
		}
		for _, u := range knobs {
			jobs = append(jobs, job{name, u})
		}
	}
	trace.filled()
	points := make([]CurvePoint, len(jobs))
	errs := make([]error, len(jobs))
	demand := 0.0
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, j := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			oj := o
			oj.Utilization, oj.Only = j.u, []string{j.name}
			oj = oj.initial(trace)
			ps, err := Policies(oj)
			if err != nil {
				errs[i] = err
				return
			}
			s := run(oj.World, trace, ps[0], false)
			points[i] = CurvePoint{Utilization: j.u, ReplicaSeconds: s.ReplicaSeconds, UnservedRequests: s.UnservedRequests}
			if i == 0 {
				demand = s.DemandTotal
			}
		})
	}
	wg.Wait()
	curves := map[string]Curve{}
	for i, j := range jobs {
		if errs[i] != nil {
			return nil, 0, errs[i]
		}
		c := curves[j.name]
		c.Policy = j.name
		c.Points = append(c.Points, points[i])
		curves[j.name] = c
	}
	for name, c := range curves {
		slices.SortFunc(c.Points, func(a, b CurvePoint) int {
			switch {
			case a.ReplicaSeconds < b.ReplicaSeconds:
				return -1
			case a.ReplicaSeconds > b.ReplicaSeconds:
				return 1
			}
			return 0
		})
		curves[name] = c
	}
	return curves, demand, nil
}

// At returns the curve's point at knob u.
func (c Curve) At(u float64) (CurvePoint, bool) {
	for _, p := range c.Points {
		if math.Abs(p.Utilization-u) < 1e-9 {
			return p, true
		}
	}
	return CurvePoint{}, false
}

// UnservedAt is the policy's unserved requests at cost (replica-seconds):
// linear between the two points of the curve around it. Outside the
// curve's range it reports false.
func (c Curve) UnservedAt(cost float64) (float64, bool) {
	pts := c.Points
	if len(pts) == 0 || cost < pts[0].ReplicaSeconds || cost > pts[len(pts)-1].ReplicaSeconds {
		return 0, false
	}
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		if cost <= b.ReplicaSeconds {
			if b.ReplicaSeconds == a.ReplicaSeconds {
				return min(a.UnservedRequests, b.UnservedRequests), true
			}
			f := (cost - a.ReplicaSeconds) / (b.ReplicaSeconds - a.ReplicaSeconds)
			return a.UnservedRequests + f*(b.UnservedRequests-a.UnservedRequests), true
		}
	}
	return pts[0].UnservedRequests, true
}

// EqualCost compares ours (one point) with a peer's curve: the peer's
// unserved requests at ours' cost, and the ratio of ours' to it.
type EqualCost struct {
	Peer string `json:"peer"`
	// PeerUnserved is the peer's unserved requests at ours' cost.
	PeerUnserved float64 `json:"peerUnservedRequests"`
	// Ratio is ours' unserved over PeerUnserved: below 1, ours serves more
	// for the same replica-seconds. NaN when both are zero.
	Ratio float64 `json:"ratio"`
	// Bound is "" when ours' cost lies on the peer's curve; "cheaper"
	// when ours costs less than the peer's cheapest point, whose unserved
	// is then used (the peer would leave more at ours' cost: the ratio is
	// an upper bound); "dearer" when ours costs more than the peer's
	// dearest point (no fair reading: Ratio is NaN).
	Bound string `json:"bound,omitempty"`
}

// Compare reads peer's unserved requests at ours' cost.
func (c Curve) Compare(ours CurvePoint) EqualCost {
	e := EqualCost{Peer: c.Policy}
	v, ok := c.UnservedAt(ours.ReplicaSeconds)
	switch {
	case ok:
	case len(c.Points) > 0 && ours.ReplicaSeconds < c.Points[0].ReplicaSeconds:
		v, e.Bound = c.Points[0].UnservedRequests, "cheaper"
	default:
		e.Bound, e.Ratio, e.PeerUnserved = "dearer", math.NaN(), math.NaN()
		return e
	}
	e.PeerUnserved = v
	switch {
	case v == 0 && ours.UnservedRequests == 0:
		e.Ratio = math.NaN()
	case v == 0:
		e.Ratio = math.Inf(1)
	default:
		e.Ratio = ours.UnservedRequests / v
	}
	return e
}

// Met reports whether the ratio meets goal (at most goal; both zero meets
// any goal: neither left a request unserved).
func (e EqualCost) Met(goal float64, oursUnserved float64) bool {
	if e.Bound == "dearer" {
		return false
	}
	if math.IsNaN(e.Ratio) {
		return oursUnserved == 0
	}
	return e.Ratio <= goal
}

// String is the ratio as the tables print it.
func (e EqualCost) String() string {
	switch {
	case e.Bound == "dearer":
		return "n/a (dearer)"
	case math.IsNaN(e.Ratio):
		return "= (0 and 0)"
	case math.IsInf(e.Ratio, 1):
		return "+inf"
	case e.Bound == "cheaper":
		return fmt.Sprintf("<=%.2fx", e.Ratio)
	}
	return fmt.Sprintf("%.2fx", e.Ratio)
}

// ServiceLevels are the shares of demand served a platform engineer
// budgets for: what does serving 99.9 % (or 99.99 %) of requests cost?
var ServiceLevels = []float64{0.999, 0.9999}

// CostAt is the least replica-seconds at which the policy leaves at most
// maxUnserved requests unserved, over its knob's sweep: from the
// cheapest point on, the first that reaches it, and, when a cheaper point
// before it does not, the cost where the line between the two crosses
// maxUnserved (the knob's grid is coarse; reading the point alone would
// charge a policy for the grid). It reports false when no point reaches
// it: the policy does not serve that level at any knob swept.
func (c Curve) CostAt(maxUnserved float64) (float64, bool) {
	for i, p := range c.Points {
		if p.UnservedRequests > maxUnserved {
			continue
		}
		if i == 0 {
			return p.ReplicaSeconds, true
		}
		a := c.Points[i-1]
		f := (a.UnservedRequests - maxUnserved) / (a.UnservedRequests - p.UnservedRequests)
		return a.ReplicaSeconds + f*(p.ReplicaSeconds-a.ReplicaSeconds), true
	}
	return 0, false
}

// FloorReplicaSeconds is the physical floor of a trace's cost: at every
// tick exactly the replicas that carry its demand (at least one), ready
// the moment they are needed. No policy that serves every request can
// cost less; one that serves 99.9 % may, by a little.
func FloorReplicaSeconds(w World, trace *Trace) float64 {
	total, dt := 0.0, w.Tick.Seconds()
	for now := time.Duration(0); now < trace.Duration(); now += w.Tick {
		total += max(1, math.Ceil(trace.demand(now)/w.Capacity)) * dt
	}
	return total
}
