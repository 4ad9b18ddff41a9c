package predict

import (
	"math"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// OutOfSample is a forecaster scored out of sample on one series: its
// parameters chosen on the first half (grid, by MAPE), every MAPE measured
// on the second half, beside two baselines that need no fitting.
type OutOfSample struct {
	Chosen       Forecaster `json:"chosen"`
	TrainMAPE    float64    `json:"trainMAPE"`    // the chosen parameters on the first half
	ChosenMAPE   float64    `json:"chosenMAPE"`   // the chosen parameters on the second half
	DefaultMAPE  float64    `json:"defaultMAPE"`  // DefaultForecaster() on the second half
	LastMAPE     float64    `json:"lastMAPE"`     // the last value
	SeasonalMAPE float64    `json:"seasonalMAPE"` // the value at the same time the day before
	Forecasts    int        `json:"forecasts"`    // scored on the second half
}

// grid is the parameter grid Score chooses from.
var grid = func() []Forecaster {
	var out []Forecaster
	for _, a := range []float64{0.1, 0.2, 0.3, 0.5, 0.7, 0.9} {
		for _, b := range []float64{0.01, 0.05, 0.1, 0.2} {
			for _, phi := range []float64{0.8, 0.9, 0.98} {
				out = append(out, Forecaster{Alpha: a, Beta: b, Phi: phi})
			}
		}
	}
	return out
}()

// HistoryWindow is how many samples the controller gives a predictor.
const HistoryWindow = 60

// Score chooses the forecaster's parameters on the first half of series
// (sampled every step) and scores them, the default ones and both
// baselines horizon ahead on the second half. The seasonal baseline needs
// a day of history, so the second half must start a day in.
func Score(series []float64, step, horizon time.Duration) OutOfSample {
	half := len(series) / 2
	var r OutOfSample
	r.TrainMAPE = math.Inf(1)
	for _, f := range grid {
		if m, _ := mape(series, 0, half, step, horizon, f.point); m < r.TrainMAPE {
			r.TrainMAPE, r.Chosen = m, f
		}
	}
	r.ChosenMAPE, r.Forecasts = mape(series, half, len(series), step, horizon, r.Chosen.point)
	r.DefaultMAPE, _ = mape(series, half, len(series), step, horizon, DefaultForecaster().point)
	r.LastMAPE, _ = mape(series, half, len(series), step, horizon, func(h []scaler.Sample, _ time.Duration) float64 { return h[len(h)-1].RPS })
	day := int(24 * time.Hour / step)
	r.SeasonalMAPE, _ = mapeAt(series, half, len(series), step, horizon, func(i int) float64 {
		if j := i + int(horizon/step) - day; j >= 0 {
			return series[j]
		}
		return math.NaN()
	})
	return r
}

func (f Forecaster) point(h []scaler.Sample, horizon time.Duration) float64 {
	v, err := f.Forecast(h, horizon)
	if err != nil {
		return math.NaN()
	}
	return v
}

// mape scores predict over series[from:to]: at each i, a forecast from the
// last HistoryWindow samples up to i, against series[i+horizon/step], as
// scaler.Shadow scores it (errors over max(actual, MAPEFloorRPS)).
func mape(series []float64, from, to int, step, horizon time.Duration, predict func([]scaler.Sample, time.Duration) float64) (float64, int) {
	history := make([]scaler.Sample, 0, HistoryWindow)
	return mapeAt(series, from, to, step, horizon, func(i int) float64 {
		history = history[:0]
		for j := max(0, i-HistoryWindow+1); j <= i; j++ {
			history = append(history, scaler.Sample{T: float64(j) * step.Seconds(), RPS: series[j]})
		}
		if len(history) < MinHistory {
			return math.NaN()
		}
		return predict(history, horizon)
	})
}

func mapeAt(series []float64, from, to int, step, horizon time.Duration, predict func(i int) float64) (float64, int) {
	ahead := int(horizon / step)
	total, n := 0.0, 0
	for i := from; i+ahead < to; i++ {
		p := predict(i)
		if math.IsNaN(p) {
			continue
		}
		actual := series[i+ahead]
		total += math.Abs(p-actual) / math.Max(actual, scaler.MAPEFloorRPS)
		n++
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return total / float64(n), n
}
