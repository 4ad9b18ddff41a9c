package scaler

import (
	"fmt"
	"math"
	"time"
)

// Action is the direction of a decision.
type Action int

// The possible actions.
const (
	Hold Action = iota
	ScaleUp
	ScaleDown
)

func (a Action) String() string {
	switch a {
	case ScaleUp:
		return "up"
	case ScaleDown:
		return "down"
	}
	return "hold"
}

// State is what the decision remembers about a target between evaluations.
// The controller persists LastScale so that cooldowns survive restarts.
type State struct {
	EMA    float64 // smoothed RPS; meaningful when HasEMA
	HasEMA bool
	// GoodStreak counts consecutive good samples since the last sample
	// without data (or since the process started): scale-downs need two.
	GoodStreak int
	// LastScale is when this controller last scaled the target (zero: never).
	LastScale time.Time
	// Trend is the smoothed rate's slope in RPS per second, as of TrendAt
	// (the last good sample); kept when Spec.Lead is set.
	Trend   float64
	TrendAt time.Time
	// Recent holds the reactive recommendations of the last
	// Spec.ScaleDownStabilization, oldest first.
	Recent []Recommendation
}

// Recommendation is a reactive recommendation made at At.
type Recommendation struct {
	At       time.Time
	Replicas int32
}

// LeadCap bounds the rate a lead time expects to this multiple of the
// smoothed rate: a step (a slope of one sample) would otherwise project far
// past itself.
const LeadCap = 1.5

// TrendWeight is the weight of the newest slope in State.Trend.
const TrendWeight = 0.5

// Input is what one evaluation observed.
type Input struct {
	Current int32   // spec.replicas of the scale subresource
	RPS     float64 // raw sample; ignored when NoData is set
	// NoData, when non-nil, says why there is no usable sample.
	NoData error
	// Spike marks an evaluation triggered by an alert: it uses
	// max(RPS, smoothed), may scale up inside the scale-up cooldown and
	// never scales down.
	Spike bool
	// Prediction is the predictive input, nil when the target has none.
	Prediction *Prediction
}

// MinGoodSamplesToScaleDown is how many consecutive good samples a
// scale-down needs after a gap in the data (and after a start).
const MinGoodSamplesToScaleDown = 2

// Decision is the outcome of one evaluation. Events, logs, metrics and the
// status annotation all report Reason.
type Decision struct {
	Current int32
	Desired int32
	Action  Action // ScaleUp / ScaleDown when Desired != Current
	// DataOK is false when the sample was missing or unusable; the decision
	// then holds (unless Current is outside the bounds).
	DataOK      bool
	RPS         float64 // raw sample
	SmoothedRPS float64
	Reactive    int32 // the reactive recommendation, after bounds
	// Code names what decided, for machines (the status annotation, logs,
	// tests); Reason says it in words, with the numbers.
	Code   Code
	Reason string
}

// Code is what decided an evaluation, as a stable name, in the manner of
// the HPA's condition reasons. The last step that changed the outcome
// names it: the reactive thresholds, then the stabilization window, the
// predictive input, the bounds, and a hold.
type Code string

// The decision codes.
const (
	CodeNoData               Code = "NoData"               // no usable sample: replicas held
	CodeAboveThreshold       Code = "AboveThreshold"       // the rate is above UP at the current replicas
	CodeBelowThreshold       Code = "BelowThreshold"       // the rate is below DOWN at the current replicas
	CodeWithinThresholds     Code = "WithinThresholds"     // between DOWN and UP: nothing to do
	CodeScaleDownStabilized  Code = "ScaleDownStabilized"  // a scale-down kept at the window's highest recommendation
	CodePredicted            Code = "Predicted"            // the predictive input changed the reactive answer
	CodeBounded              Code = "Bounded"              // min-replicas or max-replicas cut the proposal
	CodeOutsideBounds        Code = "OutsideBounds"        // the current count was outside the bounds: corrected
	CodeCooldown             Code = "Cooldown"             // a scale action held by its direction's cooldown
	CodeTooFewGoodSamples    Code = "TooFewGoodSamples"    // a scale-down held until data has been good twice
	CodeSpikeNeverScalesDown Code = "SpikeNeverScalesDown" // a spike evaluation proposed a scale-down: held
)

// Codes lists every decision code.
func Codes() []Code {
	return []Code{CodeNoData, CodeAboveThreshold, CodeBelowThreshold, CodeWithinThresholds, CodeScaleDownStabilized, CodePredicted,
		CodeBounded, CodeOutsideBounds, CodeCooldown, CodeTooFewGoodSamples, CodeSpikeNeverScalesDown}
}

