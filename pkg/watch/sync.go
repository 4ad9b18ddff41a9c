package watch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/autoscale-io/reactive-autoscaler/pkg/cycle"
	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// Event reasons (docs/REFERENCE.md section 5).
const (
	EventSuccessfulRescale = "SuccessfulRescale"
	EventDryRunRescale     = "DryRunRescale"
	EventFailedRescale     = "FailedRescale"
	EventFailedGetMetrics  = "FailedGetMetrics"
	EventInvalidAnnotation = "InvalidAnnotation"
	EventUnknownAnnotation = "UnknownAnnotation"
	EventTableBelowMax     = "TableBelowMax"
)

// invalidRecheck is how often a target whose settings are invalid is
// looked at again (a change of its annotations queues it at once anyway):
// its settings are parsed once, so this costs a map lookup.
const invalidRecheck = 30 * time.Second

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

// syncDue evaluates one target and returns when to evaluate it next (0: not
// again, it is no longer managed). due is when the evaluation was scheduled
// (zero: not scheduled). A returned error is retried with backoff.
//
// The steps: find the target; observe and decide (its cycle.Cycle, on
// Prometheus and the predictor); apply (fence, dry run or write); report
// (Events, status, metrics).
func (c *Controller) syncDue(ctx context.Context, k string, due time.Time) (time.Duration, error) {
	start := c.clock.Now()
	ns, name, err := cache.SplitMetaNamespaceKey(k)
	if err != nil {
		return 0, nil // a malformed key never becomes valid
	}
	d, err := c.get(ns, name)
	if apierrors.IsNotFound(err) || (err == nil && !scaler.Managed(d.GetAnnotations())) {
		c.forget(k)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading %s %s from the cache: %w", string(c.kind), k, err)
	}
	ctx, span := c.traced(ctx, d)
	defer span.End()

	c.mu.Lock()
	t := c.targetLocked(k, d)
	c.started[k] = start
	c.mu.Unlock()
	t.busy.Lock()
	defer t.busy.Unlock()
	now := c.clock.Now()
	tr := c.takeTrigger(t)
	if tr.pending {
		t.cycle.Trigger(now, c.spikeWindow)
	}
	nn := types.NamespacedName{Namespace: ns, Name: name}
	ev := metrics.Evaluation{At: start}
	if !due.IsZero() {
		ev.Scheduled, ev.Lag = true, start.Sub(due)
	}
	spec, specErr, changed := c.specFor(t, d)
	if changed {
		c.reportSettings(ctx, k, t, d, spec, specErr)
	}
	switch {
	case specErr != nil:
		if changed && !c.fenced() {
			c.recorder.Eventf(d, corev1.EventTypeWarning, EventInvalidAnnotation, "%v; the %s is left untouched", specErr, string(c.kind))
			klog.FromContext(ctx).Info("Invalid autoscaling annotation; not managing until fixed", "err", specErr)
		}
		ev.Result, ev.Took = metrics.ResultInvalid, c.clock.Since(start)
		c.monitor.Evaluated(nn, ev)
		return invalidRecheck, nil
	case spec.Paused:
		klog.FromContext(ctx).V(4).Info("Paused")
		return spec.Interval, nil
	case c.checkConflict(ctx, k, t, d):
		ev.Result = metrics.ResultConflict
		c.monitor.Evaluated(nn, ev)
		return spec.Interval, nil
	}

	a := c.evaluate(ctx, t, d, tr, now, due, &ev)
	if a.fenced {
		// Nothing written and no decision kept, but the target stays
		// scheduled: client-go may still renew the Lease after the fence
		// closed, and a replica that leads on must not have forgotten its
		// targets (nothing else re-queues them). A replica that does lose
		// the Lease exits.
		return c.next(spec, now), nil
	}
	ev.Took = c.clock.Since(start)
	c.monitor.Evaluated(nn, ev)
	if a.err != nil {
		span.SetStatus(codes.Error, a.err.Error())
		if ev.Decision == nil {
			// Failed before deciding (a custom kind's /scale read): retried
			// with backoff, as a failed write is.
			return 0, fmt.Errorf("evaluating %s: %w", k, a.err)
		}
		return 0, fmt.Errorf("scaling %s from %d to %d: %w", k, ev.Decision.Current, ev.Decision.Desired, a.err)
	}
	return c.next(spec, now), nil
}

