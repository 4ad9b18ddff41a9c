// Package backtest scores the forecasters out of sample on recorded rate
// series, beside baselines that need no fitting: for make bench-quality and
// the forecasters' quality tests. The controller does not import it.
package backtest

import (
	"encoding/json"
	"math"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// mapeAt scores predict(i), a forecast made at sample i, against
// series[i+horizon/step] for i in [from, to), as scaler.Shadow scores it
// (scaler.PercentError); NaN forecasts are skipped.
func mapeAt(series []float64, from, to int, step, horizon time.Duration, predict func(i int) float64) (float64, int) {
	ahead := int(horizon / step)
	total, n := 0.0, 0
	for i := from; i+ahead < to; i++ {
		p := predict(i)
		if math.IsNaN(p) {
			continue
		}
		total += scaler.PercentError(p, series[i+ahead])
		n++
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return total / float64(n), n
}

// SeasonalScore is the seasonal forecaster scored out of sample on one
// series at one horizon: its level window chosen on the training days (the
// first days of the series; the first day only serves as history), every
// MAPE measured on the days after, beside two baselines that need no
// fitting: the last value and the same time the day before.
type SeasonalScore struct {
	Horizon       time.Duration `json:"horizonSeconds"`
	ChosenLevel   time.Duration `json:"chosenLevelSeconds"`
	TrainMAPE     float64       `json:"trainMAPE"`
	ChosenMAPE    float64       `json:"chosenMAPE"`  // the chosen level window on the test days
	DefaultMAPE   float64       `json:"defaultMAPE"` // predict.DefaultSeasonal() on the test days
	LastMAPE      float64       `json:"lastMAPE"`
	YesterdayMAPE float64       `json:"yesterdayMAPE"`
	Forecasts     int           `json:"forecasts"` // scored on the test days
	// Period is the period within the day predict.DetectPeriod finds in
	// the training days (0: none). It raises the decision's forecast, not
	// the median scored here.
	Period time.Duration `json:"periodSeconds"`
	// The peers' forecasting models on the same season and test days:
	// Holt-Winters as the PHPA runs it, its parameters chosen on the
	// training days, and Crane's DSP predictor at its defaults, which
	// forecasts only where it finds the series periodic at a day
	// (CraneForecasts of Forecasts; its MAPE is 0 when it made none).
	HoltWintersMAPE float64 `json:"holtWintersMAPE"`
	HoltWinters     string  `json:"holtWinters"` // the parameters chosen
	CraneMAPE       float64 `json:"craneMAPE"`
	CraneForecasts  int     `json:"craneForecasts"`
	// SeasonalOnCraneMAPE is the built-in forecaster's (default) MAPE on
	// the points Crane forecast, for a like-for-like reading.
	SeasonalOnCraneMAPE float64 `json:"seasonalOnCraneMAPE"`
}

// MarshalJSON writes the durations in seconds, as their names say (a
// time.Duration alone would write nanoseconds).
func (r SeasonalScore) MarshalJSON() ([]byte, error) {
	type plain SeasonalScore
	return json.Marshal(struct {
		plain
		Horizon     float64 `json:"horizonSeconds"`
		ChosenLevel float64 `json:"chosenLevelSeconds"`
		Period      float64 `json:"periodSeconds"`
	}{plain(r), r.Horizon.Seconds(), r.ChosenLevel.Seconds(), r.Period.Seconds()})
}

// levels is the grid ScoreSeasonal chooses the level window from.
var levels = []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour}

// ScoreSeasonal scores the seasonal forecaster on series (what the
// controller reads, sampled every step from the epoch start) horizon
// ahead: trained on [1 day, train), tested on [train, end). The season is
// the series' own bucket means, as Prometheus' avg_over_time over a
// bucket-long subquery returns them; a forecast reads only buckets that
// ended before it is made. To score one series at several horizons, use
// New once and Score for each.
func ScoreSeasonal(series []float64, start time.Time, step, horizon, train time.Duration) SeasonalScore {
	return New(series, start, step, train).Score(horizon)
}

// Backtest is one series prepared for scoring at any horizon: its season,
// and the peers' fits and predictions that do not depend on the horizon
// (Holt-Winters run over the season with each parameter set, Crane's
// predictor at each of its refreshes), made once and reused by every
// Score. Not safe for concurrent use.
type Backtest struct {
	series      []float64
	start       time.Time
	step, train time.Duration
	season      scaler.Season
	hw          []hwState         // hwGrid's runs, in its order; nil until the first Score
	crane       map[int][]float64 // Crane's predictions by their first bucket
}

// New prepares series (sampled every step from start) for Score, trained
// on [1 day, train).
func New(series []float64, start time.Time, step, train time.Duration) *Backtest {
	return &Backtest{series: series, start: start, step: step, train: train,
		season: seriesSeason(series, start, step, predict.DefaultSeasonal().Bucket), crane: map[int][]float64{}}
}

// Score scores the seasonal forecaster, the baselines and the peers'
// models horizon ahead, as ScoreSeasonal says.
func (b *Backtest) Score(horizon time.Duration) SeasonalScore {
	series, start, step, season := b.series, b.start, b.step, b.season
	def := predict.DefaultSeasonal()
	at := func(i int) time.Time { return start.Add(time.Duration(i) * step) }
	// As in the controller: the season as of its last refresh (every
	// predict.SeasonRefresh), the cycle's recent samples since.
	recent := func(i int) []scaler.Sample {
		var out []scaler.Sample
		for j := max(0, i-int(predict.SeasonRefresh/step)); j <= i; j++ {
			out = append(out, scaler.Sample{T: float64(at(j).UnixMilli()) / 1000, RPS: series[j]})
		}
		return out
	}
	seasonal := func(f predict.Seasonal) func(i int) float64 {
		return func(i int) float64 {
			now := at(i)
			fc, err := f.At(season.Until(now.Truncate(predict.SeasonRefresh)), recent(i), now, horizon)
			if err != nil {
				return math.NaN()
			}
			return fc.Median // a point forecast; the band is for the decision
		}
	}
	day := int(scaler.Day / step)
	cut := min(len(series), int(b.train/step))
	r := SeasonalScore{Horizon: horizon, TrainMAPE: math.Inf(1), Period: predict.DetectPeriod(season.Until(at(cut)), def.Level)}
	for _, l := range levels {
		f := def
		f.Level = l
		if m, _ := mapeAt(series, day, cut, step, horizon, seasonal(f)); m < r.TrainMAPE {
			r.TrainMAPE, r.ChosenLevel = m, l
		}
	}
	chosen := def
	chosen.Level = r.ChosenLevel
	r.ChosenMAPE, r.Forecasts = mapeAt(series, cut, len(series), step, horizon, seasonal(chosen))
	r.DefaultMAPE, _ = mapeAt(series, cut, len(series), step, horizon, seasonal(def))
	r.LastMAPE, _ = mapeAt(series, cut, len(series), step, horizon, func(i int) float64 { return series[i] })
	b.scorePeers(&r, horizon, cut, seasonal(def))
	r.YesterdayMAPE, _ = mapeAt(series, cut, len(series), step, horizon, func(i int) float64 {
		if j := i + int(horizon/step) - day; j >= 0 {
			return series[j]
		}
		return math.NaN()
	})
	return r
}

// seriesSeason is the season of series (sampled every step from start):
// the mean of the samples in each bucket, the buckets ending on multiples
// of bucket after start.
func seriesSeason(series []float64, start time.Time, step, bucket time.Duration) scaler.Season {
	per := int(bucket / step)
	n := len(series) / per
	s := scaler.Season{End: start.Add(time.Duration(n) * bucket), Bucket: bucket, Values: make([]float32, n)}
	for b := range n {
		sum, k := 0.0, 0
		// Bucket b covers (start+b*bucket, start+(b+1)*bucket]: samples b*per+1 .. (b+1)*per.
		for j := b*per + 1; j <= (b+1)*per && j < len(series); j++ {
			if scaler.Usable(series[j]) {
				sum += series[j]
				k++
			}
		}
		s.Values[b] = float32(math.NaN())
		if k > 0 {
			s.Values[b] = float32(sum / float64(k))
		}
	}
	return s
}
