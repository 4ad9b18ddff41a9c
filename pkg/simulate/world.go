// Package simulate replays a request-rate trace through autoscaling
// policies in a model of the world, on a simulated clock: ours (the real
// pkg/scaler decision, with and without the spike path, hybrid with a
// predictor) and baselines implemented from the documented algorithms of
// the Kubernetes HPA, KEDA's Prometheus scaler and Knative's KPA. It scores
// each policy on the same demand.
//
// The model, and its assumptions:
//   - Demand is the trace, piecewise constant between its rows; a row
//     without a value (NaN) is a metrics outage: demand continues (the
//     neighbours' value) but no policy can observe it.
//   - A new replica becomes ready Startup after it is asked for; a removed
//     replica stops serving at once. Each ready replica serves Capacity
//     requests per second; demand above ready capacity is not served.
//   - Prometheus scrapes every Scrape; a rate over a window, as of time t,
//     is the mean demand over the window ending at the last scrape before t.
//     Knative's autoscaler reads its pods directly, every second.
//   - Replica-seconds count every replica asked for, ready or starting:
//     starting pods cost as much as serving ones.
package simulate

import (
	"math"
	"time"
)

// World is the environment the policies act in.
type World struct {
	Capacity float64       // requests per second one ready replica serves
	Startup  time.Duration // from a scale-up to the new replica being ready
	Scrape   time.Duration // Prometheus scrape interval
	Tick     time.Duration // simulation resolution
	Initial  int32         // replicas at the start
}

// DefaultWorld is the model's defaults.
var DefaultWorld = World{Capacity: 25, Startup: 30 * time.Second, Scrape: 15 * time.Second, Tick: time.Second, Initial: 1}

// Policy decides replicas. Step is called every World.Tick; it returns the
// replicas it wants now (the current count for no change).
type Policy interface {
	Name() string
	Step(now time.Duration, v *View) int32
}

// View is what a policy may observe at a tick.
type View struct {
	trace   *Trace
	world   World
	now     time.Duration
	current int32
	ready   int32
}

// Current is the replica count asked for (ready or starting).
func (v *View) Current() int32 { return v.current }

// Ready is the count of ready replicas.
func (v *View) Ready() int32 { return v.ready }

// Rate is a Prometheus rate over window as of now: the mean demand over the
// window ending at the last scrape. NaN when the metric was out for the
// whole window. A zero window is the demand at the last scrape.
func (v *View) Rate(window time.Duration) float64 {
	at := v.now.Truncate(v.world.Scrape)
	return v.trace.mean(at-window, at)
}

// RateOffset is Rate over window ending offset before the last scrape.
func (v *View) RateOffset(window, offset time.Duration) float64 {
	at := v.now.Truncate(v.world.Scrape) - offset
	return v.trace.mean(at-window, at)
}

// Direct is the mean demand over the window ending now, as a component that
// reads its pods every second sees it (Knative's autoscaler).
func (v *View) Direct(window time.Duration) float64 {
	return v.trace.mean(v.now-window, v.now)
}

// Future is the true demand at now+ahead, for a perfect-foresight predictor.
func (v *View) Future(ahead time.Duration) float64 { return v.trace.demand(v.now + ahead) }

// Score is how a policy did.
type Score struct {
	Policy            string  `json:"policy"`
	UnderProvisionedS float64 `json:"underProvisionedSeconds"` // demand above ready capacity
	UnservedRequests  float64 `json:"unservedRequests"`
	ReplicaSeconds    float64 `json:"replicaSeconds"`
	ScaleActions      int     `json:"scaleActions"`
	PeakReplicas      int32   `json:"peakReplicas"`
	Series            []Point `json:"-"`
	DemandTotal       float64 `json:"-"`
}

// Point is the state at one tick, for plots.
type Point struct {
	T               time.Duration
	Demand          float64
	Replicas, Ready int32
}

// Run replays trace through p.
func Run(w World, trace *Trace, p Policy) Score {
	s := Score{Policy: p.Name()}
	var readyAt []time.Duration // one per replica asked for, sorted
	for i := int32(0); i < w.Initial; i++ {
		readyAt = append(readyAt, -w.Startup)
	}
	dt := w.Tick.Seconds()
	end := trace.Duration()
	for now := time.Duration(0); now < end; now += w.Tick {
		ready := int32(0)
		for _, r := range readyAt {
			if r <= now {
				ready++
			}
		}
		v := &View{trace: trace, world: w, now: now, current: int32(len(readyAt)), ready: ready}
		want := max(p.Step(now, v), 1)
		switch {
		case want > v.current:
			for range want - v.current {
				readyAt = append(readyAt, now+w.Startup)
			}
			s.ScaleActions++
		case want < v.current:
			// Starting replicas go first, then the newest ready ones.
			readyAt = readyAt[:want]
			s.ScaleActions++
		}
		ready = 0
		for _, r := range readyAt {
			if r <= now {
				ready++
			}
		}
		demand := trace.demand(now)
		capacity := float64(ready) * w.Capacity
		if demand > capacity {
			s.UnderProvisionedS += dt
			s.UnservedRequests += (demand - capacity) * dt
		}
		s.DemandTotal += demand * dt
		s.ReplicaSeconds += float64(len(readyAt)) * dt
		s.PeakReplicas = max(s.PeakReplicas, int32(len(readyAt)))
		s.Series = append(s.Series, Point{T: now, Demand: demand, Replicas: int32(len(readyAt)), Ready: ready})
	}
	return s
}

// Trace is demand over time: RPS[i] from i*Step to (i+1)*Step. NaN marks
// a metrics outage (demand continues; observations are missing).
type Trace struct {
	Name string
	Step time.Duration
	RPS  []float64
	fill []float64 // RPS with outages filled by the neighbours
}

// Duration is the trace's length.
func (t *Trace) Duration() time.Duration { return time.Duration(len(t.RPS)) * t.Step }

func (t *Trace) filled() []float64 {
	if t.fill != nil {
		return t.fill
	}
	t.fill = make([]float64, len(t.RPS))
	last := math.NaN()
	for i, v := range t.RPS {
		if !math.IsNaN(v) {
			last = v
		}
		t.fill[i] = last
	}
	// Leading outage: the first value seen.
	for i := range t.fill {
		if !math.IsNaN(t.fill[i]) {
			for j := range i {
				t.fill[j] = t.fill[i]
			}
			break
		}
	}
	return t.fill
}

func (t *Trace) index(at time.Duration) int {
	i := int(at / t.Step)
	return min(max(i, 0), len(t.RPS)-1)
}

// demand is the true demand at at.
func (t *Trace) demand(at time.Duration) float64 { return t.filled()[t.index(at)] }

// mean is the observable mean demand over [from, to): NaN if every row in
// it is an outage. An empty window is the row at to.
func (t *Trace) mean(from, to time.Duration) float64 {
	from = max(from, 0)
	if to <= from {
		return t.RPS[t.index(to)]
	}
	sum, seconds := 0.0, 0.0
	for at := from; at < to; {
		i := t.index(at)
		next := min(time.Duration(i+1)*t.Step, to)
		if i == len(t.RPS)-1 {
			next = to
		}
		if v := t.RPS[i]; !math.IsNaN(v) {
			d := (next - at).Seconds()
			sum += v * d
			seconds += d
		}
		at = next
	}
	if seconds == 0 {
		return math.NaN()
	}
	return sum / seconds
}
