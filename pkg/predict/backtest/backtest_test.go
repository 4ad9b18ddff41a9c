package backtest

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

var t0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// replay feeds a rate series sampled every step through forecast, as the
// controller would (the last 60 samples as history, horizon ahead), and
// scores it as the controller's shadow scorer does (mapeAt).
func replay(series []float64, step, horizon time.Duration, forecast func([]scaler.Sample) float64) (mape float64, n int) {
	const window = 60
	start := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	history := make([]scaler.Sample, len(series))
	for i, v := range series {
		history[i] = scaler.Sample{T: float64(start.Add(time.Duration(i) * step).Unix()), RPS: v}
	}
	return mapeAt(series, predict.MinHistory-1, len(series), step, horizon, func(i int) float64 {
		return forecast(history[max(0, i+1-window) : i+1])
	})
}

func lastValue(h []scaler.Sample) float64 { return h[len(h)-1].RPS }

func forecasting(f predict.Forecaster, horizon time.Duration) func([]scaler.Sample) float64 {
	return func(h []scaler.Sample) float64 {
		v, err := f.Forecast(h, horizon)
		if err != nil {
			panic(err)
		}
		return v
	}
}

// diurnal is two days at 30 s: a daily cycle between 20 and 200 RPS with
// 5 % multiplicative noise (fixed seed).
func diurnal() []float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []float64
	for t := 0.0; t < 2*86400; t += 30 {
		base := 110 - 90*math.Cos(2*math.Pi*t/86400)
		out = append(out, base*(1+0.05*rng.NormFloat64()))
	}
	return out
}

// readTrace reads a seconds,rps CSV from testdata/traces (10 s rows) and
// returns what the controller would see with the default query: the mean
// rate over the last minute (rate(...[1m])), every 30 s.
func readTrace(t *testing.T, name string) []float64 {
	t.Helper()
	f, err := os.Open("../../../testdata/traces/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var raw, out []float64
	for i, r := range rows[1:] {
		v, err := strconv.ParseFloat(r[1], 64)
		if err != nil {
			t.Fatalf("%s row %d: %v", name, i+2, err)
		}
		raw = append(raw, v)
	}
	for i := 5; i < len(raw); i += 3 {
		sum := 0.0
		for _, v := range raw[i-5 : i+1] {
			sum += v
		}
		out = append(out, sum/6)
	}
	return out
}

func TestForecasterBeatsTheLastValue(t *testing.T) {
	const step, horizon = 30 * time.Second, 5 * time.Minute
	for _, tc := range []struct {
		name   string
		series []float64
	}{
		{"synthetic diurnal, 5% noise", diurnal()},
		{"NASA 1995 week 1 (x20)", scale(readTrace(t, "nasa-http-1995-week1.csv"), 20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			naive, n := replay(tc.series, step, horizon, lastValue)
			ours, _ := replay(tc.series, step, horizon, forecasting(predict.DefaultForecaster(), horizon))
			t.Logf("MAPE over %d forecasts 5 min ahead: built-in %.2f%%, last value %.2f%% (ratio %.2f)", n, 100*ours, 100*naive, ours/naive)
			if ours >= naive {
				t.Errorf("built-in forecaster MAPE %.4f is not below last value's %.4f", ours, naive)
			}
		})
	}
}

func scale(s []float64, k float64) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = v * k
	}
	return out
}

// BenchmarkForecastQuality reports, per trace, the built-in forecaster's
// MAPE 5 min ahead as a ratio to "the last value" measured in the same run
// (below 1: better), including the Twitter trace, where it loses.
func BenchmarkForecastQuality(b *testing.B) {
	const step, horizon = 30 * time.Second, 5 * time.Minute
	t := &testing.T{}
	traces := []struct {
		name   string
		series []float64
	}{
		{"diurnal", diurnal()},
		{"nasa", scale(readTrace(t, "nasa-http-1995-week1.csv"), 20)},
		{"twitter", readTrace(t, "twitter-stream-week1.csv")},
	}
	for _, tc := range traces {
		b.Run(tc.name, func(b *testing.B) {
			var naive, ours float64
			for b.Loop() {
				naive, _ = replay(tc.series, step, horizon, lastValue)
				ours, _ = replay(tc.series, step, horizon, forecasting(predict.DefaultForecaster(), horizon))
			}
			b.ReportMetric(100*ours, "mape%")
			b.ReportMetric(100*naive, "last-value-mape%")
			b.ReportMetric(ours/naive, "ratio")
		})
	}
}

