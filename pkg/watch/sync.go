package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// Event reasons (SPEC section 5).
const (
	EventSuccessfulRescale = "SuccessfulRescale"
	EventDryRunRescale     = "DryRunRescale"
	EventFailedRescale     = "FailedRescale"
	EventFailedGetMetrics  = "FailedGetMetrics"
	EventInvalidAnnotation = "InvalidAnnotation"
)

// FieldManager names the controller's writes in managedFields.
const FieldManager = "reactive-autoscaler"

// errReplicasChanged: someone changed replicas between the decision and the
// write. Their count is respected; the next evaluation starts from it.
var errReplicasChanged = errors.New("replicas changed since the decision")

// errFenced: this replica no longer holds the lease, so it must not write.
var errFenced = errors.New("not the leader any more; nothing written")

// fenced reports whether writes are refused because another replica leads.
func (c *Controller) fenced() bool { return c.mayWrite != nil && !c.mayWrite() }

// sync evaluates one target that was not scheduled for a tick (a spike,
// a test).
func (c *Controller) sync(ctx context.Context, k string) (time.Duration, error) {
	return c.syncDue(ctx, k, time.Time{})
}

// batchTick is the instant a batched evaluation reads the grouped query
// at: the tick it was scheduled for, which every target of that tick
// shares; or, for an evaluation not scheduled on a tick (a new target, a
// start or takeover), the current second, so that a new leader decides on
// fresh data and the targets it evaluates in the same second still share.
func batchTick(now, due time.Time, interval time.Duration) time.Time {
	if !due.IsZero() && due.Equal(due.Truncate(interval)) && now.Sub(due) < interval {
		return due
	}
	return now.Truncate(time.Second)
}

// predictorStatusEvery is how often, at most, a target's status is written
// for its predictor's standing alone: 10 min plus a per-target offset of up
// to 10 min, so that targets that started together do not write together.
func predictorStatusEvery(k string) time.Duration {
	h := fnv.New32a()
	_, _ = h.Write([]byte(k))
	return PredictorStatusEvery + time.Duration(h.Sum32()%600)*time.Second
}

// PredictorStatusEvery is the least time between two status writes made for
// the predictor's MAPE alone.
const PredictorStatusEvery = 10 * time.Minute