// reportSettings says, once per change of a target's settings, what of
// them is not used or cannot do what they seem to ask: unknown keys get an
// UnknownAnnotation Event, a table that stops below max-replicas a
// TableBelowMax Event (invalid settings have their InvalidAnnotation
// Event), and all go in the status' warnings, which are cleared once the
// annotations are fixed.
func (c *Controller) reportSettings(ctx context.Context, k string, t *target, d workload, spec *scaler.Spec, specErr error) {
	// A replica that no longer leads says nothing: the leader does (its
	// first sight of each target is a change), and this one is leaving.
	event := c.recorder.Eventf
	if c.fenced() {
		event = func(runtime.Object, string, string, string, ...any) {}
	}
	var warnings []string
	if specErr != nil {
		warnings = []string{"not managed: " + specErr.Error()}
	}
	if specErr == nil && len(spec.Warnings) > 0 {
		warnings = append(warnings, spec.Warnings...)
		event(d, corev1.EventTypeWarning, EventUnknownAnnotation, "%s", strings.Join(spec.Warnings, "; "))
		klog.FromContext(ctx).Info("Unknown autoscaling annotations; ignored", "warnings", spec.Warnings)
	}
	if specErr == nil && spec.SizingWarning != "" && !spec.Paused {
		warnings = append(warnings, spec.SizingWarning)
		event(d, corev1.EventTypeWarning, EventTableBelowMax, "%s", spec.SizingWarning)
		klog.FromContext(ctx).Info("The table never reaches max-replicas", "reach", spec.Reach, "maxReplicas", spec.MaxReplicas)
	}
	if slices.Equal(warnings, t.status.Warnings) {
		return
	}
	t.status.Warnings = warnings
	c.queueStatus(k, t.status)
}

// evaluate runs one evaluation of a valid, managed target (its spec is
// t.spec): observe and
// decide (its cycle.Cycle, on Prometheus and the predictor), apply (fence,
// dry run or write), report (Events, status, and ev for the metrics).
func (c *Controller) evaluate(ctx context.Context, t *target, d workload, tr trigger, now, due time.Time, ev *metrics.Evaluation) applied {
	spec := t.spec
	span := trace.SpanFromContext(ctx)
	current := int32(1)
	if r := specReplicas(d); r != nil {
		current = *r
	}
	if c.custom {
		// A metadata-only cache holds no replicas: the scale subresource
		// has them (and the resourceVersion the write is conditioned on).
		sc, err := c.api.getScale(ctx, d.GetNamespace(), d.GetName())
		if err != nil {
			ev.Result = metrics.ResultError
			return applied{result: metrics.ResultError, err: fmt.Errorf("reading the scale subresource: %w", err)}
		}
		current = sc.Spec.Replicas
	}
	octx, cancel := withEvalDeadline(ctx, spec.Interval)
	o := t.cycle.Evaluate(octx, now, spec, current, c.env(d, spec, due))
	cancel()
	ev.Prediction = c.reportObservation(ctx, t, d, spec, o)
	dec := o.Decision
	ev.Decision = &dec
	span.SetAttributes(attribute.Bool("autoscale.spike", o.Spike), attribute.Int("autoscale.current_replicas", int(current)),
		attribute.Float64("autoscale.rps", dec.RPS), attribute.Float64("autoscale.smoothed_rps", dec.SmoothedRPS),
		attribute.Bool("autoscale.data_ok", dec.DataOK), attribute.String("autoscale.decision", dec.Action.String()),
		attribute.Int("autoscale.desired_replicas", int(dec.Desired)), attribute.String("autoscale.code", string(dec.Code)), attribute.String("autoscale.reason", dec.Reason))
	if c.fenced() {
		// Decided, but another replica leads now: its state is the one
		// that counts, so this replica keeps nothing and writes nothing.
		klog.FromContext(ctx).Info("Not the leader any more; dropping the decision", "decision", dec.Reason)
		return applied{fenced: true}
	}
	a := c.apply(ctx, d, spec, o)
	if a.fenced {
		return a
	}
	ev.Result = a.result
	if a.result == metrics.ResultScaled && tr.pending {
		ev.SpikeToScale = c.clock.Since(tr.at)
	}
	t.cycle.Commit(o, a.scaled, now)
	c.reportStatus(key(d), t, spec, o, a.scaled, now)
	span.SetAttributes(attribute.String("autoscale.result", string(a.result)))
	return a
}

// traced starts an evaluation's span and puts in ctx a logger that names
// the Deployment and the trace.
func (c *Controller) traced(ctx context.Context, d workload) (context.Context, trace.Span) {
	ctx, span := c.tracer.Start(ctx, "evaluate", trace.WithAttributes(
		attribute.String("k8s.namespace.name", d.GetNamespace()), attribute.String("k8s."+strings.ToLower(string(c.kind))+".name", d.GetName())))
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "deployment", klog.KObj(d))
	if sc := span.SpanContext(); sc.IsValid() {
		logger = klog.LoggerWithValues(logger, "traceID", sc.TraceID().String(), "spanID", sc.SpanID().String())
	}
	return klog.NewContext(ctx, logger), span
}

// trigger is a spike trigger taken for an evaluation.
type trigger struct {
	pending bool
	at      time.Time // when the first pending trigger was received
}