// TestScoreSeasonalIsOutOfSample: on a purely periodic series both the
// seasonal forecaster and "the same time yesterday" are exact while the
// last value is not, and only the days after train are scored.
func TestScoreSeasonalIsOutOfSample(t *testing.T) {
	const step, horizon = 30 * time.Second, 5 * time.Minute
	day := int(24 * time.Hour / step)
	periodic := make([]float64, 3*day)
	for i := range periodic {
		periodic[i] = 110 - 90*math.Cos(2*math.Pi*float64(i)/float64(day))
	}
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	r := ScoreSeasonal(periodic, start, step, horizon, 2*24*time.Hour)
	if r.DefaultMAPE > 0.01 || r.YesterdayMAPE > 1e-9 || r.LastMAPE <= 0.01 || r.Forecasts != day-int(horizon/step) {
		t.Errorf("periodic: seasonal %v and yesterday %v (want ~0), last value %v (want > 0), %d forecasts (want the third day's %d)",
			r.DefaultMAPE, r.YesterdayMAPE, r.LastMAPE, r.Forecasts, day-int(horizon/step))
	}
}

// TestABacktestScoresEachHorizonAsAFreshOne: the fits and predictions a
// Backtest shares between horizons change no score: a horizon scored after
// another equals it scored alone.
func TestABacktestScoresEachHorizonAsAFreshOne(t *testing.T) {
	const step = 30 * time.Second
	day := int(24 * time.Hour / step)
	rng := rand.New(rand.NewPCG(5, 6))
	series := make([]float64, 3*day)
	for i := range series {
		series[i] = (110 - 90*math.Cos(2*math.Pi*float64(i)/float64(day))) * (1 + 0.1*rng.NormFloat64())
	}
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	bt := New(series, start, step, 2*24*time.Hour)
	bt.Score(5 * time.Minute)
	const h = 30 * time.Minute
	shared, alone := bt.Score(h), ScoreSeasonal(series, start, step, h, 2*24*time.Hour)
	if shared != alone {
		t.Errorf("%v ahead: scored after 5 min %+v, alone %+v", h, shared, alone)
	}
	if alone.CraneForecasts == 0 || alone.HoltWintersMAPE == 0 {
		t.Errorf("%v ahead: Crane made %d forecasts, Holt-Winters scored %v: nothing shared to check", h, alone.CraneForecasts, alone.HoltWintersMAPE)
	}
}

