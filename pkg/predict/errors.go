package predict

import (
	"errors"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// Reason says why a prediction failed: the value of the controller's
// predictor_errors_total "reason" label.
type Reason string

// The reasons. The first five are the external model's transport and
// protocol failures (Client); ReasonNotConfigured is a target that asks for
// a predictor this controller does not have.
const (
	ReasonTimeout       Reason = "timeout"
	ReasonUnreachable   Reason = "unreachable"
	ReasonHTTPStatus    Reason = "http_status"
	ReasonInvalidAnswer Reason = "invalid_answer"
	ReasonTooLarge      Reason = "too_large"
	ReasonNotConfigured Reason = "not_configured"
	ReasonOther         Reason = "other"
)

// Reasons lists every reason, for metrics that show each from zero.
func Reasons() []Reason {
	return []Reason{ReasonTimeout, ReasonUnreachable, ReasonHTTPStatus, ReasonInvalidAnswer, ReasonTooLarge, ReasonNotConfigured, ReasonOther}
}

// Error is a failed prediction and its reason.
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns why err, a predictor's failure, happened.
func ReasonOf(err error) Reason {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Reason
	case errors.Is(err, scaler.ErrPredictorNotConfigured):
		return ReasonNotConfigured
	}
	return ReasonOther
}

func perr(reason Reason, err error) error { return &Error{Reason: reason, Err: err} }
