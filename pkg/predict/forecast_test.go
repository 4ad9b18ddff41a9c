package predict

import (
	"context"
	"encoding/csv"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// replay feeds a rate series sampled every step through predict, as the
// controller would (the last 60 samples as history, horizon ahead), and
// scores it with the controller's own shadow scorer.
func replay(series []float64, step, horizon time.Duration, predict func([]scaler.Sample) float64) (mape float64, n int) {
	const window = 60
	var shadow scaler.Shadow
	start := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	var history []scaler.Sample
	total, count := 0.0, 0
	for i, v := range series {
		now := start.Add(time.Duration(i) * step)
		shadow.Measured(now, v, step)
		history = append(history, scaler.Sample{T: float64(now.Unix()), RPS: v})
		if len(history) > window {
			history = history[1:]
		}
		if len(history) >= MinHistory {
			p := predict(history)
			due := now.Add(horizon)
			if j := i + int(horizon/step); j < len(series) {
				total += math.Abs(p-series[j]) / math.Max(series[j], scaler.MAPEFloorRPS)
				count++
			}
			shadow.Predicted(due, p)
		}
	}
	return total / float64(count), count
}

func lastValue(h []scaler.Sample) float64 { return h[len(h)-1].RPS }

func forecast(f Forecaster, horizon time.Duration) func([]scaler.Sample) float64 {
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
	f, err := os.Open("../../testdata/traces/" + name)
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
			ours, _ := replay(tc.series, step, horizon, forecast(DefaultForecaster(), horizon))
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

func TestForecastFollowsATrendAndNeverGoesNegative(t *testing.T) {
	var ramp, fall []scaler.Sample
	for i := 0; i < 20; i++ {
		ramp = append(ramp, scaler.Sample{T: float64(30 * i), RPS: float64(100 + 10*i)})
		fall = append(fall, scaler.Sample{T: float64(30 * i), RPS: math.Max(0, float64(100-20*i))})
	}
	up, err := DefaultForecaster().Forecast(ramp, 5*time.Minute)
	ema := ramp[0].RPS
	for _, s := range ramp[1:] {
		ema = DefaultForecaster().Alpha*s.RPS + (1-DefaultForecaster().Alpha)*ema
	}
	if err != nil || up <= ema+10 {
		t.Errorf("ramp ending at 290 RPS, +10 per step: forecast %v (%v), want the trend to lift it above the smoothed level %v", up, err, ema)
	}
	if down, _ := DefaultForecaster().Forecast(fall, 5*time.Minute); down < 0 {
		t.Errorf("forecast %v below zero", down)
	}
	if _, err := DefaultForecaster().Forecast(ramp[:2], time.Minute); err == nil {
		t.Error("two samples forecast without an error")
	}
	if _, err := DefaultForecaster().Predict(context.Background(), scaler.PredictRequest{HorizonSeconds: 300, History: []scaler.Sample{{T: 5, RPS: 1}, {T: 5, RPS: 2}, {T: 5, RPS: 3}}}); err == nil {
		t.Error("a history whose timestamps do not increase was accepted")
	}
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
				ours, _ = replay(tc.series, step, horizon, forecast(DefaultForecaster(), horizon))
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
