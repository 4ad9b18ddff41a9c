// Package simulate replays a request-rate trace through autoscaling
// policies in a model of the world, on a simulated clock: ours (the
// controller's own evaluation cycle, pkg/cycle, over pkg/scaler's decision)
// and baselines implemented from the upstream algorithms of the Kubernetes
// HPA, KEDA's Prometheus scaler and Knative's KPA. It scores each policy on
// the same demand, and compares them at equal cost (equalcost.go).
//
// The model, and its assumptions (docs/SIMULATE.md says why each holds):
//   - Demand is the trace, piecewise constant between its rows; a row
//     without a value (NaN) is a metrics outage: demand continues (the
//     previous value) but no scrape succeeds while it lasts.
//   - A new replica becomes ready Startup after it is asked for; a removed
//     replica stops serving at once. Each ready replica serves Capacity
//     requests per second; demand above ready capacity is not served.
//   - Prometheus scrapes a request counter at every multiple of Scrape
//     (phase 0); a sample is queryable World.Ingest after it (0 by
//     default: a local Prometheus). rate(x[w]) at time q is the
//     counter's slope between the first and the last sample in (q-w, q],
//     which is what Prometheus' extrapolated rate returns when the samples
//     are evenly spaced; fewer than two samples in the window is no data
//     (so rate(x[10s]) at a 15 s scrape never has a value).
//   - Every loop that reads Prometheus (ours, the HPA, KEDA, the alert
//     rule) runs at World.Phase after a scrape: its data is Phase old.
//     Knative's autoscaler reads its pods itself every second, so its data
//     is current.
//   - Every policy starts at Initial replicas (by default the first
//     demand over capacity x the cost knob, rounded up): the service was
//     running before the trace begins.
//   - Replica-seconds count every replica asked for, ready or starting:
//     starting pods cost as much as serving ones.
package simulate

import (
	"encoding/json"
	"math"
	"time"
)

// World is the environment the policies act in.
type World struct {
	Capacity float64       // requests per second one ready replica serves
	Startup  time.Duration // from a scale-up to the new replica being ready
	Scrape   time.Duration // Prometheus scrape interval
	// Phase is how long after a scrape every Prometheus-fed loop runs (ours,
	// the HPA's sync, KEDA's, the alert rule's): the age of the newest sample
	// each of them reads. Loops with the same period as the scrape, or a
	// multiple of it, keep this phase for ever; half the scrape interval is
	// the mean over all phases.
	Phase time.Duration
	Tick  time.Duration // simulation resolution
	// Ingest is how long after its scrape a sample becomes queryable: 0
	// for a Prometheus that scrapes the pods itself; a remote-write
	// pipeline, an agent or a long-term store adds seconds to a minute.
	// It delays every Prometheus-fed loop (ours, the alert rule, the HPA,
	// KEDA), not Knative's autoscaler, which reads its pods.
	Ingest time.Duration
	// Initial is the replicas at the start; 0: the steady state of the
	// first demand at the comparison's cost knob (a service already
	// running when the trace starts, not one starting from one replica).
	Initial int32
}

// MarshalJSON writes w with lower-case names and durations in seconds,
// the names simulate --json and bench-quality -json promise.
func (w World) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Capacity float64 `json:"capacityRPS"`
		Startup  float64 `json:"startupSeconds"`
		Scrape   float64 `json:"scrapeSeconds"`
		Phase    float64 `json:"phaseSeconds"`
		Tick     float64 `json:"tickSeconds"`
		Ingest   float64 `json:"ingestSeconds"`
		Initial  int32   `json:"initialReplicas"`
	}{w.Capacity, w.Startup.Seconds(), w.Scrape.Seconds(), w.Phase.Seconds(), w.Tick.Seconds(), w.Ingest.Seconds(), w.Initial})
}

// DefaultWorld is the model's defaults: 25 RPS per replica, 30 s to start
// one, a 15 s scrape (Prometheus' and most charts' default) read 7 s after
// it, a 1 s clock.
var DefaultWorld = World{Capacity: 25, Startup: 30 * time.Second, Scrape: 15 * time.Second, Phase: 7 * time.Second, Tick: time.Second}

// WithScrape returns w with scrape interval s and its loops at the phase of
// half of it (rounded down to the tick).
func (w World) WithScrape(s time.Duration) World {
	w.Scrape, w.Phase = s, (s / 2).Truncate(w.Tick)
	return w
}

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

// Rate is rate(x[window]) as of now, from the scrapes so far: the counter's
// slope between the first and the last sample in (now-window, now]; NaN
// with fewer than two samples there. A zero window is the demand at the
// last scrape (an ideal instant metric, for tests).
func (v *View) Rate(window time.Duration) float64 {
	return v.trace.rateSeen(v.now, v.world.Ingest, window, v.world.Scrape)
}