// syncDue evaluates one target and returns when to evaluate it next (0: not
// again, it is no longer managed). due is when the evaluation was scheduled
// (zero: not scheduled). A returned error is retried with backoff.
func (c *Controller) syncDue(ctx context.Context, k string, due time.Time) (time.Duration, error) {
	start := c.clock.Now()
	ns, name, err := cache.SplitMetaNamespaceKey(k)
	if err != nil {
		return 0, nil // a malformed key never becomes valid
	}
	d, err := c.lister.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && !scaler.Managed(d.Annotations)) {
		c.forget(k)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading deployment %s from the cache: %w", k, err)
	}
	ctx, span := c.tracer.Start(ctx, "evaluate", trace.WithAttributes(
		attribute.String("k8s.namespace.name", ns), attribute.String("k8s.deployment.name", name)))
	defer span.End()
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "deployment", klog.KObj(d))
	if sc := span.SpanContext(); sc.IsValid() {
		logger = klog.LoggerWithValues(logger, "traceID", sc.TraceID().String(), "spanID", sc.SpanID().String())
	}
	ctx = klog.NewContext(ctx, logger)

	c.mu.Lock()
	t := c.targetLocked(k, d)
	c.mu.Unlock()
	t.busy.Lock()
	defer t.busy.Unlock()
	now := c.clock.Now()
	c.mu.Lock()
	triggered, spikeAt := t.spike, t.spikeAt
	if triggered {
		t.spikeUntil = now.Add(c.spikeWindow)
	}
	spike := triggered || now.Before(t.spikeUntil)
	t.spike = false
	c.mu.Unlock()

	spec, specErr, changed := c.specFor(t, d)
	if specErr != nil {
		if changed {
			c.recorder.Eventf(d, corev1.EventTypeWarning, EventInvalidAnnotation, "%v; the Deployment is left untouched", specErr)
			logger.Info("Invalid autoscaling annotation; not managing until fixed", "err", specErr)
		}
		c.monitor.ObserveEvaluation(ns, name, nil, metrics.ResultInvalid, c.clock.Since(start))
		return c.fallback, nil
	}
	if spec.Paused {
		logger.V(4).Info("Paused")
		return spec.Interval, nil
	}

	current := int32(1)
	if d.Spec.Replicas != nil {
		current = *d.Spec.Replicas
	}
	in := scaler.Input{Current: current, Spike: spike}
	if q, err := spec.RenderQuery(ns, name); err != nil {
		in.NoData = fmt.Errorf("rendering the query: %w", err)
	} else {
		c.warm(ctx, t, spec, q, now)
		qctx, qspan := c.tracer.Start(ctx, "prometheus.query", trace.WithAttributes(attribute.String("db.query.text", q)))
		if c.batched(spec) && !spike {
			// The tick this evaluation belongs to: every target of the
			// same interval reads the one grouped query run for it.
			tick := batchTick(now, due, spec.Interval)
			qspan.SetAttributes(attribute.Bool("autoscale.batched", true))
			in.RPS, in.NoData = c.batch.RPS(qctx, spec.Service, tick, 2*spec.Interval)
		} else {
			in.RPS, in.NoData = c.source.RPS(qctx, q, now, 2*spec.Interval)
		}
		if in.NoData != nil {
			qspan.SetStatus(codes.Error, in.NoData.Error())
		}
		qspan.End()
	}
	span.SetAttributes(attribute.Bool("autoscale.spike", spike), attribute.Int("autoscale.current_replicas", int(current)))
	if in.NoData == nil && scaler.Usable(in.RPS) {
		t.remember(now, in.RPS)
		if t.shadow.Measured(now, in.RPS, spec.Interval) {
			mape, n := t.shadow.MAPE()
			c.monitor.ObservePrediction(ns, name, 0, false, mape, n)
		}
		// Spike evaluations are reactive only, and ask no one.
		if !spike {
			in.Prediction = c.predict(ctx, t, d, spec, current, in.RPS, now)
		}
	}
	dec, next := scaler.Decide(now, spec, t.state, in)
	span.SetAttributes(attribute.Float64("autoscale.rps", dec.RPS), attribute.Float64("autoscale.smoothed_rps", dec.SmoothedRPS),
		attribute.Bool("autoscale.data_ok", dec.DataOK), attribute.String("autoscale.decision", dec.Action.String()),
		attribute.Int("autoscale.desired_replicas", int(dec.Desired)), attribute.String("autoscale.reason", dec.Reason))
	if c.fenced() {
		// Decided, but another replica leads now: its state is the one
		// that counts, so this replica keeps nothing and writes nothing.
		logger.Info("Not the leader any more; dropping the decision", "decision", dec.Reason)
		return 0, nil
	}

	result := metrics.ResultHeld
	if !dec.DataOK {
		result = metrics.ResultNoData
		c.recorder.Eventf(d, corev1.EventTypeWarning, EventFailedGetMetrics, "%s; holding at %d replicas", dec.Reason, current)
	}
	scaled := false
	var scaleErr error
	switch {
	case dec.Action == scaler.Hold:
		logger.V(4).Info("Evaluated", "replicas", current, "rps", dec.RPS, "smoothedRPS", dec.SmoothedRPS, "spike", spike, "reason", dec.Reason)
	case spec.DryRun:
		scaled, result = true, metrics.ResultDryRun
		c.recorder.Eventf(d, corev1.EventTypeNormal, EventDryRunRescale, "Would set new size: %d; reason: %s", dec.Desired, dec.Reason)
		logger.Info("Dry run: "+actionWord(dec.Action)+" not written", "oldReplicas", dec.Current, "newReplicas", dec.Desired, "reason", dec.Reason)
	default:
		scaleErr = c.scale(ctx, d, dec.Current, dec.Desired)
		switch {
		case errors.Is(scaleErr, errFenced):
			logger.Info("Not the leader any more; the decision is not written", "decision", dec.Reason)
			return 0, nil
		case errors.Is(scaleErr, errReplicasChanged):
			logger.Info("Replicas changed by someone else before the write; keeping their count", "decidedFrom", dec.Current)
			scaleErr = nil
		case scaleErr != nil:
			result = metrics.ResultError
			c.recorder.Eventf(d, corev1.EventTypeWarning, EventFailedRescale, "New size: %d; reason: %s; error: %v", dec.Desired, dec.Reason, scaleErr)
		default:
			scaled, result = true, metrics.ResultScaled
			c.monitor.ObserveScale(dec.Action)
			if triggered {
				c.monitor.ObserveSpikeToScale(c.clock.Since(spikeAt))
			}
			c.recorder.Eventf(d, corev1.EventTypeNormal, EventSuccessfulRescale, "New size: %d; reason: %s", dec.Desired, dec.Reason)
			logger.Info(actionWord(dec.Action), "oldReplicas", dec.Current, "newReplicas", dec.Desired, "spike", spike, "reason", dec.Reason)
		}
	}
	if scaled {
		next = next.Scaled(now)
	}
	t.state = next

	st, changed := nextStatus(t.status, dec, in.NoData, scaled, spec.DryRun, now)
	// The predictor's standing rides along with every write, and on its own
	// at most every PredictorStatusEvery (spread over targets): its MAPE
	// moves at every evaluation, and thousands of targets must not write at
	// once when their first predictions are scored.
	if ps, psChanged := predictorStatus(t.status.Predictor, spec, &t.shadow); changed || (psChanged && now.Sub(t.statusWritten) >= predictorStatusEvery(k)) {
		st.Predictor, changed = ps, true
	}
	if changed || t.statusDirty {
		t.status = st
		t.statusDirty = c.writeStatus(ctx, d, st) != nil
		t.statusWritten = now
	}
	c.monitor.ObserveEvaluation(ns, name, &dec, result, c.clock.Since(start))
	span.SetAttributes(attribute.String("autoscale.result", result))
	if scaleErr != nil {
		span.SetStatus(codes.Error, scaleErr.Error())
		return 0, fmt.Errorf("scaling %s from %d to %d: %w", k, dec.Current, dec.Desired, scaleErr)
	}
	return c.next(spec, now), nil
}

