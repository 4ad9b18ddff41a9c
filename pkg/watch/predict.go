package watch

import (
	"context"
	"errors"
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// EventPredictorUnavailable reports a predictor failure (SPEC section 5).
const EventPredictorUnavailable = "PredictorUnavailable"

// HistorySamples is how many recent samples of a target the predictors
// see (30 min at the default 30 s interval).
const HistorySamples = 60

// PredictorEventEvery rate-limits PredictorUnavailable Events: one when a
// target's predictor starts failing, then at most one per this period while
// it keeps failing.
const PredictorEventEvery = 5 * time.Minute

// remember appends a good sample to the target's history.
func (t *target) remember(now time.Time, rps float64) {
	if len(t.history) == HistorySamples {
		copy(t.history, t.history[1:])
		t.history = t.history[:HistorySamples-1]
	}
	t.history = append(t.history, scaler.Sample{T: float64(now.UnixMilli()) / 1000, RPS: rps})
}

// predict asks the target's predictor for its forecast. It returns nil when
// there is no predictive input (predictor none, or too little history yet),
// and a Prediction with Err when the predictor failed: the decision is then
// reactive, and an Event and a metric say why.
func (c *Controller) predict(ctx context.Context, t *target, d *appsv1.Deployment, spec *scaler.Spec, current int32, rps float64, now time.Time) *scaler.Prediction {
	var p scaler.Predictor
	switch spec.Predictor {
	case scaler.PredictorNone:
		return nil
	case scaler.PredictorExternal:
		p = c.external
	default:
		p = c.builtin
	}
	var ans scaler.Prediction
	err := error(&scaler.PredictorError{Reason: scaler.PredictorNotConfigured,
		Err: errors.New("predictor " + string(spec.Predictor) + " is not configured on this controller")})
	if p != nil {
		pctx, span := c.tracer.Start(ctx, "predict", trace.WithAttributes(attribute.String("autoscale.predictor", string(spec.Predictor))))
		defer span.End()
		ctx = pctx
		ans, err = p.Predict(ctx, scaler.PredictRequest{
			Namespace: d.Namespace, Deployment: d.Name, Service: spec.Service,
			HorizonSeconds: int(spec.Horizon / time.Second), CurrentReplicas: current, CurrentRPS: rps,
			History: t.history,
		})
	}
	logger := klog.FromContext(ctx)
	switch {
	case errors.Is(err, scaler.ErrNoForecastYet):
		return nil
	case err != nil:
		trace.SpanFromContext(ctx).SetStatus(codes.Error, err.Error())
		c.monitor.ObservePredictorError(scaler.PredictorReason(err))
		if !t.predictorDown || now.Sub(t.predictorEventAt) >= PredictorEventEvery {
			c.recorder.Eventf(d, corev1.EventTypeWarning, EventPredictorUnavailable,
				"Predictor %s unavailable: %v; deciding reactively", spec.Predictor, err)
			t.predictorEventAt = now
		}
		if !t.predictorDown {
			logger.Info("Predictor unavailable; deciding reactively", "predictor", spec.Predictor, "err", err)
		}
		t.predictorDown = true
		return &scaler.Prediction{Err: err}
	}
	if t.predictorDown {
		logger.Info("Predictor answering again", "predictor", spec.Predictor)
		t.predictorDown = false
	}
	if ans.HasRPS {
		t.shadow.Predicted(now.Add(spec.Horizon), ans.RPS)
	}
	mape, n := t.shadow.MAPE()
	c.monitor.ObservePrediction(d.Namespace, d.Name, ans.RPS, ans.HasRPS, mape, n)
	return &ans
}

// StatusPredictor reports a target's predictor in the status annotation.
type StatusPredictor struct {
	Predictor string `json:"predictor"`
	Horizon   string `json:"horizon"`
	// MAPEPercent is the mean absolute percentage error of the last Scored
	// predictions (shadow scoring), rounded to a whole percent.
	MAPEPercent *float64 `json:"mapePercent,omitempty"`
	Scored      int      `json:"scored"`
}

// predictorStatus returns what the status should say about the predictor
// and whether that differs enough from prev to be worth a write: the
// predictor or horizon changed, the first predictions were scored, or MAPE
// moved by 5 points or more. (MAPE moves at every evaluation; writing each
// move would cost an API write per target per interval.)
func predictorStatus(prev *StatusPredictor, spec *scaler.Spec, sh *scaler.Shadow) (*StatusPredictor, bool) {
	if spec.Predictor == scaler.PredictorNone {
		return nil, prev != nil
	}
	st := &StatusPredictor{Predictor: string(spec.Predictor), Horizon: spec.Horizon.String()}
	mape, n := sh.MAPE()
	st.Scored = n
	if n > 0 {
		v := math.Round(100 * mape)
		st.MAPEPercent = &v
	}
	switch {
	case prev == nil || prev.Predictor != st.Predictor || prev.Horizon != st.Horizon:
		return st, true
	case prev.MAPEPercent == nil:
		return st, st.MAPEPercent != nil
	case st.MAPEPercent == nil:
		return st, false
	}
	return st, math.Abs(*st.MAPEPercent-*prev.MAPEPercent) >= 5
}
