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

	group singleflight.Group
	mu    sync.Mutex
	// The last instant and range results, by the key they were run for.
	instantKey string
	instant    map[string]model.SampleValue
	instantErr error
	rangeKey   string
	ranges     map[string][]scaler.Sample
	rangeErr   error
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
	key := strconv.FormatInt(tick.UnixNano(), 10)
	b.mu.Lock()
	cached := b.instantKey == key
	res, err := b.instant, b.instantErr
	b.mu.Unlock()
	if !cached {
		var v any
		v, err, _ = b.group.Do("instant/"+key, func() (any, error) {
			r, err := b.runInstant(ctx, tick)
			b.mu.Lock()
			b.instantKey, b.instant, b.instantErr = key, r, err
			b.mu.Unlock()
			return r, err
		})
		res, _ = v.(map[string]model.SampleValue)
	}
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
	key := fmt.Sprintf("%d/%d/%d", end.UnixNano(), step, n)
	b.mu.Lock()
	cached := b.rangeKey == key
	res, err := b.ranges, b.rangeErr
	b.mu.Unlock()
	if !cached {
		var v any
		v, err, _ = b.group.Do("range/"+key, func() (any, error) {
			r, err := b.runRange(ctx, end, step, n)
			b.mu.Lock()
			b.rangeKey, b.ranges, b.rangeErr = key, r, err
			b.mu.Unlock()
			return r, err
		})
		res, _ = v.(map[string][]scaler.Sample)
	}
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
