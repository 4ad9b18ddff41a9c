package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// ErrNoData is wrapped by every error Rate returns: the sample is missing or
// unusable, and the decision must hold.
var ErrNoData = errors.New("no data")

// Reason classifies why there was no data. The values are metric labels.
type Reason string

// The reasons a query yields no data.
const (
	ReasonQueryError      Reason = "query_error"
	ReasonEmpty           Reason = "empty"
	ReasonNaN             Reason = "nan"
	ReasonInf             Reason = "inf"
	ReasonNegative        Reason = "negative"
	ReasonMultipleSeries  Reason = "multiple_series"
	ReasonStale           Reason = "stale"
	ReasonUnsupportedType Reason = "unsupported_type"
	ReasonPartial         Reason = "partial"
)

// reasons lists every Reason, for pre-created metric series.
var reasons = []Reason{ReasonQueryError, ReasonEmpty, ReasonNaN, ReasonInf, ReasonNegative, ReasonMultipleSeries, ReasonStale, ReasonUnsupportedType, ReasonPartial}

// NoDataError says why a query gave no usable sample.
type NoDataError struct {
	Reason Reason
	Query  string
	Detail string
	Err    error // the underlying error, for ReasonQueryError
}

func (e *NoDataError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Reason, e.Detail, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Reason, e.Detail)
}

// Unwrap lets errors.Is match ErrNoData and the underlying error.
func (e *NoDataError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrNoData}
	}
	return []error{ErrNoData, e.Err}
}

// partialAnswer is an answer that came with warnings. Thanos query (and
// other stores that fan out) answers with the stores it reached and a
// warning for each it did not: a sum over part of the pods, lower than the
// truth, which must not be read as less traffic.
type partialAnswer struct{ warnings promv1.Warnings }

// Error names the first warning only: a query over many stores can carry
// one per store, and the message ends up in an Event.
func (p *partialAnswer) Error() string {
	msg := "the store answered with warnings, so possibly in part: " + p.warnings[0]
	if n := len(p.warnings) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more)", n)
	}
	return msg
}

// answered turns an answer with warnings into an error.
func answered(val model.Value, warnings promv1.Warnings, err error) (model.Value, error) {
	if err == nil && len(warnings) > 0 {
		return nil, &partialAnswer{warnings: warnings}
	}
	return val, err
}

// Source reads a request rate from Prometheus' HTTP API.
type Source struct {
	api     promv1.API
	timeout time.Duration
	rec     *Recorder
}

// NewSource returns a Source that gives each query at most timeout and
// records durations and errors on rec (which may be nil).
func NewSource(api promv1.API, timeout time.Duration, rec *Recorder) *Source {
	return &Source{api: api, timeout: timeout, rec: rec}
}

// MaxAge is how old the newest sample behind a rate may be for a target
// evaluated every interval: two intervals, and never less than the one
// minute the default query's rate window spans (a scrape every 15 or 30 s
// must not read as missing data between two scrapes).
func MaxAge(interval time.Duration) time.Duration { return max(2*interval, time.Minute) }

// Rate evaluates query at now and returns its single value. A result that is
// an error, empty, NaN, +-Inf, negative, more than one series, a sample
// older than maxAge, or comes with warnings (a partial answer) is a
// *NoDataError wrapping ErrNoData.
//
// Prometheus stamps an instant result with the evaluation time, not its
// sample's, so the age is enforced by the server: the query asks for a
// lookback delta of maxAge, and a series whose newest sample is older is
// left out (no data) instead of being read from Prometheus' default 5m
// lookback. Servers older than Prometheus 2.43 ignore the parameter; there
// a rate over a range selector is still bounded by its window.
func (s *Source) Rate(ctx context.Context, query string, now time.Time, maxAge time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	val, warnings, _, err := s.api.Query(ctx, query, now, promv1.WithLookbackDelta(maxAge))
	s.rec.observeQuery(time.Since(start))
	val, err = answered(val, warnings, err)
	return s.classified(query, val, err, now, maxAge)
}

// classified classifies an answer and counts a no-data reason.
func (s *Source) classified(query string, val model.Value, err error, now time.Time, maxAge time.Duration) (float64, error) {
	v, err := classify(query, val, err, now, maxAge)
	if err != nil {
		var nd *NoDataError
		if errors.As(err, &nd) {
			s.rec.queryError(nd.Reason)
		}
	}
	return v, err
}

func classify(query string, val model.Value, err error, now time.Time, maxAge time.Duration) (float64, error) {
	fail := func(r Reason, format string, args ...any) (float64, error) {
		return 0, &NoDataError{Reason: r, Query: query, Detail: fmt.Sprintf(format, args...), Err: err}
	}
	var partial *partialAnswer
	if errors.As(err, &partial) {
		return fail(ReasonPartial, "query %q was answered in part", query)
	}
	if err != nil {
		return fail(ReasonQueryError, "query %q failed", query)
	}
	var v model.SampleValue
	var ts model.Time
	switch r := val.(type) {
	case *model.Scalar:
		v, ts = r.Value, r.Timestamp
	case model.Vector:
		switch len(r) {
		case 0:
			return fail(ReasonEmpty, "query %q returned no series (no sample in the last %s)", query, maxAge)
		case 1:
			v, ts = r[0].Value, r[0].Timestamp
		default:
			return fail(ReasonMultipleSeries, "query %q returned %d series, want one (aggregate with sum)", query, len(r))
		}
	default:
		return fail(ReasonUnsupportedType, "query %q returned a %v, want a scalar or one series", query, typeOf(val))
	}
	f := float64(v)
	switch {
	case math.IsNaN(f):
		return fail(ReasonNaN, "query %q returned NaN", query)
	case math.IsInf(f, 0):
		return fail(ReasonInf, "query %q returned %v", query, f)
	case f < 0:
		return fail(ReasonNegative, "query %q returned a negative rate %v", query, f)
	}
	// A backend that stamps results with their sample's time is held to
	// maxAge here too.
	if age := now.Sub(ts.Time()); age > maxAge {
		return fail(ReasonStale, "query %q returned a sample %s old, older than %s", query, age.Round(time.Second), maxAge)
	}
	return f, nil
}

func typeOf(v model.Value) string {
	if v == nil {
		return "nil result"
	}
	return v.Type().String()
}

// History evaluates query over [end-n*step, end] at step and returns the
// samples of its single series, oldest first. It is used once per target
// and process, to warm the EMA and the predictors' history on a start or
// takeover; an empty result is no history, not an error.
func (s *Source) History(ctx context.Context, query string, end time.Time, step time.Duration, n int) ([]scaler.Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	val, warnings, _, err := s.api.QueryRange(ctx, query, promv1.Range{Start: end.Add(-time.Duration(n) * step), End: end, Step: step})
	s.rec.observeQuery(time.Since(start))
	if val, err = answered(val, warnings, err); err != nil {
		return nil, fmt.Errorf("range query %q: %w", query, err)
	}
	m, ok := val.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("range query %q returned a %v, want a matrix", query, typeOf(val))
	}
	switch len(m) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("range query %q returned %d series, want one", query, len(m))
	}
	out := make([]scaler.Sample, 0, len(m[0].Values))
	for _, p := range m[0].Values {
		out = append(out, scaler.Sample{T: float64(p.Timestamp) / 1000, RPS: float64(p.Value)})
	}
	return out, nil
}