// Decide evaluates one target at time now. It returns the decision and the
// state to keep if the decision is carried out; the caller records a scale
// action with State.Scaled once it has written the replicas.
func Decide(now time.Time, spec *Spec, st State, in Input) (Decision, State) {
	d := Decision{Current: in.Current, Desired: in.Current, Action: Hold, RPS: in.RPS}
	next := st
	proposal := in.Current
	switch {
	case in.NoData != nil:
		next.GoodStreak = 0
		d.Code, d.Reason = CodeNoData, "no data: "+in.NoData.Error()
	case !Usable(in.RPS):
		next.GoodStreak = 0
		d.Code, d.Reason = CodeNoData, fmt.Sprintf("no data: unusable sample %v", in.RPS)
	default:
		d.DataOK = true
		next.GoodStreak++
		next.smooth(spec.EMAAlpha, in.RPS)
		d.SmoothedRPS = next.EMA
		next.trend(spec, st, now)
		proposal, d.Reason = reactive(spec, in, next)
		d.Code = thresholdCode[direction(in.Current, proposal)]
		if spec.ScaleDownStabilization > 0 {
			unstable := clamp(proposal, spec)
			if proposal, d.Reason = next.stabilize(spec, now, in.Current, unstable, d.Reason); proposal != unstable {
				d.Code = CodeScaleDownStabilized
			}
		}
		d.Reactive = clamp(proposal, spec)
		if !in.Spike && in.Prediction != nil {
			if proposal, d.Reason = combine(now, spec, in.Current, d.Reactive, d.Reason, in.Prediction); proposal != d.Reactive {
				d.Code = CodePredicted
			}
		}
	}
	if !d.DataOK && st.HasEMA {
		d.SmoothedRPS = st.EMA
	}

	desired := clamp(proposal, spec)
	act := direction(in.Current, desired)
	heldCode, held := holdReason(now, spec, st, next, in, act)
	if bound := clamp(in.Current, spec); bound != in.Current {
		// Bounds are the operator's explicit settings: corrected at once,
		// whatever the data and the cooldown. Moving further than the bound
		// is a data-driven action and follows the usual rules.
		if held != "" {
			desired = bound
		}
		d.Desired, d.Action = desired, direction(in.Current, desired)
		d.Code = CodeOutsideBounds
		d.Reason = fmt.Sprintf("current replicas %d outside [%d, %d]; %s", in.Current, spec.MinReplicas, spec.MaxReplicas, d.Reason)
		return d, next
	}
	if desired != proposal {
		d.Code = CodeBounded
		d.Reason += fmt.Sprintf(" (bounded to [%d, %d])", spec.MinReplicas, spec.MaxReplicas)
	}
	if held != "" {
		d.Code = heldCode
		d.Reason = fmt.Sprintf("scale-%s to %d held: %s; %s", act, desired, held, d.Reason)
		return d, next
	}
	d.Desired, d.Action = desired, act
	return d, next
}

// Usable reports whether a request rate can be decided on: finite and not
// negative. Anything else is no data.
func Usable(rps float64) bool { return !math.IsNaN(rps) && !math.IsInf(rps, 0) && rps >= 0 }

// Seeded returns the state of a target first seen at now with current
// replicas: with a scale-down stabilization window, the window starts with
// current as its recommendation.
func (st State) Seeded(spec *Spec, now time.Time, current int32) State {
	if spec.ScaleDownStabilization > 0 {
		st.Recent = []Recommendation{{At: now, Replicas: current}}
	}
	return st
}

// Scaled returns the state after the controller wrote a scale action at now.
func (st State) Scaled(now time.Time) State {
	st.LastScale = now
	return st
}

// trend updates the smoothed rate's slope from the previous state st.
func (next *State) trend(spec *Spec, st State, now time.Time) {
	if spec.Lead <= 0 {
		return
	}
	if st.HasEMA && !st.TrendAt.IsZero() {
		if dt := now.Sub(st.TrendAt).Seconds(); dt > 0 {
			next.Trend = TrendWeight*(next.EMA-st.EMA)/dt + (1-TrendWeight)*st.Trend
		}
	}
	next.TrendAt = now
}

