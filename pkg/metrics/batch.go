package metrics

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"golang.org/x/sync/singleflight"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// Batch answers one query for many targets: a query grouped by a label
// (scaler.GroupedDefaultQuery, by service) is run once per evaluation
// tick, and each target reads its own series from the result. Targets
// evaluated at the same tick share one Prometheus query, so the number of
// queries per cycle does not grow with the number of targets.
type Batch struct {
	src   *Source
	query string // grouped by label
	label model.LabelName

	instant shared[map[string]model.SampleValue]
	ranges  shared[map[string][]scaler.Sample]
}

// shared is the last result of a query, by the key it was run for: the
// first caller with a new key runs it (once, however many ask at the same
// time), the others reuse the answer until the key changes.
type shared[T any] struct {
	group singleflight.Group
	mu    sync.Mutex
	key   string
	val   T
	err   error
}

func (s *shared[T]) get(key string, run func() (T, error)) (T, error) {
	s.mu.Lock()
	if s.key == key {
		defer s.mu.Unlock()
		return s.val, s.err
	}
	s.mu.Unlock()
	v, err, _ := s.group.Do(key, func() (any, error) {
		val, err := run()
		s.mu.Lock()
		s.key, s.val, s.err = key, val, err
		s.mu.Unlock()
		return val, err
	})
	val, _ := v.(T)
	return val, err
}

// NewBatch returns a Batch running query, whose series are told apart by
// label, through src.
func NewBatch(src *Source, query, label string) *Batch {
	return &Batch{src: src, query: query, label: model.LabelName(label)}
}

// RPS returns the value of the series whose label is value, from the
// grouped query evaluated at tick (one query per tick, shared). A value
// with no series is no data (empty), as the per-target query would be.
func (b *Batch) RPS(ctx context.Context, value string, tick time.Time, maxAge time.Duration) (float64, error) {
	res, err := b.instant.get(strconv.FormatInt(tick.UnixNano(), 10), func() (map[string]model.SampleValue, error) {
		return b.runInstant(ctx, tick)
	})
	single := fmt.Sprintf("%s{%s=%q}", b.query, b.label, value)
	if err != nil {
		return b.src.classified(single, nil, err, tick, maxAge)
	}
	sample, ok := res[value]
	if !ok {
		return b.src.classified(single, model.Vector{}, nil, tick, maxAge)
	}
	return b.src.classified(single, model.Vector{{Value: sample, Timestamp: model.TimeFromUnixNano(tick.UnixNano())}}, nil, tick, maxAge)
}

func (b *Batch) runInstant(ctx context.Context, tick time.Time) (map[string]model.SampleValue, error) {
	// Not the caller's context: other targets share the answer.
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.src.timeout)
	defer cancel()
	start := time.Now()
	val, _, _, err := b.src.api.Query(qctx, b.query, tick)
	b.src.rec.observeQuery(time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("grouped query %q: %w", b.query, err)
	}
	vec, ok := val.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("grouped query %q returned a %v, want a vector", b.query, typeOf(val))
	}
	out := make(map[string]model.SampleValue, len(vec))
	for _, s := range vec {
		out[string(s.Metric[b.label])] = s.Value
	}
	return out, nil
}

// RPSHistory returns the samples of the series whose label is value, from
// one grouped range query per (end, step, n), shared by the targets that
// warm up together (a start or a takeover).
func (b *Batch) RPSHistory(ctx context.Context, value string, end time.Time, step time.Duration, n int) ([]scaler.Sample, error) {
	res, err := b.ranges.get(fmt.Sprintf("%d/%d/%d", end.UnixNano(), step, n), func() (map[string][]scaler.Sample, error) {
		return b.runRange(ctx, end, step, n)
	})
	if err != nil {
		return nil, err
	}
	return res[value], nil
}

func (b *Batch) runRange(ctx context.Context, end time.Time, step time.Duration, n int) (map[string][]scaler.Sample, error) {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.src.timeout)
	defer cancel()
	start := time.Now()
	val, _, _, err := b.src.api.QueryRange(qctx, b.query, promv1.Range{Start: end.Add(-time.Duration(n) * step), End: end, Step: step})
	b.src.rec.observeQuery(time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("grouped range query %q: %w", b.query, err)
	}
	m, ok := val.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("grouped range query %q returned a %v, want a matrix", b.query, typeOf(val))
	}
	out := make(map[string][]scaler.Sample, len(m))
	for _, series := range m {
		samples := make([]scaler.Sample, 0, len(series.Values))
		for _, p := range series.Values {
			samples = append(samples, scaler.Sample{T: float64(p.Timestamp) / 1000, RPS: float64(p.Value)})
		}
		out[string(series.Metric[b.label])] = samples
	}
	return out, nil
}
