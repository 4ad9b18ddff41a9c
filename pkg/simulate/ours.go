package simulate

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/cycle"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// Epoch is the wall-clock time of the trace's first row (the schedule
// strategy reads the hour; predictions are timed from it).
var Epoch = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday, 00:00 UTC

// Alerting models the spike path: the alert rule (rate over Short, or
// irate with Instant, more than Factor times the rate over Long ending
// Short earlier, and above Floor) evaluated every EvalInterval at the
// world's phase, held For, then Alertmanager's GroupWait before the webhook
// call; the controller then evaluates at once and every Resolution for
// Window (cycle.Cycle's spike window).
type Alerting struct {
	EvalInterval, For, GroupWait time.Duration
	Short, Long                  time.Duration
	Instant                      bool
	Factor, Floor                float64
	Window, Resolution           time.Duration
}

// DefaultAlerting is deploy/prometheus's rule (rate[10s] against the minute
// before; evaluated every 5 s, a common production setting, where the
// repository's rule uses 1 s), the example route's group_wait and the
// binary's spike window. At a 15 s scrape rate(x[10s]) holds one sample at
// most and never has a value, so this rule never fires there.
var DefaultAlerting = Alerting{EvalInterval: 5 * time.Second, GroupWait: time.Second, Short: 10 * time.Second, Long: time.Minute,
	Factor: 2, Floor: 10, Window: 30 * time.Second, Resolution: time.Second}

// ChartAlerting is the rule the chart renders for a scrape interval
// (prometheusRule.scrapeInterval): an irate over three scrapes against a
// rate over four scrapes and at least a minute before them, evaluated every
// 5 s (prometheusRule.interval), above 10 RPS (minRPS); the rest as
// DefaultAlerting. It fires one scrape after a step at any scrape, where
// DefaultAlerting, written for the repository's 1 s scrape, never fires at
// a 10 s scrape or slower.
func ChartAlerting(scrape time.Duration) Alerting {
	a := DefaultAlerting
	a.Short, a.Long, a.Instant = 3*scrape, max(time.Minute, 4*scrape), true
	return a
}

// Ours is reactive-autoscaler: its evaluation cycle (pkg/cycle, the
// code the controller runs) at Spec.Interval, first at Phase; the rate is
// the default query's, a rate over RateWindow (1m); with Spike, the alert
// rule, Alertmanager and the spike window too; with Predictor (or Perfect),
// the spec's strategy combines the predictor's answer.
type Ours struct {
	Label      string
	Spec       *scaler.Spec
	RateWindow time.Duration
	Instant    bool // the query is an irate over RateWindow
	Phase      time.Duration
	Spike      *Alerting        // nil: no spike path
	Predictor  scaler.Predictor // nil: none configured
	// Oracle makes the predictor answer the true peak demand over the
	// next Spec.Horizon (the oracle policy: the most any forecast could
	// tell).
	Oracle bool

	cycle      *cycle.Cycle
	firingFrom time.Duration // -1: the rule's condition does not hold
	notified   bool          // this firing episode has been sent
	notifyAt   time.Duration // -1: no webhook call pending
	spikeDue   time.Duration // -1: no spike evaluation queued
	triggered  bool          // a webhook call is waiting for its evaluation
	// Decisions records every evaluation's input and result; Notified
	// every webhook call (tests).
	Decisions []Decision
	Notified  []time.Duration
}

// Decision is one evaluation as Ours saw it.
type Decision struct {
	At       time.Duration
	RPS      float64
	Spike    bool
	DataOK   bool
	Action   scaler.Action
	Replicas int32 // after the decision
	Reason   string
}

// Name implements Policy.
func (r *Ours) Name() string { return r.Label }

