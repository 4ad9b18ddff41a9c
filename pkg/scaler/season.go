package scaler

import (
	"math"
	"slices"
	"time"
)

// Day is the period the seasonal forecaster replays.
const Day = 24 * time.Hour

// Season is a target's long history as Prometheus answers it: the mean rate
// of each Bucket, oldest first, bucket i covering
// (End-(len-i)*Bucket, End-(len-1-i)*Bucket]. NaN marks a bucket without
// data. float32 keeps seven days of 5-minute buckets at 8 KiB a target.
type Season struct {
	End    time.Time
	Bucket time.Duration
	Values []float32
	// Period is a recurring pattern shorter than a day that the forecaster
	// found in Values when the season was read (0: none), kept with the
	// season so that it is looked for once a refresh, not once a decision.
	Period time.Duration
}

// NewSeason builds a Season from samples at Bucket steps whose value at T
// is the mean of (T-Bucket, T] (what avg_over_time over a bucket-long
// subquery returns), ending at end; samples off the grid are dropped, and
// so are the buckets before the first with data.
func NewSeason(end time.Time, bucket time.Duration, n int, samples []Sample) Season {
	s := Season{End: end, Bucket: bucket, Values: make([]float32, n)}
	for i := range s.Values {
		s.Values[i] = float32(math.NaN())
	}
	endSec := float64(end.UnixMilli()) / 1000
	for _, p := range samples {
		back := (endSec - p.T) / bucket.Seconds()
		k := int(math.Round(back))
		if math.Abs(back-float64(k)) > 0.01 || k < 0 || k >= n || !Usable(p.RPS) {
			continue
		}
		s.Values[n-1-k] = float32(p.RPS)
	}
	// A young service's season starts at its first data: nothing is kept
	// for the days before it existed.
	for i, v := range s.Values {
		if !math.IsNaN(float64(v)) {
			s.Values = slices.Clone(s.Values[i:])
			return s
		}
	}
	s.Values = nil
	return s
}

// Days is how many whole days before end the season holds data for.
func (s Season) Days() int {
	if s.Bucket <= 0 {
		return 0
	}
	first := -1
	for i, v := range s.Values {
		if !math.IsNaN(float64(v)) {
			first = i
			break
		}
	}
	if first < 0 {
		return 0
	}
	span := time.Duration(len(s.Values)-first) * s.Bucket
	return int(span / Day)
}

// Mean is the time-weighted mean of the buckets over (from, to]; NaN when
// none of it has data.
func (s Season) Mean(from, to time.Time) float64 {
	sum, weight := 0.0, 0.0
	s.each(from, to, func(v float64, overlap time.Duration) {
		sum += v * overlap.Seconds()
		weight += overlap.Seconds()
	})
	if weight == 0 {
		return math.NaN()
	}
	return sum / weight
}

// Peak is the highest bucket overlapping (from, to]; NaN when none has data.
func (s Season) Peak(from, to time.Time) float64 {
	out := math.NaN()
	s.each(from, to, func(v float64, _ time.Duration) {
		if math.IsNaN(out) || v > out {
			out = v
		}
	})
	return out
}

// each calls f with every bucket with data that overlaps (from, to] and
// the length of the overlap.
func (s Season) each(from, to time.Time, f func(v float64, overlap time.Duration)) {
	n := len(s.Values)
	start := s.End.Add(-time.Duration(n) * s.Bucket)
	if !to.After(start) || !from.Before(s.End) || s.Bucket <= 0 {
		return
	}
	first := max(0, int(from.Sub(start)/s.Bucket))
	for i := first; i < n; i++ {
		lo := start.Add(time.Duration(i) * s.Bucket)
		hi := lo.Add(s.Bucket)
		if !lo.Before(to) {
			break
		}
		overlap := minTime(hi, to).Sub(maxTime(lo, from))
		v := float64(s.Values[i])
		if overlap > 0 && !math.IsNaN(v) {
			f(v, overlap)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Until is the part of s that ended by t (its buckets up to the last one
// ending at or before t), sharing s's values.
func (s Season) Until(t time.Time) Season {
	if !t.Before(s.End) || s.Bucket <= 0 {
		return s
	}
	drop := int((s.End.Sub(t) + s.Bucket - 1) / s.Bucket)
	drop = min(drop, len(s.Values))
	return Season{End: s.End.Add(-time.Duration(drop) * s.Bucket), Bucket: s.Bucket, Values: s.Values[:len(s.Values)-drop], Period: s.Period}
}

// Extend returns s with the buckets of samples up to end appended (samples
// as NewSeason takes them, for the buckets after s.End), keeping at most
// length buckets: the oldest go first. A bucket without a sample is NaN.
// The period is the caller's to find again.
func (s Season) Extend(end time.Time, samples []Sample, length int) Season {
	if !end.After(s.End) || s.Bucket <= 0 {
		return s
	}
	n := int(end.Sub(s.End) / s.Bucket)
	fresh := NewSeason(end, s.Bucket, n, samples)
	// NewSeason dropped the leading empty buckets; put them back, so that
	// the new buckets stand at their times.
	values := make([]float32, 0, min(length, len(s.Values)+n))
	keep := max(0, len(s.Values)+n-length)
	if keep < len(s.Values) {
		values = append(values, s.Values[keep:]...)
	}
	for range n - len(fresh.Values) {
		values = append(values, float32(math.NaN()))
	}
	values = append(values, fresh.Values...)
	if len(values) > length {
		values = values[len(values)-length:]
	}
	return Season{End: end, Bucket: s.Bucket, Values: values}
}
