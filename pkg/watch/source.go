package watch

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/autoscale-io/reactive-autoscaler/pkg/cycle"
	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

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

// batchKey names a grouped query: a metric source and its form.
type batchKey struct {
	source  string
	instant bool
}

// batched reports whether a target's rate comes from the grouped query.
func (c *Controller) batched(spec *scaler.Spec) bool { return c.batchFor(spec) != nil }

// batchFor returns the grouped query that answers spec's query, if any:
// that of the built-in metric source (and form) the query is, one per
// controller, made when a target first needs it.
func (c *Controller) batchFor(spec *scaler.Spec) BatchSource {
	if spec.Source == nil || c.newBatch == nil {
		return nil
	}
	k := batchKey{spec.Source.Name, spec.Instant}
	c.batchesMu.Lock()
	defer c.batchesMu.Unlock()
	b, ok := c.batches[k]
	if !ok {
		grouped, labels := spec.Source.Grouped(spec.Instant)
		b = c.newBatch(grouped, func() map[string]bool { return c.batchKeys(k) }, labels...)
		c.batches[k] = b
	}
	return b
}

// batchKeys returns the keys, in k's grouped query, of the managed
// workloads whose query it is, from the cache (a target not evaluated yet,
// warming up beside the one that runs the read, is among them).
func (c *Controller) batchKeys(k batchKey) map[string]bool {
	keys := map[string]bool{}
	for _, obj := range c.indexer.List() {
		d, ok := obj.(workload)
		if !ok || !scaler.Managed(d.GetAnnotations()) {
			continue
		}
		spec, err := scaler.Parse(d.GetName(), d.GetAnnotations(), c.defaults)
		if err != nil || spec.Source == nil || (batchKey{spec.Source.Name, spec.Instant}) != k {
			continue
		}
		if key, err := spec.Source.Key(scaler.QueryFields{Namespace: d.GetNamespace(), Deployment: d.GetName(), Service: spec.Service}); err == nil {
			keys[key] = true
		}
	}
	return keys
}

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

// env is what a target's cycle reads: Prometheus (one query per target, or
// the tick's grouped query) and its predictor, each traced.
func (c *Controller) env(d workload, spec *scaler.Spec, due time.Time) cycle.Env {
	src := &promSource{tracer: c.tracer, source: c.source, batch: c.batchFor(spec), interval: spec.Interval, due: due}
	src.query, src.queryErr = spec.RenderQuery(d.GetNamespace(), d.GetName())
	if spec.Source != nil && src.queryErr == nil {
		src.key, src.queryErr = spec.Source.Key(scaler.QueryFields{Namespace: d.GetNamespace(), Deployment: d.GetName(), Service: spec.Service})
	}
	var p scaler.Predictor
	switch spec.Predictor {
	case scaler.PredictorExternal:
		p = c.external
	case scaler.PredictorBuiltin:
		p = c.builtin
	}
	env := cycle.Env{Source: src, Namespace: d.GetNamespace(), Name: d.GetName()}
	if sp, ok := p.(cycle.SeasonalPredictor); ok {
		env.Season = sp.Season()
		// The first read of a week of every target's history must not
		// hold decisions back (a start, a takeover during a spike).
		env.Season.Background = true
	}
	if p != nil {
		env.Predictor = tracedPredictor{p: p, tracer: c.tracer, kind: spec.Predictor}
	}
	return env
}

// promSource is a target's rate on Prometheus, chosen before its cycle
// runs: its own query, or its series in a grouped one.
type promSource struct {
	tracer   trace.Tracer
	source   RateSource
	batch    BatchSource // nil: the target's query runs alone
	interval time.Duration
	query    string
	queryErr error
	due      time.Time
	key      string // the target's series in batch's grouped query
}

func (s *promSource) Rate(ctx context.Context, now time.Time, spike bool) (float64, error) {
	if s.queryErr != nil {
		return 0, fmt.Errorf("rendering the query: %w", s.queryErr)
	}
	ctx, span := s.tracer.Start(ctx, "prometheus.query", trace.WithAttributes(attribute.String("db.query.text", s.query)))
	defer span.End()
	var rps float64
	var err error
	if s.batch != nil && !spike {
		// The tick this evaluation belongs to: every target of the same
		// interval reads the one grouped query run for it.
		span.SetAttributes(attribute.Bool("autoscale.batched", true))
		rps, err = s.batch.Rate(ctx, s.key, batchTick(now, s.due, s.interval), metrics.MaxAge(s.interval))
	} else {
		rps, err = s.source.Rate(ctx, s.query, now, metrics.MaxAge(s.interval))
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return rps, err
}

func (s *promSource) History(ctx context.Context, end time.Time, step time.Duration, n int) ([]scaler.Sample, error) {
	if s.queryErr != nil {
		return nil, fmt.Errorf("rendering the query: %w", s.queryErr)
	}
	ctx, span := s.tracer.Start(ctx, "prometheus.query_range", trace.WithAttributes(attribute.String("db.query.text", s.query)))
	defer span.End()
	if s.batch != nil {
		// Shared by the targets that warm up in the same second (a start
		// or a takeover).
		return s.batch.History(ctx, s.key, end.Truncate(time.Second), step, n)
	}
	return s.source.History(ctx, s.query, end, step, n)
}
