package backtest

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

const perDay = 1440 // 1-minute buckets a day

// minuteSeason is a season of 1-minute buckets holding v(t) for t in
// [0, n).
func minuteSeason(n int, v func(t int) float64) scaler.Season {
	s := scaler.Season{Bucket: time.Minute, End: t0.Add(time.Duration(n) * time.Minute), Values: make([]float32, n)}
	for t := range n {
		s.Values[t] = float32(v(t))
	}
	return s
}

func daily(t int) float64 { return 100 - 60*math.Cos(2*math.Pi*float64(t)/perDay) }

// TestHoltWintersForecastsTheDayItStartedFrom: started from the first day,
// it forecasts a daily pattern 30 buckets ahead exactly (as float32 holds
// it); before a whole day it makes no forecast.
func TestHoltWintersForecastsTheDayItStartedFrom(t *testing.T) {
	hw := holtWinters{alpha: 0.5, beta: 0.1, gamma: 0.5}
	st := hw.run(minuteSeason(3*perDay, daily))
	for at := perDay; at < 3*perDay-30; at += 7 {
		if f, want := st.forecast(at, 30), daily(at+30); math.Abs(f-want) > 1e-4*want { // the season holds float32
			t.Fatalf("daily: forecast at %d for %d = %.4f, want %.4f", at, at+30, f, want)
		}
	}
	if f := st.forecast(perDay-1, 30); !math.IsNaN(f) {
		t.Errorf("a forecast before a whole day was read: %v", f)
	}
}

// TestHoltWintersSkipsAGap: a bucket without data moves the state along
// its trend and season without reading it.
func TestHoltWintersSkipsAGap(t *testing.T) {
	s := minuteSeason(3*perDay, daily)
	s.Values[2*perDay+100] = float32(math.NaN())
	st := holtWinters{alpha: 0.5, beta: 0, gamma: 0.5}.run(s)
	if f := st.forecast(2*perDay+200, 10); math.IsNaN(f) || math.Abs(f-daily(2*perDay+210)) > 1 {
		t.Errorf("forecast after a gap = %v, want about %.1f", f, daily(2*perDay+210))
	}
}

// TestCraneFindsADayAndNothingInNoise: Crane's period search finds a day
// in three noisy days of a daily pattern and no period in white noise.
func TestCraneFindsADayAndNothingInNoise(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float64, 3*perDay)
	noise := make([]float64, 3*perDay)
	for i := range x {
		x[i] = daily(i) * (1 + 0.1*rng.NormFloat64())
		noise[i] = 100 + 10*rng.NormFloat64()
	}
	if p := cranePeriod(x, time.Minute); p != perDay {
		t.Errorf("period of a noisy daily pattern = %d buckets, want %d", p, perDay)
	}
	if p := cranePeriod(noise, time.Minute); p == perDay {
		t.Errorf("white noise found periodic at a day")
	}
}

// TestCraneReplaysACleanDay: every default estimator rebuilds a daily
// pattern with a half-hourly ripple (kept as a strong component) exactly,
// and predict forecasts the next days without its margin; with less than
// two days, or no day found, it forecasts nothing.
func TestCraneReplaysACleanDay(t *testing.T) {
	v := func(t int) float64 { return daily(t) + 10*math.Sin(2*math.Pi*float64(t)/30) }
	x := make([]float64, 4*perDay)
	for i := range x {
		x[i] = v(i)
	}
	for _, e := range craneEstimators {
		next := e.estimate(x, perDay, time.Minute)
		for _, i := range []int{0, 15, 300, 900, 1439} {
			if got := next[i] / (1 + e.margin); math.Abs(got-v(i)) > 1e-6 {
				t.Fatalf("%+v: next day at %d = %.4f, want %.4f", e, i, got, v(i))
			}
		}
	}
	s := minuteSeason(4*perDay, v)
	p := defaultCrane.predict(s, 3*perDay)
	if len(p) != 3*perDay || math.Abs(p[100]-v(100)) > 1e-3 {
		t.Errorf("predict from 3 days: %d buckets, at 100 %.3f (want %d, %.3f)", len(p), p[100], 3*perDay, v(100))
	}
	if p := defaultCrane.predict(s, 2*perDay-1); p != nil {
		t.Errorf("predict from less than two whole days: %d buckets", len(p))
	}
	flat := minuteSeason(3*perDay, func(int) float64 { return 50 })
	flat.Values[perDay] = 80 // one blip: no day in it
	if p := defaultCrane.predict(flat, 3*perDay); p != nil {
		t.Errorf("predict without a daily period: %d buckets", len(p))
	}
}

// TestCraneErrorAmplifiesUnderForecasts: Crane chooses its estimator by an
// error that weighs 10 % under as 47 %, 10 % over as 10 %, and falls back
// to the absolute error where an actual value is about 0.
func TestCraneErrorAmplifiesUnderForecasts(t *testing.T) {
	if got := craneError([]float64{100}, []float64{90}); math.Abs(got-math.Log(1/0.9)/math.Log(1.25)) > 1e-12 {
		t.Errorf("10 %% under: %v", got)
	}
	if got := craneError([]float64{100}, []float64{110}); math.Abs(got-0.1) > 1e-12 {
		t.Errorf("10 %% over: %v", got)
	}
	if got := craneError([]float64{0, 100}, []float64{2, 96}); got != 3 {
		t.Errorf("with a zero actual: %v, want the mean absolute error 3", got)
	}
}

func TestFilledDrawsALineAcrossGaps(t *testing.T) {
	nan := float32(math.NaN())
	got := filled([]float32{nan, 2, nan, nan, 8, nan})
	want := []float64{2, 2, 4, 6, 8, 8}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Fatalf("filled = %v, want %v", got, want)
		}
	}
}
