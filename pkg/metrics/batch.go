package metrics

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"golang.org/x/sync/singleflight"
	"k8s.io/klog/v2"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// Batch answers one query for many targets: a query grouped by labels
// (scaler.GroupedDefaultQuery, by namespace and service) is run once per
// evaluation tick, and each target reads its own series from the result,
// keyed by its label values joined with "/" ("shop/frontend"). Targets
// evaluated at the same tick share one Prometheus query, so the number of
// queries per cycle does not grow with the number of targets.
type Batch struct {
	src    *Source
	query  string // grouped by labels
	labels []model.LabelName
	// Keys, when set, are the keys a range answer is kept for: those of
	// the targets that read this query. A grouped query's answer holds
	// every series the metric has, and whoever may run an exporter may add
	// series; a week of one is 40 KB held. Without Keys, at most
	// MaxHistorySeries series are kept.
	Keys func() map[string]bool

	instant shared[map[string]model.SampleValue]
	// ranges holds the last range query of each (step, n): a warm-up's
	// and a season's refresh do not evict each other.
	rangesMu sync.Mutex
	ranges   map[string]*shared[*rangeResult]
}

// rangeResult is a grouped range query's answer: each key's samples, or,
// for a read longer than RangeChunk, each key's values on the step grid
// as float32 from its first sample on (NaN: no sample), which takes a
// quarter of the memory.
type rangeResult struct {
	samples map[string][]scaler.Sample
	start   time.Time
	step    time.Duration
	dense   map[string]denseSeries
}

// denseSeries holds a series' values from step first of the grid on.
type denseSeries struct {
	first  int
	values []float32
}

// of returns key's samples, oldest first.
func (r *rangeResult) of(key string) []scaler.Sample {
	if r.dense == nil {
		return r.samples[key]
	}
	d := r.dense[key]
	out := make([]scaler.Sample, 0, len(d.values))
	for i, x := range d.values {
		if x == x { // not NaN
			t := r.start.Add(time.Duration(d.first+i) * r.step)
			out = append(out, scaler.Sample{T: float64(t.UnixMilli()) / 1000, RPS: float64(x)})
		}
	}
	return out
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
	return s.getFor(key, 0, run)
}

// getFor is get, with the answer dropped ttl after it came (0: kept until
// the key changes), so that a large answer nobody will ask for again does
// not stay in memory.
func (s *shared[T]) getFor(key string, ttl time.Duration, run func() (T, error)) (T, error) {
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
		if ttl > 0 {
			time.AfterFunc(ttl, func() {
				s.mu.Lock()
				defer s.mu.Unlock()
				if s.key == key {
					var zero T
					s.key, s.val, s.err = "", zero, nil
				}
			})
		}
		return val, err
	})
	val, _ := v.(T)
	return val, err
}

// RangeTimeout is the least time a grouped range query is given: a week of
// every target's history at once is one large query (5,000 targets: 14 s
// on 2 cores, 146 MB of JSON), read once per process.
const RangeTimeout = time.Minute

// RangeChunk is the longest span one grouped range query covers: a longer
// read (a week of every target's history) is made of queries a day long,
// run one after another, each decoded into the result before the next is
// asked for, so that a read holds one day's answer in memory at a time,
// not the week's.
const RangeChunk = 6 * time.Hour

// RangeKeep is how long a grouped range query's answer is kept for the
// targets that read it: those that start or refresh together do so within
// an interval or two, and a season's answer is 160 KiB a target.
const RangeKeep = 2 * time.Minute

// MaxHistorySeries bounds the series a range answer keeps when the
// Batch has no Keys.
const MaxHistorySeries = 10000

// keeper returns whether a range answer keeps a key: one of Keys, or,
// without Keys, one of the first MaxHistorySeries.
func (b *Batch) keeper() func(key string, held int) bool {
	if b.Keys == nil {
		return func(_ string, held int) bool { return held < MaxHistorySeries }
	}
	keys := b.Keys()
	return func(key string, _ int) bool { return keys[key] }
}

// NewBatch returns a Batch running query, whose series are told apart by
// labels, through src.
func NewBatch(src *Source, query string, labels ...string) *Batch {
	b := &Batch{src: src, query: query}
	for _, l := range labels {
		b.labels = append(b.labels, model.LabelName(l))
	}
	return b
}

// key is a series' label values joined with "/".
func (b *Batch) key(m model.Metric) string {
	parts := make([]string, len(b.labels))
	for i, l := range b.labels {
		parts[i] = string(m[l])
	}
	return strings.Join(parts, "/")
}

// selector is the per-target query a key stands for, for messages.
func (b *Batch) selector(key string) string {
	values := strings.SplitN(key, "/", len(b.labels))
	parts := make([]string, len(b.labels))
	for i, l := range b.labels {
		v := ""
		if i < len(values) {
			v = values[i]
		}
		parts[i] = fmt.Sprintf("%s=%q", l, v)
	}
	return fmt.Sprintf("%s{%s}", b.query, strings.Join(parts, ","))
}

