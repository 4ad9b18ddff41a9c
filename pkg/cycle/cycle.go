// Package cycle is the evaluation cycle of one target: the spike window, the
// warm-up from history, the rate, the predictors' history and their shadow
// scoring, the predictor fallback and the decision. The controller
// (pkg/watch) runs it against Prometheus and the API server; the simulator
// (pkg/simulate) runs the same code against a model of the world, so that
// what simulate reports is what the controller would have done.
//
// A Cycle owns its state and takes time as an argument, as Knative's
// Autoscaler.Scale(now) does: it reads no clock, starts no goroutine and
// writes nothing. Evaluate observes and decides; the caller applies the
// decision (fence, dry run, write) and then calls Commit with what happened.
// A Cycle is not safe for concurrent use: the controller holds a per-target
// lock around an evaluation.
package cycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// WarmSamples is how many past intervals a new process or leader folds into
// a target's smoothed rate before its first decision.
const WarmSamples = 5

// HistorySamples is how many recent samples of a target the predictors see
// (30 min at the default 30 s interval).
const HistorySamples = 60

// PredictorEventEvery rate-limits the reports of a failing predictor: one
// when it starts failing, then at most one per this period while it fails.
const PredictorEventEvery = 5 * time.Minute

// Source reads one target's request rate. An error means no data.
type Source interface {
	// Rate is the target's rate at now. spike marks a spike evaluation,
	// which must read a fresh value (not one shared by a tick's batch).
	Rate(ctx context.Context, now time.Time, spike bool) (float64, error)
	// History is the rate at steps of step from end-n*step to end, oldest
	// first; steps without a value are left out.
	History(ctx context.Context, end time.Time, step time.Duration, n int) ([]scaler.Sample, error)
}

// Env is what an evaluation reads from: the target's rate, and the
// predictor its spec names (nil: that predictor is not configured here).
type Env struct {
	Source    Source
	Predictor scaler.Predictor
	// Season, when its Bucket is set, is the long history the predictor
	// learns from: the cycle reads it through Source.History and hands it
	// to the predictor with every request.
	Season SeasonSpec
	// Namespace, Name and the spec's Service identify the target to the
	// predictor.
	Namespace, Name string
}

// SeasonSpec says which long history a predictor learns from: Length
// buckets of Bucket (the query's value at each bucket's end), read again
// from the source at every multiple of Refresh. Refreshes are aligned to
// wall-clock multiples of Refresh so that targets sharing a grouped query
// share the range query too.
type SeasonSpec struct {
	Bucket  time.Duration
	Length  int
	Refresh time.Duration
	// Background: read off the evaluation's path. The evaluation that is
	// due for a refresh starts the read and decides without it; a later
	// one adopts what it brought. (A first read of a week of history for
	// thousands of targets takes long; decisions must not wait for it.)
	// Off, the evaluation reads and waits, as a simulation must.
	Background bool
	// Period, when set, finds the season's recurring pattern shorter than
	// a day (scaler.Season.Period) each time the season is read, on the
	// same path as the read.
	Period func(scaler.Season) time.Duration
}

// ErrSeasonReading: the season is being read in the background; the
// forecast comes with an evaluation after the read.
var ErrSeasonReading = errors.New("reading it from Prometheus")

// seasonReadLimit bounds a background read of the season.
const seasonReadLimit = 5 * time.Minute

// seasonRead is a read of the season under way in the background: its
// result (the season it makes, already compact) is written before done is
// closed, and read only after.
type seasonRead struct {
	done   chan struct{}
	season scaler.Season
	err    error
}

// SeasonalPredictor is a predictor that learns from a long history: the
// caller sets Env.Season to what it asks for.
type SeasonalPredictor interface {
	scaler.Predictor
	Season() SeasonSpec
}

// Cycle is one target's evaluation state.
type Cycle struct {
	state scaler.State
	// history holds the last HistorySamples good samples, the predictors'
	// input; shadow scores the predictions against them.
	history []scaler.Sample
	shadow  scaler.Shadow
	// warmed: this Cycle has tried to warm the EMA from history.
	warmed bool
	// season is the long history as of seasonAt (the refresh it belongs
	// to); seasonErr is why the last refresh failed.
	season    scaler.Season
	seasonAt  time.Time
	seasonErr error
	// reading is the background read under way (nil: none).
	reading *seasonRead
	// spikeUntil ends the spike window the last trigger opened: until then
	// every evaluation is a spike evaluation.
	spikeUntil time.Time
	// predictorDown: the last prediction failed; predictorReportedAt is
	// when that was last reported.
	predictorDown       bool
	predictorReportedAt time.Time
}

// New returns the cycle of a target last scaled at lastScale (zero: never,
// or not known), so that a restart or a new leader keeps the cooldown.
func New(lastScale time.Time) *Cycle {
	return &Cycle{state: scaler.State{LastScale: lastScale}}
}