// IRate is irate(x[window]) as of now.
func (v *View) IRate(window time.Duration) float64 {
	return v.trace.irateSeen(v.now, v.world.Ingest, window, v.world.Scrape)
}

// RateOffset is Rate over window ending offset before now (PromQL offset).
func (v *View) RateOffset(window, offset time.Duration) float64 {
	return v.trace.rateSeen(v.now-offset, v.world.Ingest, window, v.world.Scrape)
}

// Direct is the mean demand over the window ending age ago, as a component
// that reads its pods itself sees it (Knative's autoscaler).
func (v *View) Direct(window, age time.Duration) float64 {
	return v.trace.mean(v.now-age-window, v.now-age)
}

// DirectWeighted is Knative's weightedExponential average of the demand
// over the window ending age ago, in 1 s buckets (its BucketSize), newest
// first: bucket i weighs m(1-m)^i, with m = 1-(1-0.9999)^(1/buckets) but
// at least 0.2 (its weightPrecision and minExponent), so that any window
// of 41 s or more decays at 0.2 a second.
func (v *View) DirectWeighted(window, age time.Duration) float64 {
	nb := math.Ceil(window.Seconds())
	m := math.Max(1-math.Pow(1-0.9999, 1/nb), 0.2)
	sum, w := 0.0, m
	for i := range int(nb) {
		end := v.now - age - time.Duration(i)*time.Second
		sum += w * v.trace.mean(end-time.Second, end)
		w *= 1 - m
	}
	return sum
}

// Peak is the true highest demand over (now, now+ahead], for the oracle.
func (v *View) Peak(ahead time.Duration) float64 {
	peak := v.trace.demand(v.now)
	for at := v.now.Truncate(v.trace.Step) + v.trace.Step; at <= v.now+ahead && at < v.trace.Duration(); at += v.trace.Step {
		peak = max(peak, v.trace.demand(at))
	}
	return peak
}

// Score is how a policy did.
type Score struct {
	Policy            string  `json:"policy"`
	UnderProvisionedS float64 `json:"underProvisionedSeconds"` // demand above ready capacity
	UnservedRequests  float64 `json:"unservedRequests"`
	ReplicaSeconds    float64 `json:"replicaSeconds"`
	ScaleActions      int     `json:"scaleActions"`
	PeakReplicas      int32   `json:"peakReplicas"`
	// DemandRequests is every request of the trace; UnservedShare is
	// UnservedRequests over it.
	DemandRequests float64 `json:"demandRequests"`
	UnservedShare  float64 `json:"unservedShare"`
	Series         []Point `json:"-"`
	DemandTotal    float64 `json:"-"`
}

// Point is the state at one tick, for plots.
type Point struct {
	T               time.Duration
	Demand          float64
	Replicas, Ready int32
}

// Run replays trace through p.
func Run(w World, trace *Trace, p Policy) Score { return run(w, trace, p, true) }

// run replays trace through p, keeping the series for plots when asked.
func run(w World, trace *Trace, p Policy, series bool) Score {
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
		if series {
			s.Series = append(s.Series, Point{T: now, Demand: demand, Replicas: int32(len(readyAt)), Ready: ready})
		}
	}
	s.DemandRequests = s.DemandTotal
	if s.DemandTotal > 0 {
		s.UnservedShare = s.UnservedRequests / s.DemandTotal
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
	cum  []float64 // cum[i]: requests before row i (filled demand)
}

// Duration is the trace's length.
func (t *Trace) Duration() time.Duration { return time.Duration(len(t.RPS)) * t.Step }

// Peak is the trace's highest rate (gaps left out).
func (t *Trace) Peak() float64 {
	peak := 0.0
	for _, v := range t.RPS {
		if !math.IsNaN(v) {
			peak = max(peak, v)
		}
	}
	return peak
}