// stabilize records the reactive recommendation r and, when spec has a
// scale-down stabilization window, holds a scale-down at the highest
// recommendation of that window.
func (next *State) stabilize(spec *Spec, now time.Time, current, r int32, reason string) (int32, string) {
	keep := make([]Recommendation, 0, len(next.Recent)+1)
	for _, rec := range next.Recent {
		if rec.At.After(now.Add(-spec.ScaleDownStabilization)) {
			keep = append(keep, rec)
		}
	}
	next.Recent = append(keep, Recommendation{At: now, Replicas: r})
	if r >= current {
		return r, reason
	}
	highest := r
	for _, rec := range next.Recent {
		highest = max(highest, rec.Replicas)
	}
	if highest == r {
		return r, reason
	}
	return min(highest, current), fmt.Sprintf("%s; scale-down stabilized at %d, the highest recommendation of the last %s", reason, min(highest, current), spec.ScaleDownStabilization)
}

func reactive(spec *Spec, in Input, st State) (int32, string) {
	ema := st.EMA
	value, what := ema, fmt.Sprintf("smoothed RPS %.4g", ema)
	if ahead := min(ema+st.Trend*spec.Lead.Seconds(), LeadCap*ema); spec.Lead > 0 && ahead > ema {
		// Rising: decide for the rate expected when a replica asked for
		// now is ready; a falling trend never brings a scale-down forward.
		value, what = ahead, fmt.Sprintf("RPS expected in %s %.4g (smoothed %.4g, trend %+.3g/s)", spec.Lead, ahead, ema, st.Trend)
	}
	if in.Spike && in.RPS > value {
		value, what = in.RPS, fmt.Sprintf("spike: raw RPS %.4g (smoothed %.4g)", in.RPS, ema)
	} else if in.Spike {
		what = "spike: " + what
	}
	r, act := spec.Table.Recommend(in.Current, value, spec.MaxReplicas)
	row := spec.Table.row(in.Current)
	switch act {
	case ScaleUp:
		return r, fmt.Sprintf("%s above %s (scale-up threshold at %d replicas)", what, formatRate(row.Up), in.Current)
	case ScaleDown:
		return r, fmt.Sprintf("%s below %s (scale-down threshold at %d replicas)", what, formatRate(row.Down), in.Current)
	}
	return r, fmt.Sprintf("%s within [%s, %s] at %d replicas", what, formatRate(row.Down), formatRate(row.Up), in.Current)
}

// thresholdCode is the code of the reactive recommendation's direction.
var thresholdCode = map[Action]Code{ScaleUp: CodeAboveThreshold, ScaleDown: CodeBelowThreshold, Hold: CodeWithinThresholds}

// holdReason says why a scale action act must wait, and its code ("": it
// need not).
func holdReason(now time.Time, spec *Spec, st, next State, in Input, act Action) (Code, string) {
	switch act {
	case Hold:
		return "", ""
	case ScaleDown:
		if in.Spike {
			return CodeSpikeNeverScalesDown, "spike evaluations never scale down"
		}
		if next.GoodStreak < MinGoodSamplesToScaleDown {
			return CodeTooFewGoodSamples, fmt.Sprintf("%d good sample(s) since data (re)started, %d needed to scale down", next.GoodStreak, MinGoodSamplesToScaleDown)
		}
	case ScaleUp:
		if in.Spike {
			return "", "" // the spike path may scale up inside the cooldown
		}
	}
	if cd := spec.Cooldown(act); !st.LastScale.IsZero() && now.Before(st.LastScale.Add(cd)) {
		return CodeCooldown, fmt.Sprintf("cooldown %s until %s", cd, st.LastScale.Add(cd).UTC().Format(time.RFC3339))
	}
	return "", ""
}

func clamp(r int32, spec *Spec) int32 {
	return min(max(r, spec.MinReplicas), spec.MaxReplicas)
}

func direction(from, to int32) Action {
	switch {
	case to > from:
		return ScaleUp
	case to < from:
		return ScaleDown
	}
	return Hold
}

// WarmState folds a target's recent request rates (oldest first, one per
// interval) into the EMA, so that a new process or leader starts from the
// rate the previous one saw instead of from its first sample. Unusable
// values are skipped. The good-sample streak stays zero: the first
// evaluation after a start still never scales down.
func WarmState(spec *Spec, st State, history []float64) State {
	for _, v := range history {
		if !Usable(v) {
			continue
		}
		st.smooth(spec.EMAAlpha, v)
	}
	st.GoodStreak = 0
	return st
}

// smooth folds sample v into the EMA with weight alpha; the first sample
// is the EMA.
func (st *State) smooth(alpha, v float64) {
	if st.HasEMA {
		st.EMA = alpha*v + (1-alpha)*st.EMA
	} else {
		st.EMA, st.HasEMA = v, true
	}
}
