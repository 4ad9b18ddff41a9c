package scaler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Predictor forecasts a target's load HorizonSeconds ahead (docs/REFERENCE.md section 4).
// Two implement it: the HTTP client of an external model and the built-in
// forecaster (package predict). An error means "unavailable": the decision
// falls back to the reactive answer.
type Predictor interface {
	Predict(ctx context.Context, req PredictRequest) (Prediction, error)
}

// ErrNoForecastYet: the predictor has too little history to answer. It is
// not a failure: the decision is reactive and nothing is reported.
var ErrNoForecastYet = errors.New("too little history to forecast yet")

// ErrPredictorNotConfigured: the target asks for a predictor this
// controller does not have (external without a model URL). The decision is
// reactive and the failure reported.
var ErrPredictorNotConfigured = errors.New("not configured on this controller")

// PredictRequest is what a predictor is told, in the wire format of docs/REFERENCE.md section 4.
type PredictRequest struct {
	Namespace       string   `json:"namespace"`
	Deployment      string   `json:"deployment"`
	Service         string   `json:"service"`
	HorizonSeconds  int      `json:"horizonSeconds"`
	CurrentReplicas int32    `json:"currentReplicas"`
	CurrentRPS      float64  `json:"currentRPS"`
	History         []Sample `json:"history"` // oldest first, the last one is now
	// Season is the target's long history (days of bucket means) for the
	// built-in forecaster; not sent to an external model.
	Season *Season `json:"-"`
}

// Sample is one measured rate at a Unix time in seconds.
type Sample struct {
	T   float64 `json:"t"`
	RPS float64 `json:"rps"`
}

// Prediction is a predictor's answer for a target: replicas, a rate at the
// horizon, or both. A rate alone is mapped to replicas through the target's
// own table.
type Prediction struct {
	Replicas    int32
	HasReplicas bool
	RPS         float64 // the rate expected at the horizon
	HasRPS      bool
	Source      string // "builtin" or "external", for reasons
	// Band is the forecast's uncertainty band (low, high) in RPS, when the
	// predictor gives one (zero: none).
	Band [2]float64
	Err  error // the predictor failed; the decision falls back to reactive
}

// replicas returns the predicted replica count, before bounds.
func (p *Prediction) replicas(spec *Spec, current int32) int32 {
	if p.HasReplicas {
		return p.Replicas
	}
	r, _ := spec.Table.Recommend(current, p.RPS, spec.MaxReplicas)
	return r
}

// describe names the predictive input in a reason, with its rate and any
// bound it exceeds.
func (p *Prediction) describe(spec *Spec, replicas int32) string {
	s := fmt.Sprintf("predictive %d", replicas)
	var notes []string
	if p.Source != "" {
		notes = append(notes, p.Source)
	}
	if p.HasRPS {
		notes = append(notes, fmt.Sprintf("%.4g RPS ahead", p.RPS))
	}
	if p.Band != [2]float64{} {
		notes = append(notes, fmt.Sprintf("days %.4g to %.4g", p.Band[0], p.Band[1]))
	}
	switch {
	case replicas > spec.MaxReplicas:
		notes = append(notes, fmt.Sprintf("above max %d", spec.MaxReplicas))
	case replicas < spec.MinReplicas:
		notes = append(notes, fmt.Sprintf("below min %d", spec.MinReplicas))
	}
	for i, n := range notes {
		if i == 0 {
			s += " ("
		} else {
			s += ", "
		}
		s += n
	}
	if len(notes) > 0 {
		s += ")"
	}
	return s
}

// Shadow scores a predictor against what happened: every predicted rate for
// t+horizon is compared with the rate measured then. MAPE is the mean
// absolute percentage error of the last ShadowWindow matured predictions,
// each relative to max(measured, MAPEFloorRPS) so that an idle service does
// not turn a 0.3 RPS miss into an infinite error.
type Shadow struct {
	pending []shadowPoint // by due time
	errs    []float64     // ring of the last ShadowWindow errors
	next    int
}

type shadowPoint struct {
	due time.Time
	rps float64
}

// ShadowWindow is how many matured predictions MAPE averages.
const ShadowWindow = 60

// MAPEFloorRPS is the smallest rate a prediction's error is divided by.
const MAPEFloorRPS = 1.0

// maxPending bounds the predictions waiting for their horizon.
const maxPending = 4096

// Predicted records a prediction of rps at due.
func (s *Shadow) Predicted(due time.Time, rps float64) {
	if math.IsNaN(rps) || math.IsInf(rps, 0) {
		return
	}
	if len(s.pending) == maxPending {
		s.pending = s.pending[1:]
	}
	s.pending = append(s.pending, shadowPoint{due, rps})
}

// Measured scores the predictions due within tolerance of now against the
// measured rps; older ones, whose moment passed without data, are dropped.
// It reports whether MAPE changed.
func (s *Shadow) Measured(now time.Time, rps float64, tolerance time.Duration) bool {
	changed := false
	i := 0
	for ; i < len(s.pending) && !s.pending[i].due.After(now.Add(tolerance/2)); i++ {
		p := s.pending[i]
		if p.due.Before(now.Add(-tolerance)) {
			continue
		}
		e := PercentError(p.rps, rps)
		if len(s.errs) < ShadowWindow {
			s.errs = append(s.errs, e)
		} else {
			s.errs[s.next] = e
		}
		s.next = (s.next + 1) % ShadowWindow
		changed = true
	}
	s.pending = s.pending[i:]
	return changed
}

// PercentError is one prediction's error as MAPE counts it: relative to
// the measured rate, or to MAPEFloorRPS when that is lower (an idle
// service's error is not divided by nothing).
func PercentError(predicted, measured float64) float64 {
	return math.Abs(predicted-measured) / math.Max(measured, MAPEFloorRPS)
}

// MAPE returns the mean absolute percentage error (0.1 = 10 %) and how many
// matured predictions it averages; n == 0 means nothing is known yet.
func (s *Shadow) MAPE() (mape float64, n int) {
	for _, e := range s.errs {
		mape += e
	}
	if len(s.errs) == 0 {
		return 0, 0
	}
	return mape / float64(len(s.errs)), len(s.errs)
}