func (t *Trace) filled() []float64 {
	if t.fill != nil {
		return t.fill
	}
	t.fill = make([]float64, len(t.RPS))
	defer t.cumulate()
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

func (t *Trace) cumulate() {
	t.cum = make([]float64, len(t.fill)+1)
	for i, v := range t.fill {
		t.cum[i+1] = t.cum[i] + v*t.Step.Seconds()
	}
}

// PreTrace is how long the service ran, at the trace's first rate, before
// the trace starts: every loop has data at t=0 (rate windows, warm-ups),
// but no day of made-up history reaches the forecaster.
const PreTrace = time.Hour

// counterBase is the request counter at t=0: the service counted for a
// day at the trace's first rate before the trace starts, so that no rate
// window near the start sees a counter near zero.
func (t *Trace) counterBase() float64 { return t.filled()[0] * 86400 }

// counter is the request counter at at: every request served or not (a
// service counts the requests it receives). Before t=0 the service ran at
// the trace's first rate.
func (t *Trace) counter(at time.Duration) float64 {
	t.filled()
	if at < 0 {
		return t.counterBase() + t.fill[0]*at.Seconds()
	}
	i := t.index(at)
	return t.counterBase() + t.cum[i] + t.fill[i]*(at-time.Duration(i)*t.Step).Seconds()
}

// scraped reports whether a scrape at at succeeded (no metrics outage).
// Every scrape in the PreTrace before t=0 did, and none before.
func (t *Trace) scraped(at time.Duration) bool {
	if at < 0 {
		return at >= -PreTrace
	}
	return !math.IsNaN(t.RPS[t.index(at)])
}

// rate is rate(x[window]) evaluated at q by a Prometheus scraping every
// scrape (see View.Rate), extrapolated to the window's edges as
// Prometheus' extrapolatedRate does: by the gap to each edge when it is
// below 1.1 average scrape intervals, else by half an interval (the
// counter never reaches zero in the model, so its zero-clamp never
// applies). With evenly spaced scrapes this is the slope between the
// first and last sample; it differs beside a gap in the scrapes.
func (t *Trace) rate(q, window, scrape time.Duration) float64 {
	return t.rateSeen(q, 0, window, scrape)
}

// rateSeen is rate(x[window]) at q when a sample becomes queryable ingest
// after its scrape: the samples of the window not yet ingested are
// missing, and Prometheus extrapolates over what it has.
func (t *Trace) rateSeen(q, ingest, window, scrape time.Duration) float64 {
	if window == 0 {
		return t.RPS[t.index((q - ingest).Truncate(scrape))]
	}
	newest, _, oldest, n := t.scrapes(q, ingest, window, scrape)
	if n < 2 {
		return math.NaN()
	}
	sampled := (newest - oldest).Seconds()
	avg := sampled / float64(n-1)
	toStart, toEnd := (oldest - (q - window)).Seconds(), (q - newest).Seconds()
	if toStart >= 1.1*avg {
		toStart = avg / 2
	}
	if toEnd >= 1.1*avg {
		toEnd = avg / 2
	}
	delta := t.counter(newest) - t.counter(oldest)
	return delta * (sampled + toStart + toEnd) / sampled / window.Seconds()
}

// PromRate is what the model's Prometheus, scraping every scrape, answers
// for rate(x[window]) (or irate, when instant) evaluated at q: NaN for no
// sample. Tests serve it to the controller to replay a trace through it.
func (t *Trace) PromRate(q, window, scrape time.Duration, instant bool) float64 {
	t.filled()
	if instant {
		return t.irate(q, window, scrape)
	}
	return t.rate(q, window, scrape)
}

// irate is irate(x[window]) at q: the slope between the last two samples
// in (q-window, q]; NaN with fewer than two.
func (t *Trace) irate(q, window, scrape time.Duration) float64 {
	return t.irateSeen(q, 0, window, scrape)
}

// irateSeen is irate(x[window]) at q with rateSeen's ingestion delay.
func (t *Trace) irateSeen(q, ingest, window, scrape time.Duration) float64 {
	newest, previous, _, n := t.scrapes(q, ingest, window, scrape)
	if n < 2 {
		return math.NaN()
	}
	return (t.counter(newest) - t.counter(previous)) / (newest - previous).Seconds()
}

// scrapes finds the successful scrapes in (q-window, q] that are
// queryable at q (scraped ingest or more before it): the newest, the one
// before it, the oldest, and how many there are.
func (t *Trace) scrapes(q, ingest, window, scrape time.Duration) (newest, previous, oldest time.Duration, n int) {
	last := (q - ingest).Truncate(scrape)
	if last > q-ingest {
		last -= scrape // Truncate rounds toward zero: before t=0, up
	}
	for s := last; s > q-window; s -= scrape {
		if !t.scraped(s) {
			continue
		}
		switch n {
		case 0:
			newest = s
		case 1:
			previous = s
		}
		oldest = s
		n++
	}
	return newest, previous, oldest, n
}

// demand is the true demand at at.
func (t *Trace) demand(at time.Duration) float64 { return t.filled()[t.index(at)] }

// mean is the mean demand over [from, to), as a component that counts
// requests itself sees it (a Prometheus outage does not blind it; before
// t=0 the demand was the first row's). An empty window is the row at to.
func (t *Trace) mean(from, to time.Duration) float64 {
	fill := t.filled()
	if to <= from {
		return fill[t.index(to)]
	}
	span := (to - from).Seconds()
	sum := 0.0
	if from < 0 {
		sum += fill[0] * (min(to, 0) - from).Seconds()
		from = 0
	}
	for at := from; at < to; {
		i := t.index(at)
		next := min(time.Duration(i+1)*t.Step, to)
		if i == len(t.RPS)-1 {
			next = to
		}
		sum += fill[i] * (next - at).Seconds()
		at = next
	}
	return sum / span
}