// batched reports whether a target's rate comes from the grouped query.
func (c *Controller) batched(spec *scaler.Spec) bool { return c.batch != nil && spec.DefaultQuery }

// next returns when to evaluate a target again: after its interval, or,
// when it is batched, at the next tick of its interval (multiples of it
// since the Unix epoch), where the other batched targets of that interval
// are evaluated too and share one query.
func (c *Controller) next(spec *scaler.Spec, now time.Time) time.Duration {
	if !c.batched(spec) {
		return spec.Interval
	}
	return now.Truncate(spec.Interval).Add(spec.Interval).Sub(now)
}

// warm starts the smoothed rate of a target this process has not evaluated
// yet from the rates of its last WarmSamples intervals (up to one interval
// ago, so that the current sample is not counted twice): a new leader
// decides from the load the old one saw, not from one sample.
func (c *Controller) warm(ctx context.Context, t *target, spec *scaler.Spec, query string, now time.Time) {
	if t.warmed || t.state.HasEMA {
		return
	}
	t.warmed = true
	n := WarmSamples
	if spec.Predictor != scaler.PredictorNone {
		n = HistorySamples
	}
	hctx, span := c.tracer.Start(ctx, "prometheus.query_range", trace.WithAttributes(attribute.String("db.query.text", query)))
	var hist []scaler.Sample
	var err error
	if c.batched(spec) {
		// Shared by the targets that warm up in the same second (a start or
		// a takeover), ending an interval before it, as the query per
		// target does.
		hist, err = c.batch.RPSHistory(hctx, spec.Service, now.Truncate(time.Second).Add(-spec.Interval), spec.Interval, n)
	} else {
		hist, err = c.source.RPSHistory(hctx, query, now.Add(-spec.Interval), spec.Interval, n)
	}
	span.End()
	if err != nil {
		klog.FromContext(ctx).V(2).Info("No history to warm the smoothed rate from", "err", err)
		return
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
			t.history = append(t.history, s)
		}
	}
	t.state = scaler.WarmState(spec, t.state, values)
}

// scale writes replicas through the scale subresource. A conflict is retried
// with a fresh read; if the fresh read shows that someone else changed the
// replica count, their count wins and errReplicasChanged is returned.
func (c *Controller) scale(ctx context.Context, d *appsv1.Deployment, from, to int32) (err error) {
	ctx, span := c.tracer.Start(ctx, "scale.write", trace.WithAttributes(
		attribute.Int("autoscale.from_replicas", int(from)), attribute.Int("autoscale.to_replicas", int(to))))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	deployments := c.client.AppsV1().Deployments(d.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if c.fenced() {
			return errFenced
		}
		sc, err := deployments.GetScale(ctx, d.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if sc.Spec.Replicas != from {
			return fmt.Errorf("%w: now %d", errReplicasChanged, sc.Spec.Replicas)
		}
		sc.Spec.Replicas = to
		_, err = deployments.UpdateScale(ctx, d.Name, sc, metav1.UpdateOptions{FieldManager: FieldManager})
		return err
	})
}

// writeStatus patches the status annotation. A failure is logged, not
// returned: the status is reported again at the next evaluation.
func (c *Controller) writeStatus(ctx context.Context, d *appsv1.Deployment, st Status) error {
	if c.fenced() {
		return errFenced
	}
	ctx, span := c.tracer.Start(ctx, "status.write")
	defer span.End()
	js, err := json.Marshal(st)
	if err == nil {
		var patch []byte
		patch, err = json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{StatusAnnotation: string(js)}}})
		if err == nil {
			_, err = c.client.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
		}
	}
	if err != nil {
		klog.FromContext(ctx).Error(err, "Writing the status annotation failed; will retry at the next evaluation")
	}
	return err
}

func actionWord(a scaler.Action) string {
	if a == scaler.ScaleDown {
		return "DOWNSCALE"
	}
	return "UPSCALE"
}