// Step implements Policy. At one instant, as in the controller's queues: a
// webhook call queues a spike evaluation at once; the spike evaluation
// runs, then the periodic one.
func (r *Ours) Step(now time.Duration, v *View) int32 {
	if r.cycle == nil {
		r.cycle = cycle.New(time.Time{})
		r.firingFrom, r.notifyAt, r.spikeDue = -1, -1, -1
	}
	want := v.Current()
	if r.Spike != nil {
		r.rule(now, v)
		if r.notifyAt >= 0 && now >= r.notifyAt {
			r.notifyAt = -1
			r.Notified = append(r.Notified, now)
			r.triggered, r.spikeDue = true, now
		}
		if r.spikeDue >= 0 && now >= r.spikeDue {
			if r.triggered {
				r.cycle.Trigger(Epoch.Add(now), r.Spike.Window)
				r.triggered = false
			}
			want = r.evaluate(now, v, want)
			r.spikeDue = -1
			if at, ok := r.cycle.FollowUp(Epoch.Add(now), r.Spike.Resolution); ok {
				r.spikeDue = at.Sub(Epoch)
			}
		}
	}
	if periodic(now, r.Phase, r.Spec.Interval) {
		want = r.evaluate(now, v, want)
	}
	return want
}

// rule evaluates the alert rule at its interval and schedules the webhook
// call when it starts firing (Alertmanager notifies a new group once).
func (r *Ours) rule(now time.Duration, v *View) {
	a := r.Spike
	if !periodic(now, r.Phase, a.EvalInterval) {
		return
	}
	short, long := v.Rate, v.RateOffset(a.Long, a.Short)
	if a.Instant {
		short = v.IRate
	}
	if s := short(a.Short); !(s > a.Factor*long && s > a.Floor) { // NaN: false
		r.firingFrom, r.notified = -1, false
		return
	}
	if r.firingFrom < 0 {
		r.firingFrom = now
	}
	if !r.notified && now-r.firingFrom >= a.For {
		r.notified = true
		r.notifyAt = now + a.GroupWait
	}
}

// evaluate runs one cycle at now against the model and carries the
// decision out at once (the model's API server never refuses a write).
func (r *Ours) evaluate(now time.Duration, v *View, current int32) int32 {
	at := Epoch.Add(now)
	env := cycle.Env{Source: modelSource{v: v, window: r.RateWindow, instant: r.Instant}, Predictor: r.Predictor, Name: r.Label}
	if sp, ok := r.Predictor.(cycle.SeasonalPredictor); ok {
		env.Season = sp.Season()
	}
	if r.Oracle {
		env.Predictor = oracle{v: v, horizon: r.Spec.Horizon}
	}
	o := r.cycle.Evaluate(context.Background(), at, r.Spec, current, env)
	dec := o.Decision
	scaled := dec.Action != scaler.Hold
	r.cycle.Commit(o, scaled, at)
	if scaled {
		current = dec.Desired
	}
	r.Decisions = append(r.Decisions, Decision{At: now, RPS: dec.RPS, Spike: o.Spike, DataOK: dec.DataOK, Action: dec.Action, Replicas: current, Reason: dec.Reason})
	return current
}

// modelSource answers the cycle's queries from the model's Prometheus.
type modelSource struct {
	v       *View
	window  time.Duration
	instant bool // irate, not rate
}

func (m modelSource) at(q time.Duration) float64 {
	if m.instant {
		return m.v.trace.irateSeen(q, m.v.world.Ingest, m.window, m.v.world.Scrape)
	}
	return m.v.trace.rateSeen(q, m.v.world.Ingest, m.window, m.v.world.Scrape)
}

// ErrOutage is the model's "no data": no scrape in the rate's window.
var ErrOutage = fmt.Errorf("no samples in the rate's window (metrics outage)")

func (m modelSource) Rate(_ context.Context, now time.Time, _ bool) (float64, error) {
	rps := m.at(now.Sub(Epoch))
	if math.IsNaN(rps) {
		return 0, ErrOutage
	}
	return rps, nil
}

func (m modelSource) History(_ context.Context, end time.Time, step time.Duration, n int) ([]scaler.Sample, error) {
	var out []scaler.Sample
	for i := n; i >= 0; i-- {
		at := end.Add(-time.Duration(i) * step)
		if rps := m.at(at.Sub(Epoch)); !math.IsNaN(rps) {
			out = append(out, scaler.Sample{T: float64(at.UnixMilli()) / 1000, RPS: rps})
		}
	}
	return out, nil
}

// oracle is a predictor with perfect foresight: the true peak demand over
// the horizon.
type oracle struct {
	v       *View
	horizon time.Duration
}

func (p oracle) Predict(context.Context, scaler.PredictRequest) (scaler.Prediction, error) {
	return scaler.Prediction{RPS: p.v.Peak(p.horizon), HasRPS: true, Source: "oracle"}, nil
}
