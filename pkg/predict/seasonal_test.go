package predict

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

var t0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// dailyStep is days of 1-minute buckets at 30 RPS with a step to 240 RPS
// every day at 09:00 that lasts two hours.
func dailyStep(days int) scaler.Season {
	n := days * 1440
	s := scaler.Season{End: t0.Add(time.Duration(n) * time.Minute), Bucket: time.Minute, Values: make([]float32, n)}
	for i := range s.Values {
		// Bucket i covers (t0+i min, t0+(i+1) min].
		minute := i % 1440
		s.Values[i] = 30
		if minute >= 9*60 && minute < 11*60 {
			s.Values[i] = 240
		}
	}
	return s
}

func samplesAt(from, to time.Time, step time.Duration, rps float64) []scaler.Sample {
	var out []scaler.Sample
	for at := from; !at.After(to); at = at.Add(step) {
		out = append(out, scaler.Sample{T: float64(at.UnixMilli()) / 1000, RPS: rps})
	}
	return out
}

func TestTheSeasonalForecasterSeesARecurringStepComing(t *testing.T) {
	f := DefaultSeasonal()
	// Day 4, 08:59: the last refresh at 08:50, 30 RPS since.
	now := t0.Add(3*scaler.Day + 8*time.Hour + 59*time.Minute)
	season := dailyStep(4).Until(now.Truncate(SeasonRefresh))
	recent := samplesAt(now.Add(-10*time.Minute), now, 15*time.Second, 30)
	fc, err := f.Peak(season, recent, now, 75*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if fc.Days != 3 || math.Abs(fc.RPS-240) > 1 {
		t.Errorf("60 s before a step seen on 3 days: %+v, want 240 from 3 days", fc)
	}
	// Two minutes earlier the step is beyond the window.
	early := now.Add(-2 * time.Minute)
	fc, err = f.Peak(season, recent, early, 75*time.Second)
	if err != nil || math.Abs(fc.RPS-30) > 1 {
		t.Errorf("3 min before the step: %+v, %v; want 30", fc, err)
	}
}

func TestTheLevelCorrectsThePastDays(t *testing.T) {
	f := DefaultSeasonal()
	now := t0.Add(3*scaler.Day + 8*time.Hour + 59*time.Minute)
	season := dailyStep(4).Until(now.Truncate(SeasonRefresh))
	// Today is twice as busy as the past days were at this time (60, not
	// 30 RPS): the step is forecast twice as high (the correction's bound).
	for i := range season.Values[len(season.Values)-120:] {
		season.Values[len(season.Values)-120+i] = 60
	}
	recent := samplesAt(now.Add(-10*time.Minute), now, 15*time.Second, 60)
	fc, err := f.Peak(season, recent, now, 75*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := 60 + 2*(240-30.0); math.Abs(fc.RPS-want) > 2 {
		t.Errorf("twice as busy: %.1f, want about %.0f", fc.RPS, want)
	}
	for _, c := range []struct{ level, base, target, want float64 }{
		{100, 100, 150, 150},   // the same level: the past day's change
		{50, 100, 150, 75},     // half as busy: half the change
		{100, 0.5, 80, 179.5},  // a day that started near zero: the change itself
		{10, 100, 0, 0},        // never below zero
		{1000, 100, 200, 1200}, // the factor is bounded at 2
	} {
		if got := Correct(c.level, c.base, c.target); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Correct(%v, %v, %v) = %v, want %v", c.level, c.base, c.target, got, c.want)
		}
	}
}

func TestWithoutADayOfHistoryThereIsNoForecast(t *testing.T) {
	f := DefaultSeasonal()
	now := t0.Add(20 * time.Hour)
	season := dailyStep(1).Until(now.Truncate(SeasonRefresh))
	recent := samplesAt(now.Add(-10*time.Minute), now, 15*time.Second, 30)
	_, err := f.Peak(season, recent, now, time.Minute)
	if !errors.Is(err, scaler.ErrNoForecastYet) {
		t.Errorf("20 h of history: %v, want ErrNoForecastYet", err)
	}
	_, err = f.Predict(context.Background(), scaler.PredictRequest{HorizonSeconds: 60, History: recent})
	if !errors.Is(err, scaler.ErrNoForecastYet) {
		t.Errorf("no season at all: %v, want ErrNoForecastYet", err)
	}
	// With a day, it answers, and names its source.
	s := dailyStep(2)
	now = s.End.Add(-15*time.Hour - time.Minute)
	season = s.Until(now.Truncate(SeasonRefresh))
	ans, err := f.Predict(context.Background(), scaler.PredictRequest{HorizonSeconds: 75, Season: &season,
		History: samplesAt(now.Add(-10*time.Minute), now, 15*time.Second, 30)})
	if err != nil || !ans.HasRPS || ans.RPS != 240 || ans.Source != "builtin: 1-day seasonal peak" {
		t.Errorf("a day of history, a minute before the step: %+v, %v", ans, err)
	}
}

func TestASeasonReadsItsBuckets(t *testing.T) {
	end := t0.Add(10 * time.Minute)
	var samples []scaler.Sample
	for i := 1; i <= 10; i++ {
		samples = append(samples, scaler.Sample{T: float64(t0.Add(time.Duration(i) * time.Minute).Unix()), RPS: float64(i)})
	}
	samples = append(samples, scaler.Sample{T: float64(t0.Unix()) + 30, RPS: 99}) // off the grid
	s := scaler.NewSeason(end, time.Minute, 12, samples)
	if len(s.Values) != 10 || s.Values[9] != 10 || s.Values[0] != 1 { // the two leading empty buckets are dropped
		t.Fatalf("season %v", s.Values)
	}
	// (t0+1m, t0+3m] holds the buckets ending at 2 and 3 minutes.
	if m := s.Mean(t0.Add(time.Minute), t0.Add(3*time.Minute)); m != 2.5 {
		t.Errorf("mean %v, want 2.5", m)
	}
	// Half of bucket 3 and all of bucket 4.
	if m := s.Mean(t0.Add(150*time.Second), t0.Add(4*time.Minute)); math.Abs(m-(3*30+4*60)/90.0) > 1e-9 {
		t.Errorf("weighted mean %v", m)
	}
	if p := s.Peak(t0.Add(150*time.Second), t0.Add(4*time.Minute+time.Second)); p != 5 {
		t.Errorf("peak %v, want 5 (the bucket ending at 5 min overlaps by a second)", p)
	}
	// Extend appends the new buckets, a gap as NaN, and drops the oldest.
	more := []scaler.Sample{{T: float64(t0.Add(12 * time.Minute).Unix()), RPS: 12}}
	x := s.Extend(t0.Add(12*time.Minute), more, 11)
	if !x.End.Equal(t0.Add(12*time.Minute)) || len(x.Values) != 11 || x.Values[0] != 2 || !math.IsNaN(float64(x.Values[9])) || x.Values[10] != 12 {
		t.Errorf("extended to 12 min, 11 buckets kept: end %v, values %v", x.End, x.Values)
	}
	if s.Values[0] != 1 {
		t.Error("Extend changed the season it extends")
	}
	u := s.Until(t0.Add(7*time.Minute + 30*time.Second))
	if !u.End.Equal(t0.Add(7*time.Minute)) || u.Values[len(u.Values)-1] != 7 {
		t.Errorf("until 7m30s: end %v, last %v", u.End, u.Values[len(u.Values)-1])
	}
}

// everyTwoHours is hours of 1-minute buckets at about 30 RPS (10 % noise,
// fixed seed) with a burst to 120 RPS from minute 32 to 36 of every even
// hour: a job that runs every two hours.
func everyTwoHours(hours int) scaler.Season {
	rng := rand.New(rand.NewPCG(3, 4))
	n := hours * 60
	s := scaler.Season{End: t0.Add(time.Duration(n) * time.Minute), Bucket: time.Minute, Values: make([]float32, n)}
	for i := range s.Values {
		s.Values[i] = float32(30 * (1 + 0.1*rng.NormFloat64()))
		if m := i % 120; m >= 32 && m < 37 {
			s.Values[i] = 120
		}
	}
	return s
}

func TestAPeriodWithinTheDayIsFoundOnceItRecurs(t *testing.T) {
	level := DefaultSeasonal().Level
	if p := DetectPeriod(everyTwoHours(12), level); p != 2*time.Hour {
		t.Errorf("12 h of a burst every 2 h: period %v, want 2h", p)
	}
	// Four times is not yet a pattern (PeriodRepeats).
	if p := DetectPeriod(everyTwoHours(9), level); p != 0 {
		t.Errorf("9 h of a burst every 2 h: period %v, want none yet", p)
	}
	// Not a period: a daily shape, noise, bursts at random times.
	rng := rand.New(rand.NewPCG(5, 6))
	shapes := map[string]scaler.Season{"a daily step": dailyStep(3)}
	cos, random := dailyStep(3), dailyStep(3)
	for i := range cos.Values {
		cos.Values[i] = float32((110 - 90*math.Cos(2*math.Pi*float64(i)/1440)) * (1 + 0.05*rng.NormFloat64()))
		random.Values[i] = 30
		if rng.Float64() < 0.01 {
			random.Values[i] = 120
		}
	}
	shapes["a diurnal cosine with noise"], shapes["random bursts"] = cos, random
	for name, s := range shapes {
		if p := DetectPeriod(s, level); p != 0 {
			t.Errorf("%s: period %v, want none", name, p)
		}
	}
}

func TestAPeriodForecastsBeforeADayOfHistory(t *testing.T) {
	f := DefaultSeasonal()
	// 16:31: the burst at 16:32 is a minute ahead; the season has 16 h.
	now := t0.Add(16*time.Hour + 31*time.Minute)
	season := everyTwoHours(17).Until(now.Truncate(SeasonRefresh))
	recent := samplesAt(now.Add(-10*time.Minute), now, 15*time.Second, 30)
	if _, err := f.Peak(season, recent, now, 75*time.Second); !errors.Is(err, scaler.ErrNoForecastYet) {
		t.Errorf("no period found: %v, want ErrNoForecastYet (less than a day)", err)
	}
	season.Period = DetectPeriod(season, f.Level)
	fc, err := f.Peak(season, recent, now, 75*time.Second)
	if err != nil || fc.Period != 2*time.Hour || fc.Periods != 7 || fc.Days != 0 || fc.RPS < 100 {
		t.Errorf("a minute before the burst: %+v, %v; want about 120 from 7 periods of 2h", fc, err)
	}
	ans, err := f.Predict(context.Background(), scaler.PredictRequest{HorizonSeconds: 75, Season: &season, History: recent})
	if err != nil || ans.Source != "builtin: 2h-period seasonal peak (7 periods)" {
		t.Errorf("the answer names the period: %+v, %v", ans, err)
	}
	// Ten minutes before, the burst is beyond the window.
	if fc, err := f.Peak(season, recent, now.Add(-10*time.Minute), 75*time.Second); err != nil || fc.RPS > 40 {
		t.Errorf("10 min before the burst: %+v, %v; want about 30", fc, err)
	}
}

func TestWithDaysAndAPeriodTheHigherQuantileDecides(t *testing.T) {
	f := DefaultSeasonal()
	// Three days at about 30 RPS; a job every two hours since this morning.
	// At 14:31 the days say 30 (none had the job), the periods 120.
	s := everyTwoHours(72)
	for i := range s.Values[:48*60] {
		s.Values[i] = min(s.Values[i], 40)
	}
	now := t0.Add(2*scaler.Day + 14*time.Hour + 31*time.Minute)
	season := s.Until(now.Truncate(SeasonRefresh))
	season.Period = DetectPeriod(season, f.Level)
	recent := samplesAt(now.Add(-10*time.Minute), now, 15*time.Second, 30)
	fc, err := f.Peak(season, recent, now, 75*time.Second)
	if err != nil || fc.Days != 2 || fc.Median > 60 || fc.Period != 2*time.Hour || fc.RPS < 100 {
		t.Errorf("14:31 on day 3: %+v, %v; want the days' median below 60 (no job on those days) and 120 from the periods", fc, err)
	}
	ans, _ := f.Predict(context.Background(), scaler.PredictRequest{HorizonSeconds: 75, Season: &season, History: recent})
	if ans.Source != "builtin: 2-day seasonal peak, 2h period" {
		t.Errorf("source %q", ans.Source)
	}
}

// BenchmarkDetectPeriod looks for the period in a full season (seven days
// and the level window of minutes), as every refresh does, and reports it
// as a ratio to building that season from its samples (what the first
// read of it costs anyway), measured in the same run.
func BenchmarkDetectPeriod(b *testing.B) {
	f := DefaultSeasonal()
	s := everyTwoHours(f.SeasonLength() / 60)
	samples := make([]scaler.Sample, len(s.Values))
	for i, v := range s.Values {
		samples[i] = scaler.Sample{T: float64(t0.Add(time.Duration(i+1)*time.Minute).UnixMilli()) / 1000, RPS: float64(v)}
	}
	var build, detect time.Duration
	for b.Loop() {
		start := time.Now()
		season := scaler.NewSeason(s.End, time.Minute, f.SeasonLength(), samples)
		build += time.Since(start)
		start = time.Now()
		if DetectPeriod(season, f.Level) != 2*time.Hour {
			b.Fatal("no period")
		}
		detect += time.Since(start)
	}
	b.ReportMetric(float64(detect.Microseconds())/float64(b.N), "detect-µs")
	b.ReportMetric(float64(detect)/float64(build), "detect/build-season")
}