// Rate returns the value of the series whose labels' values are key, from
// the grouped query evaluated at tick (one query per tick, shared). A key
// with no series is no data (empty), as the per-target query would be.
func (b *Batch) Rate(ctx context.Context, key string, tick time.Time, maxAge time.Duration) (float64, error) {
	res, err := b.instant.get(strconv.FormatInt(tick.UnixNano(), 10), func() (map[string]model.SampleValue, error) {
		return b.runInstant(ctx, tick)
	})
	single := b.selector(key)
	if err != nil {
		return b.src.classified(single, nil, err, tick, maxAge)
	}
	sample, ok := res[key]
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
	val, warnings, _, err := b.src.api.Query(qctx, b.query, tick)
	b.src.rec.observeQuery(time.Since(start))
	if val, err = answered(val, warnings, err); err != nil {
		return nil, fmt.Errorf("grouped query %q: %w", b.query, err)
	}
	vec, ok := val.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("grouped query %q returned a %v, want a vector", b.query, typeOf(val))
	}
	out := make(map[string]model.SampleValue, len(vec))
	for _, s := range vec {
		out[b.key(s.Metric)] = s.Value
	}
	return out, nil
}

// History returns the samples of the series whose labels' values are
// key, from one grouped range query per (end, step, n), shared by the
// targets that warm up together (a start or a takeover) or refresh their
// season at the same multiple of the refresh period.
func (b *Batch) History(ctx context.Context, key string, end time.Time, step time.Duration, n int) ([]scaler.Sample, error) {
	shape := fmt.Sprintf("%d/%d", step, n)
	b.rangesMu.Lock()
	if b.ranges == nil {
		b.ranges = map[string]*shared[*rangeResult]{}
	}
	r := b.ranges[shape]
	if r == nil {
		r = &shared[*rangeResult]{}
		b.ranges[shape] = r
	}
	b.rangesMu.Unlock()
	res, err := r.getFor(fmt.Sprintf("%d/%s", end.UnixNano(), shape), RangeKeep, func() (*rangeResult, error) {
		if time.Duration(n)*step > RangeChunk {
			return b.runChunked(ctx, end, step, n)
		}
		m, err := b.runRange(ctx, end.Add(-time.Duration(n)*step), end, step)
		if err != nil {
			return nil, err
		}
		keep := b.keeper()
		out := &rangeResult{samples: map[string][]scaler.Sample{}}
		for _, series := range m {
			k := b.key(series.Metric)
			if _, dup := out.samples[k]; dup || !keep(k, len(out.samples)) {
				continue
			}
			samples := make([]scaler.Sample, 0, len(series.Values))
			for _, p := range series.Values {
				samples = append(samples, scaler.Sample{T: float64(p.Timestamp) / 1000, RPS: float64(p.Value)})
			}
			out.samples[k] = samples
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return res.of(key), nil
}

// runChunked reads the n+1 steps from end-n*step to end in queries of at
// most RangeChunk, oldest first, into float32 values on the step grid.
func (b *Batch) runChunked(ctx context.Context, end time.Time, step time.Duration, n int) (*rangeResult, error) {
	start := end.Add(-time.Duration(n) * step)
	out := &rangeResult{start: start, step: step, dense: map[string]denseSeries{}}
	per := max(1, int(RangeChunk/step))
	keep := b.keeper()
	began, queries := time.Now(), 0
	defer func() {
		klog.FromContext(ctx).Info("Read a long history with a grouped range query", "query", b.query, "span", time.Duration(n)*step,
			"step", step, "queries", queries, "series", len(out.dense), "took", time.Since(began).Round(time.Millisecond))
	}()
	for i0 := 0; i0 <= n; i0 += per {
		queries++
		i1 := min(i0+per-1, n)
		m, err := b.runRange(ctx, start.Add(time.Duration(i0)*step), start.Add(time.Duration(i1)*step), step)
		if err != nil {
			return nil, err
		}
		for _, series := range m {
			if len(series.Values) == 0 {
				continue
			}
			k := b.key(series.Metric)
			d, ok := out.dense[k]
			if !ok {
				if !keep(k, len(out.dense)) {
					continue
				}
				// Chunks come oldest first: a series' first chunk holds its
				// first sample, and nothing before it is kept.
				d.first = max(0, min(n, int(math.Round(float64(series.Values[0].Timestamp.Time().Sub(start))/float64(step)))))
				d.values = make([]float32, n+1-d.first)
				for i := range d.values {
					d.values[i] = float32(math.NaN())
				}
				out.dense[k] = d
			}
			for _, p := range series.Values {
				i := int(math.Round(float64(p.Timestamp.Time().Sub(start))/float64(step))) - d.first
				if i >= 0 && i < len(d.values) {
					d.values[i] = float32(p.Value)
				}
			}
		}
	}
	return out, nil
}

// runRange runs the grouped query over [start, end], with a timeout of its
// own: other targets share the answer.
func (b *Batch) runRange(ctx context.Context, start, end time.Time, step time.Duration) (model.Matrix, error) {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(b.src.timeout, RangeTimeout))
	defer cancel()
	began := time.Now()
	val, warnings, _, err := b.src.api.QueryRange(qctx, b.query, promv1.Range{Start: start, End: end, Step: step})
	b.src.rec.observeQuery(time.Since(began))
	if val, err = answered(val, warnings, err); err != nil {
		return nil, fmt.Errorf("grouped range query %q: %w", b.query, err)
	}
	m, ok := val.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("grouped range query %q returned a %v, want a matrix", b.query, typeOf(val))
	}
	return m, nil
}
