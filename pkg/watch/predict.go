package watch

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/autoscale-io/reactive-autoscaler/pkg/cycle"
	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics"
	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// EventPredictorUnavailable reports a predictor failure (docs/REFERENCE.md section 5).
const EventPredictorUnavailable = "PredictorUnavailable"

// reportObservation reports what a cycle observed besides its decision:
// a warm-up without history, a predictor's failure (an Event, at most every
// cycle.PredictorEventEvery while it keeps failing, and a log line when it
// goes down or comes back). It returns the predictor's news for the
// metrics: a prediction, a failure, or a new score (nil: none).
func (c *Controller) reportObservation(ctx context.Context, t *target, d workload, spec *scaler.Spec, o cycle.Outcome) *metrics.Prediction {
	logger := klog.FromContext(ctx)
	if o.WarmErr != nil {
		logger.V(2).Info("No history to warm the smoothed rate from", "err", o.WarmErr)
	}
	if !o.Predictor.Scored && o.Predictor.Answer == nil && o.Predictor.Err == nil {
		return nil
	}
	mape, n := t.cycle.Shadow().MAPE()
	news := &metrics.Prediction{MAPE: mape, Scored: n}
	if p := o.Predictor.Answer; p != nil {
		news.RPS, news.HasRPS = p.RPS, p.HasRPS
	}
	if o.Predictor.Err != nil {
		news.Failed = predict.ReasonOf(o.Predictor.Err)
		if o.Predictor.Report {
			c.recorder.Eventf(d, corev1.EventTypeWarning, EventPredictorUnavailable,
				"Predictor %s unavailable: %v; deciding reactively", spec.Predictor, o.Predictor.Err)
		}
		if o.Predictor.WentDown {
			logger.Info("Predictor unavailable; deciding reactively", "predictor", spec.Predictor, "err", o.Predictor.Err)
		}
	}
	if o.Predictor.Back {
		logger.Info("Predictor answering again", "predictor", spec.Predictor)
	}
	return news
}

// tracedPredictor asks a predictor inside a "predict" span.
type tracedPredictor struct {
	p      scaler.Predictor
	tracer trace.Tracer
	kind   scaler.PredictorKind
}

func (tp tracedPredictor) Predict(ctx context.Context, req scaler.PredictRequest) (scaler.Prediction, error) {
	ctx, span := tp.tracer.Start(ctx, "predict", trace.WithAttributes(attribute.String("autoscale.predictor", string(tp.kind))))
	defer span.End()
	ans, err := tp.p.Predict(ctx, req)
	if err != nil && !errors.Is(err, scaler.ErrNoForecastYet) {
		span.SetStatus(codes.Error, err.Error())
	}
	return ans, err
}
