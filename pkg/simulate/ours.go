package simulate

import (
	"context"
	"math"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// Epoch is the wall-clock time of the trace's first row (the schedule
// strategy reads the hour).
var Epoch = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday, 00:00 UTC

// Alerting models the spike path: the RequestRateSpike rule (rate over
// Short more than Factor times the rate over Long ending Short earlier, and
// above Floor) evaluated every EvalInterval, held For, then Alertmanager's
// GroupWait before the webhook call; a call opens a spike window of Window
// with a spike evaluation every Resolution.
type Alerting struct {
	EvalInterval, For, GroupWait time.Duration
	Short, Long                  time.Duration
	Factor, Floor                float64
	Window, Resolution           time.Duration
}

// DefaultAlerting is deploy/prometheus's rule (evaluated every 5 s, a common
// production setting; the repository's rule uses 1 s), the example route's
// group_wait and the binary's spike window.
var DefaultAlerting = Alerting{EvalInterval: 5 * time.Second, GroupWait: time.Second, Short: 10 * time.Second, Long: time.Minute,
	Factor: 2, Floor: 10, Window: 30 * time.Second, Resolution: time.Second}

// Reactive is reactive-autoscaler: every Spec.Interval the rate over
// RateWindow (the default query's 1m) goes through scaler.Decide, the code
// the controller runs; with Spike, the spike path too; with Predictor, the
// strategy of Spec combines its answer.
type Reactive struct {
	Label      string
	Spec       *scaler.Spec
	RateWindow time.Duration
	Spike      *Alerting        // nil: no spike path
	Predictor  scaler.Predictor // nil: none
	// Perfect makes the predictor answer the true demand Spec.Horizon ahead.
	Perfect bool

	state      scaler.State
	next       time.Duration
	firingFrom time.Duration // -1: the rule's condition does not hold
	notified   bool          // this firing episode has been sent
	notifyAt   time.Duration // -1: no webhook call pending
	spikeUntil time.Duration
	nextSpike  time.Duration
	nextRule   time.Duration
	history    []scaler.Sample
	// Decisions records every evaluation's input and result (tests).
	Decisions []Decision
}

// Decision is one evaluation as Reactive saw it.
type Decision struct {
	At       time.Duration
	RPS      float64
	Spike    bool
	Replicas int32 // after the decision
	Reason   string
}

// Name implements Policy.
func (r *Reactive) Name() string { return r.Label }

// Step implements Policy.
func (r *Reactive) Step(now time.Duration, v *View) int32 {
	if now == 0 {
		r.firingFrom, r.notifyAt = -1, -1
	}
	want := v.Current()
	if r.Spike != nil {
		r.rule(now, v)
		if r.notifyAt >= 0 && now >= r.notifyAt {
			r.notifyAt = -1
			r.spikeUntil, r.nextSpike = now+r.Spike.Window, now
		}
		if now < r.spikeUntil && now >= r.nextSpike {
			want = r.evaluate(now, v, want, true)
			r.nextSpike = now + r.Spike.Resolution
		}
	}
	if now >= r.next {
		want = r.evaluate(now, v, want, now < r.spikeUntil)
		r.next = now + r.Spec.Interval
	}
	return want
}

// rule evaluates the spike rule at its interval and schedules the webhook
// call when it starts firing (Alertmanager notifies a new group once).
func (r *Reactive) rule(now time.Duration, v *View) {
	a := r.Spike
	if now < r.nextRule {
		return
	}
	r.nextRule = now + a.EvalInterval
	short, long := v.Rate(a.Short), v.RateOffset(a.Long, a.Short)
	if !(short > a.Factor*long && short > a.Floor) { // NaN: false
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

func (r *Reactive) evaluate(now time.Duration, v *View, current int32, spike bool) int32 {
	at := Epoch.Add(now)
	rps := v.Rate(r.RateWindow)
	in := scaler.Input{Current: current, RPS: rps, Spike: spike}
	if math.IsNaN(rps) {
		in.NoData = errOutage
	} else if !spike {
		r.history = append(r.history, scaler.Sample{T: float64(at.Unix()), RPS: rps})
		if len(r.history) > 60 {
			r.history = r.history[1:]
		}
		in.Prediction = r.predict(v, current, rps)
	}
	dec, next := scaler.Decide(at, r.Spec, r.state, in)
	r.state = next
	if dec.Action != scaler.Hold {
		r.state = next.Scaled(at)
		current = dec.Desired
	}
	r.Decisions = append(r.Decisions, Decision{At: now, RPS: rps, Spike: spike, Replicas: current, Reason: dec.Reason})
	return current
}

func (r *Reactive) predict(v *View, current int32, rps float64) *scaler.Prediction {
	if r.Perfect {
		return &scaler.Prediction{RPS: v.Future(r.Spec.Horizon), HasRPS: true, Source: "perfect"}
	}
	if r.Predictor == nil {
		return nil
	}
	p, err := r.Predictor.Predict(context.Background(), scaler.PredictRequest{
		HorizonSeconds: int(r.Spec.Horizon / time.Second), CurrentReplicas: current, CurrentRPS: rps, History: r.history})
	if err != nil {
		return nil // too little history yet: reactive
	}
	return &p
}

type outage struct{}

func (outage) Error() string { return "metrics outage in the trace" }

var errOutage error = outage{}