// TestTheSeasonalForecasterBeatsBothBaselinesOutOfSample: trained on the
// first days, scored on the rest, 5 and 30 minutes ahead, on the synthetic
// diurnal trace and both real weeks: lower MAPE than the last value, than
// the same time yesterday, than Holt-Winters (the PHPA's model) with its
// parameters chosen on the training days, and, where Crane's DSP predictor
// forecasts, than Crane on the same points.
func TestTheSeasonalForecasterBeatsBothBaselinesOutOfSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var diurnal3 []float64
	for i := range 3 * 2880 {
		x := float64(i) * 30
		level := 1 + 0.15*math.Sin(2*math.Pi*x/(2.5*86400)) // drifting by up to 15 % a day
		diurnal3 = append(diurnal3, level*(20+180*(1-math.Cos(2*math.Pi*x/86400))/2)*(1+0.05*rng.NormFloat64()))
	}
	for _, tc := range []struct {
		name   string
		series []float64
		train  time.Duration
	}{
		{"synthetic diurnal, 3 days", diurnal3, 2 * scaler.Day},
		{"NASA 1995 week 1", readTrace(t, "nasa-http-1995-week1.csv"), 3 * scaler.Day},
		{"Twitter 2021 week 1", readTrace(t, "twitter-stream-week1.csv"), 3 * scaler.Day},
	} {
		bt := New(tc.series, t0, 30*time.Second, tc.train)
		for _, h := range []time.Duration{5 * time.Minute, 30 * time.Minute} {
			r := bt.Score(h)
			t.Logf("%s, %v ahead: seasonal %.1f%% (default %.1f%%), last value %.1f%%, yesterday %.1f%%, %d forecasts; Holt-Winters %.1f%% (%s), Crane %.1f%% on %d (ours there %.1f%%)",
				tc.name, h, 100*r.ChosenMAPE, 100*r.DefaultMAPE, 100*r.LastMAPE, 100*r.YesterdayMAPE, r.Forecasts,
				100*r.HoltWintersMAPE, r.HoltWinters, 100*r.CraneMAPE, r.CraneForecasts, 100*r.SeasonalOnCraneMAPE)
			if r.Forecasts < 1000 || !(r.DefaultMAPE < r.LastMAPE) || !(r.DefaultMAPE < r.YesterdayMAPE) {
				t.Errorf("%s, %v ahead: the default seasonal forecaster (%.3f) does not beat last value (%.3f) and yesterday (%.3f)",
					tc.name, h, r.DefaultMAPE, r.LastMAPE, r.YesterdayMAPE)
			}
			if !(r.DefaultMAPE < r.HoltWintersMAPE) {
				t.Errorf("%s, %v ahead: the default seasonal forecaster (%.3f) does not beat Holt-Winters chosen on the training days (%.3f)",
					tc.name, h, r.DefaultMAPE, r.HoltWintersMAPE)
			}
			if r.CraneForecasts > 0 && !(r.SeasonalOnCraneMAPE < r.CraneMAPE) {
				t.Errorf("%s, %v ahead: on Crane's %d forecasts the default seasonal forecaster (%.3f) does not beat Crane (%.3f)",
					tc.name, h, r.CraneForecasts, r.SeasonalOnCraneMAPE, r.CraneMAPE)
			}
		}
	}
}

// TestThePeriodIsFoundWhereTheRealTraceHasOne: the Twitter week's bursts
// recur every two hours (scheduled posts), on its first half-day and over
// the whole week alike; NASA's bursts do not recur at a fixed lag.
func TestThePeriodIsFoundWhereTheRealTraceHasOne(t *testing.T) {
	season := func(series []float64, hours int) scaler.Season {
		var samples []scaler.Sample
		for i := 1; i < len(series) && i < hours*120; i += 2 { // the 30 s series at 1 min
			samples = append(samples, scaler.Sample{T: float64(t0.Unix()) + float64(i+1)*30, RPS: series[i]})
		}
		end := time.Unix(int64(samples[len(samples)-1].T), 0)
		return scaler.NewSeason(end, time.Minute, predict.DefaultSeasonal().SeasonLength(), samples)
	}
	level := predict.DefaultSeasonal().Level
	twitter, nasa := readTrace(t, "twitter-stream-week1.csv"), readTrace(t, "nasa-http-1995-week1.csv")
	for _, hours := range []int{12, 7 * 24} {
		if p := predict.DetectPeriod(season(twitter, hours), level); p != 2*time.Hour {
			t.Errorf("Twitter, %d h: period %v, want 2h", hours, p)
		}
		if p := predict.DetectPeriod(season(nasa, hours), level); p != 0 {
			t.Errorf("NASA, %d h: period %v, want none", hours, p)
		}
	}
}

func TestAScoreWritesItsDurationsInSeconds(t *testing.T) {
	b, err := json.Marshal(SeasonalScore{Horizon: 5 * time.Minute, ChosenLevel: 2 * time.Hour, Period: 2 * time.Hour, Forecasts: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"horizonSeconds":300`, `"chosenLevelSeconds":7200`, `"periodSeconds":7200`, `"forecasts":3`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
}