// Outcome is one evaluation: what was observed and decided, and what the
// caller should report.
type Outcome struct {
	// Spike: a spike evaluation (scale up inside the cooldown, never down,
	// no predictor).
	Spike    bool
	Input    scaler.Input
	Decision scaler.Decision
	// WarmErr is why the smoothed rate could not be warmed from history
	// (nil: warmed, or nothing to warm).
	WarmErr error
	// Predictor is what asking the predictor found.
	Predictor PredictorNews

	next scaler.State
}

// PredictorNews is what an evaluation learnt of its predictor (zero: not
// asked, as in a spike evaluation or without data).
type PredictorNews struct {
	// Scored: a matured prediction was scored against this sample.
	Scored bool
	// Answer is the predictor's answer (nil: none asked, none yet, or it
	// failed).
	Answer *scaler.Prediction
	// NoForecast says why a predictor that needs history gave no forecast
	// (too little history yet, or reading it failed): the decision is
	// reactive. Nil when it forecast, or was not asked.
	NoForecast error
	// SeasonDays is how many whole days of history the predictor learns
	// from (0: none yet, or no season); SeasonPeriod the period within the
	// day found in it (0: none).
	SeasonDays   int
	SeasonPeriod time.Duration
	// Err is why the predictor failed; the decision is reactive. Report:
	// report it now (the first failure, then at most every
	// PredictorEventEvery). WentDown / Back: the predictor started failing
	// / answers again.
	Err                    error
	Report, WentDown, Back bool
}

// Trigger records a spike trigger handled at now: evaluations until now +
// window are spike evaluations.
func (c *Cycle) Trigger(now time.Time, window time.Duration) { c.spikeUntil = now.Add(window) }

// InSpike reports whether an evaluation at now is a spike evaluation.
func (c *Cycle) InSpike(now time.Time) bool { return now.Before(c.spikeUntil) }

// FollowUp returns when the next spike evaluation after one at now is due,
// and false when the window closes before then.
func (c *Cycle) FollowUp(now time.Time, every time.Duration) (time.Time, bool) {
	at := now.Add(every)
	return at, at.Before(c.spikeUntil)
}

// Shadow is the predictions' score so far.
func (c *Cycle) Shadow() *scaler.Shadow { return &c.shadow }

// Evaluate observes the target at now and decides; current is its replica
// count. Nothing is kept of the decision until Commit.
func (c *Cycle) Evaluate(ctx context.Context, now time.Time, spec *scaler.Spec, current int32, env Env) Outcome {
	o := Outcome{Spike: c.InSpike(now)}
	in := scaler.Input{Current: current, Spike: o.Spike}
	if !c.warmed {
		// As the HPA's maybeInitScaleDownStabilizationWindow: a process
		// that did not see the last window starts it with the current
		// count, so a restart or a new leader never scales down sooner
		// than the window would have let the old one.
		c.state = c.state.Seeded(spec, now, current)
	}
	o.WarmErr = c.warm(ctx, spec, env.Source, now)
	in.RPS, in.NoData = env.Source.Rate(ctx, now, o.Spike)
	if in.NoData == nil && scaler.Usable(in.RPS) {
		c.remember(now, in.RPS)
		o.Predictor.Scored = c.shadow.Measured(now, in.RPS, spec.Interval)
		// Spike evaluations are reactive only, and ask no one.
		if !o.Spike {
			in.Prediction = c.predict(ctx, &o, env, spec, current, in.RPS, now)
		}
	}
	o.Input = in
	o.Decision, o.next = scaler.Decide(now, spec, c.state, in)
	return o
}

// Commit keeps the state of outcome o, evaluated at now; scaled says the
// decision was carried out (written, or reported in a dry run), which
// starts the cooldown. An outcome that is not committed (the caller lost
// its lease) leaves the decision state as it was.
func (c *Cycle) Commit(o Outcome, scaled bool, now time.Time) {
	next := o.next
	if scaled {
		next = next.Scaled(now)
	}
	c.state = next
}

// warm starts the smoothed rate of a target this Cycle has not evaluated
// from the rates of its last WarmSamples intervals (up to one interval ago,
// so that the current sample is not counted twice), and fills the
// predictors' history: a new leader decides from the load the old one saw.
func (c *Cycle) warm(ctx context.Context, spec *scaler.Spec, src Source, now time.Time) error {
	if c.warmed {
		return nil
	}
	c.warmed = true
	if c.state.HasEMA {
		return nil
	}
	n := WarmSamples
	if spec.Predictor != scaler.PredictorNone {
		n = HistorySamples
	}
	hist, err := src.History(ctx, now.Add(-spec.Interval), spec.Interval, n)
	if err != nil {
		return err
	}
	if len(hist) > n {
		hist = hist[len(hist)-n:]
	}
	values := make([]float64, 0, WarmSamples)
	for i, s := range hist {
		if i >= len(hist)-WarmSamples {
			values = append(values, s.RPS)
		}
		if scaler.Usable(s.RPS) {
			c.history = append(c.history, s)
		}
	}
	c.state = scaler.WarmState(spec, c.state, values)
	return nil
}