// takeTrigger returns and clears t's pending spike trigger.
func (c *Controller) takeTrigger(t *target) trigger {
	c.mu.Lock()
	defer c.mu.Unlock()
	tr := trigger{t.spike, t.spikeAt}
	t.spike = false
	return tr
}

// applied is what became of a decision.
type applied struct {
	result metrics.Result
	scaled bool  // written, or reported in a dry run
	fenced bool  // another replica leads: nothing written, nothing to keep
	err    error // the write failed
}

// apply carries out a decision: holds, reports a dry run, or writes the
// replicas, with the Event that says so.
func (c *Controller) apply(ctx context.Context, d workload, spec *scaler.Spec, o cycle.Outcome) applied {
	logger := klog.FromContext(ctx)
	dec := o.Decision
	a := applied{result: metrics.ResultHeld}
	if !dec.DataOK {
		a.result = metrics.ResultNoData
		c.recorder.Eventf(d, corev1.EventTypeWarning, EventFailedGetMetrics, "%s; holding at %d replicas", dec.Reason, dec.Current)
	}
	switch {
	case dec.Action == scaler.Hold:
		logger.V(4).Info("Evaluated", "replicas", dec.Current, "rps", dec.RPS, "smoothedRPS", dec.SmoothedRPS, "spike", o.Spike, "code", dec.Code, "reason", dec.Reason)
		return a
	case spec.DryRun:
		c.recorder.Eventf(d, corev1.EventTypeNormal, EventDryRunRescale, "Would set new size: %d; reason: %s", dec.Desired, dec.Reason)
		logger.Info("Dry run: "+actionWord(dec.Action)+" not written", "oldReplicas", dec.Current, "newReplicas", dec.Desired, "reason", dec.Reason)
		return applied{result: metrics.ResultDryRun, scaled: true}
	}
	err := c.scale(ctx, d, dec.Current, dec.Desired)
	switch {
	case errors.Is(err, errFenced):
		logger.Info("Not the leader any more; the decision is not written", "decision", dec.Reason)
		return applied{fenced: true}
	case errors.Is(err, errReplicasChanged):
		logger.Info("Replicas changed by someone else before the write; keeping their count", "decidedFrom", dec.Current)
		return a
	case err != nil:
		c.recorder.Eventf(d, corev1.EventTypeWarning, EventFailedRescale, "New size: %d; reason: %s; error: %v", dec.Desired, dec.Reason, err)
		return applied{result: metrics.ResultError, err: err}
	}
	c.recorder.Eventf(d, corev1.EventTypeNormal, EventSuccessfulRescale, "New size: %d; reason: %s", dec.Desired, dec.Reason)
	logger.Info(actionWord(dec.Action), "oldReplicas", dec.Current, "newReplicas", dec.Desired, "spike", o.Spike, "code", dec.Code, "reason", dec.Reason)
	return applied{result: metrics.ResultScaled, scaled: true}
}

// scale writes replicas through the scale subresource in one call: a
// write conditioned on the resourceVersion of the cached object the
// decision was made from, so it lands only if nothing changed since. On a
// conflict the scale is read afresh: if someone else changed the replica
// count, or the workload was deleted and created again under its name,
// their count wins and errReplicasChanged is returned; otherwise the
// write is retried on what was read.
func (c *Controller) scale(ctx context.Context, d workload, from, to int32) (err error) {
	ctx, span := c.tracer.Start(ctx, "scale.write", trace.WithAttributes(
		attribute.Int("autoscale.from_replicas", int(from)), attribute.Int("autoscale.to_replicas", int(to))))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	sc := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: d.GetName(), Namespace: d.GetNamespace(), ResourceVersion: d.GetResourceVersion()}}
	fresh := sc.ResourceVersion != "" // without one the write would be unconditional: read first
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if !fresh {
			klog.FromContext(ctx).V(2).Info("Reading the scale afresh (the cached object was stale or had no resourceVersion)")
			read, err := c.api.getScale(ctx, d.GetNamespace(), d.GetName())
			if err != nil {
				return err
			}
			if uid := d.GetUID(); uid != "" && read.UID != uid {
				// Deleted and created again under the same name since the
				// decision: it was made for another object.
				return fmt.Errorf("%w: the %s was re-created (uid %s, decided for %s)", errReplicasChanged, c.kind, read.UID, uid)
			}
			if read.Spec.Replicas != from {
				return fmt.Errorf("%w: now %d", errReplicasChanged, read.Spec.Replicas)
			}
			sc = read
		}
		fresh = false
		if c.fenced() {
			return errFenced
		}
		sc.Spec.Replicas = to
		return c.api.updateScale(ctx, sc)
	})
}

func actionWord(a scaler.Action) string {
	if a == scaler.ScaleDown {
		return "DOWNSCALE"
	}
	return "UPSCALE"
}