// remember appends a good sample to the predictors' history.
func (c *Cycle) remember(now time.Time, rps float64) {
	if len(c.history) == HistorySamples {
		copy(c.history, c.history[1:])
		c.history = c.history[:HistorySamples-1]
	}
	c.history = append(c.history, scaler.Sample{T: float64(now.UnixMilli()) / 1000, RPS: rps})
}

// predict asks the target's predictor for its forecast. It returns nil when
// there is no predictive input (predictor none, or too little history yet),
// and a Prediction with Err when the predictor failed: the decision is then
// reactive, and o says whether to report it.
func (c *Cycle) predict(ctx context.Context, o *Outcome, env Env, spec *scaler.Spec, current int32, rps float64, now time.Time) *scaler.Prediction {
	if spec.Predictor == scaler.PredictorNone {
		return nil
	}
	var ans scaler.Prediction
	err := fmt.Errorf("predictor %s is %w", spec.Predictor, scaler.ErrPredictorNotConfigured)
	if env.Predictor != nil {
		req := scaler.PredictRequest{
			Namespace: env.Namespace, Deployment: env.Name, Service: spec.Service,
			HorizonSeconds: int(spec.Horizon / time.Second), CurrentReplicas: current, CurrentRPS: rps,
			History: c.history,
		}
		if env.Season.Bucket > 0 {
			c.refreshSeason(ctx, now, env)
			req.Season = &c.season
			o.Predictor.SeasonDays, o.Predictor.SeasonPeriod = c.season.Days(), c.season.Period
		}
		ans, err = env.Predictor.Predict(ctx, req)
	}
	switch {
	case errors.Is(err, scaler.ErrNoForecastYet):
		o.Predictor.NoForecast = err
		switch {
		case c.seasonErr != nil:
			o.Predictor.NoForecast = fmt.Errorf("%w (reading it: %v)", err, c.seasonErr)
		case c.reading != nil:
			o.Predictor.NoForecast = fmt.Errorf("%w (%w)", err, ErrSeasonReading)
		}
		return nil
	case err != nil:
		o.Predictor.Err = err
		o.Predictor.WentDown = !c.predictorDown
		if !c.predictorDown || now.Sub(c.predictorReportedAt) >= PredictorEventEvery {
			o.Predictor.Report = true
			c.predictorReportedAt = now
		}
		c.predictorDown = true
		return &scaler.Prediction{Err: err}
	}
	o.Predictor.Back = c.predictorDown
	c.predictorDown = false
	if ans.HasRPS {
		c.shadow.Predicted(now.Add(spec.Horizon), ans.RPS)
	}
	o.Predictor.Answer = &ans
	return &ans
}

// refreshSeason brings the target's long history up to the last multiple
// of env.Season.Refresh: the whole of it the first time (and after a failed
// first read), then only the buckets since the last refresh, since past
// days do not change. A failed read keeps what it had and is tried again at
// the next refresh; its error is reported with the forecast's absence.
func (c *Cycle) refreshSeason(ctx context.Context, now time.Time, env Env) {
	sp := env.Season
	if r := c.reading; r != nil {
		select {
		case <-r.done:
			c.reading = nil
			if c.seasonErr = r.err; r.err == nil {
				c.season = r.season
			}
		default:
			return // still reading: decide without it
		}
	}
	at := now.Truncate(sp.Refresh)
	if !c.seasonAt.IsZero() && !at.After(c.seasonAt) {
		return
	}
	c.seasonAt = at
	n := sp.Length
	if c.season.Bucket == sp.Bucket && !c.season.End.IsZero() {
		n = min(n, int(at.Sub(c.season.End)/sp.Bucket))
	}
	if !sp.Background {
		samples, err := env.Source.History(ctx, at, sp.Bucket, n)
		if c.seasonErr = err; err == nil {
			c.season = seasonOf(c.season, sp, at, n, samples)
		}
		return
	}
	r := &seasonRead{done: make(chan struct{})}
	c.reading = r
	// The evaluation's context ends with the evaluation; the read's values
	// (trace, logger) carry over. Nothing writes c.season until the read
	// is adopted, so the read may build on it meanwhile.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), seasonReadLimit)
	prev := c.season
	go func() {
		defer close(r.done)
		defer cancel()
		samples, err := env.Source.History(rctx, at, sp.Bucket, n)
		if r.err = err; err == nil {
			r.season = seasonOf(prev, sp, at, n, samples)
		}
	}()
}

// seasonOf is prev brought up to at with the n buckets read: the whole
// season, or the buckets since the last refresh appended.
func seasonOf(prev scaler.Season, sp SeasonSpec, at time.Time, n int, samples []scaler.Sample) scaler.Season {
	var s scaler.Season
	if n < sp.Length {
		s = prev.Extend(at, samples, sp.Length)
	} else {
		s = scaler.NewSeason(at, sp.Bucket, sp.Length, samples)
	}
	if sp.Period != nil {
		s.Period = sp.Period(s)
	}
	return s
}
