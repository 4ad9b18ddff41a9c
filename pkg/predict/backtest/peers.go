package backtest

import (
	"cmp"
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"slices"
	"time"

	"gonum.org/v1/gonum/dsp/fourier"
	"gonum.org/v1/gonum/stat"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// The forecasting models of the predictive autoscalers the built-in
// forecaster is measured against, as their sources describe them, run on
// the same season (1-minute bucket means of what the controller reads) and
// scored by the same MAPE on the same test days.

// holtWinters is the PHPA's model: additive Holt-Winters (level, trend and
// a seasonal index per slot), here with a daily season of the season's
// buckets. The PHPA takes alpha, beta and gamma from its user; here they
// are chosen on the training days from hwGrid, a larger search than the
// built-in forecaster's (which favours Holt-Winters).
type holtWinters struct{ alpha, beta, gamma float64 }

// hwGrid is the search ScoreSeasonal gives Holt-Winters: 4 x 3 x 4
// parameter sets, against the built-in forecaster's 4 level windows.
var hwGrid = func() []holtWinters {
	var g []holtWinters
	for _, a := range []float64{0.05, 0.2, 0.5, 0.9} {
		for _, b := range []float64{0, 0.01, 0.1} {
			for _, c := range []float64{0.05, 0.2, 0.5, 0.9} {
				g = append(g, holtWinters{a, b, c})
			}
		}
	}
	return g
}()

// hwState is Holt-Winters run over a season: after bucket t its level,
// trend and the seasonal index it holds for slot t.
type hwState struct {
	level, trend, seasonal []float64
	m                      int // buckets a day
}

// run fits the model to the season's buckets in order. The first day
// initializes it (level its mean, no trend, each slot's index its
// difference from the mean, as a classical decomposition of one season
// does); statsmodels, which the PHPA calls, wants two seasons for that, so
// this answers a day sooner than the PHPA would. A trend within the first
// day is read as season and stays there (the trend then learns little; the
// betas chosen on the real weeks are 0 and 0.01 anyway). A bucket without
// data (NaN) updates nothing.
func (hw holtWinters) run(s scaler.Season) hwState {
	m := int(scaler.Day / s.Bucket)
	n := len(s.Values)
	st := hwState{level: make([]float64, n), trend: make([]float64, n), seasonal: make([]float64, n), m: m}
	if n < m {
		return st
	}
	mean, k := 0.0, 0
	for _, v := range s.Values[:m] {
		if !math.IsNaN(float64(v)) {
			mean += float64(v)
			k++
		}
	}
	if k > 0 {
		mean /= float64(k)
	}
	for t := range m {
		st.level[t] = mean
		if v := float64(s.Values[t]); !math.IsNaN(v) {
			st.seasonal[t] = v - mean
		}
	}
	for t := m; t < n; t++ {
		l, tr, sp := st.level[t-1], st.trend[t-1], st.seasonal[t-m]
		y := float64(s.Values[t])
		if math.IsNaN(y) {
			st.level[t], st.trend[t], st.seasonal[t] = l+tr, tr, sp
			continue
		}
		st.level[t] = hw.alpha*(y-sp) + (1-hw.alpha)*(l+tr)
		st.trend[t] = hw.beta*(st.level[t]-l) + (1-hw.beta)*tr
		st.seasonal[t] = hw.gamma*(y-st.level[t]) + (1-hw.gamma)*sp
	}
	return st
}

// forecast is the model's forecast, made at the end of bucket t, for
// bucket t+h (1 <= h <= a day); NaN before the first day has been read.
func (st hwState) forecast(t, h int) float64 {
	if t < st.m || h < 1 || h > st.m || t >= len(st.level) {
		return math.NaN()
	}
	return max(0, st.level[t]+float64(h)*st.trend[t]+st.seasonal[t+h-st.m])
}

// crane is Crane's DSP predictor (its EHPA's predictive half) at its
// defaults: every 12 hours it reads up to 15 days of 1-minute history,
// keeps the whole days of it, and, if its period search finds a day (a
// week would need two weeks of history), predicts the next day with the
// best of its eight FFT estimators on the last day of that history.
type crane struct {
	every   time.Duration // how often it predicts: 12 h (its model-update-interval)
	history time.Duration // 15 days
}

var defaultCrane = crane{every: 12 * time.Hour, history: 15 * scaler.Day}

// craneEstimator is one of the FFT estimators Crane tries by default: the
// spectrum keeps every component slower than an hour and the strongest
// others, and the rebuilt last cycle, raised by a margin, is the next.
type craneEstimator struct {
	minItems  int     // the least number of strongest components kept
	maxItems  int     // the most (its default, 100)
	lowAmp    float64 // components weaker than this are dropped (amplitude = |X| / N)
	margin    float64 // the forecast is raised by this share
	highFreqs float64 // components at or below this frequency (Hz) are always kept: 1/hour
}

// craneEstimators are Crane's default estimators: 3 or 50 components at
// least, weaker than 1.0 or 0.05 dropped, margins of 1, 10, 15 and 20 %.
var craneEstimators = func() []craneEstimator {
	var es []craneEstimator
	for _, k := range []struct {
		items int
		amp   float64
	}{{3, 1.0}, {50, 0.05}} {
		for _, margin := range []float64{0.01, 0.10, 0.15, 0.20} {
			es = append(es, craneEstimator{minItems: k.items, maxItems: 100, lowAmp: k.amp, margin: margin, highFreqs: 1.0 / 3600})
		}
	}
	return es
}()

// estimate is the next cycle of x (whole cycles of perCycle samples, every
// bucket seconds apart), as the estimator predicts it.
func (e craneEstimator) estimate(x []float64, perCycle int, bucket time.Duration) []float64 {
	n := len(x)
	fft := fourier.NewCmplxFFT(n)
	seq := make([]complex128, n)
	for i, v := range x {
		seq[i] = complex(v, 0)
	}
	coeff := fft.Coefficients(nil, seq)
	amp := make([]float64, n)
	for k, c := range coeff {
		amp[k] = cmplx.Abs(c) / float64(n)
	}
	sorted := slices.Clone(amp[1 : n/2])
	slices.SortFunc(sorted, func(a, b float64) int { return cmp.Compare(b, a) })
	floor := sorted[len(sorted)-1]
	if len(sorted) >= e.maxItems {
		floor = sorted[e.maxItems-1]
	}
	floor = max(floor, e.lowAmp)
	if len(sorted) >= e.minItems && sorted[e.minItems-1] < floor {
		floor = sorted[e.minItems-1]
	}
	rate := 1 / bucket.Seconds()
	for k := range coeff {
		// As Crane does, the frequency of index k is k x rate / N over the
		// whole spectrum, so the mirror half of a slow component counts as
		// fast: it is kept only if it is strong.
		if amp[k] < floor && float64(k)*rate/float64(n) > e.highFreqs {
			coeff[k] = 0
		}
	}
	out := fft.Sequence(nil, coeff)
	next := make([]float64, perCycle)
	for i := range next {
		v := real(out[n-perCycle+i]) / float64(n)
		if v <= 0 {
			v = 0.01
		}
		next[i] = v * (1 + e.margin)
	}
	return next
}

// cranePeriod is Crane's period search on x (every bucket seconds): the
// candidates are the frequencies stronger than the 99th of 100 strongest
// peaks of shuffled copies of x (a permutation test), and the period is the
// candidate whose autocorrelation is the highest peak (rising before it,
// falling after it, over half the period or at most 4 hours); 0 if none.
// Crane shuffles with a clock seed; here the seed is fixed, so that the
// report repeats.
func cranePeriod(x []float64, bucket time.Duration) int {
	n := len(x)
	fft := fourier.NewFFT(n)
	shuffled := slices.Clone(x)
	rng := rand.New(rand.NewPCG(1, 2))
	peaks := make([]float64, 0, 100)
	var coeff []complex128
	for range 100 {
		rng.Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		coeff = fft.Coefficients(coeff, shuffled)
		peak := 0.0
		for k := 1; k < n/2; k++ {
			peak = max(peak, cmplx.Abs(coeff[k]))
		}
		peaks = append(peaks, peak)
	}
	slices.Sort(peaks)
	threshold := peaks[98]
	coeff = fft.Coefficients(coeff, x)
	var hints []int
	for k := 2; k < n/2; k++ {
		if cmplx.Abs(coeff[k]) > threshold && (len(hints) == 0 || hints[len(hints)-1] > n/k) {
			hints = append(hints, n/k)
		}
	}
	acf := circularACF(x)
	most := int((4 * time.Hour) / bucket)
	best, bestCor := 0, 0.0
	for _, h := range hints {
		if peak(acf, h, min(most, h/2)) && acf[h] > bestCor {
			best, bestCor = h, acf[h]
		}
	}
	return best
}

// circularACF is the circular autocorrelation of x at every lag (1 at lag
// 0), through the power spectrum, as Crane computes it.
func circularACF(x []float64) []float64 {
	n := len(x)
	mean := stat.Mean(x, nil)
	sd := stat.PopStdDev(x, nil)
	seq := make([]complex128, n)
	for i, v := range x {
		seq[i] = complex((v-mean)/sd, 0)
	}
	fft := fourier.NewCmplxFFT(n)
	coeff := fft.Coefficients(nil, seq)
	for k, c := range coeff {
		coeff[k] = complex(real(c)*real(c)+imag(c)*imag(c), 0)
	}
	out := fft.Sequence(nil, coeff)
	acf := make([]float64, n)
	for i, c := range out {
		acf[i] = real(c) / float64(n) / float64(n)
	}
	return acf
}

// peak reports whether x rises into i over the k points before it and
// falls over the k after it (the slopes of least-squares lines).
func peak(x []float64, i, k int) bool {
	if i < 1 || i > len(x)-1 {
		return false
	}
	slope := func(from, to int) float64 {
		xs := make([]float64, 0, to-from+1)
		for j := from; j <= to; j++ {
			xs = append(xs, float64(j))
		}
		_, b := stat.LinearRegression(xs, x[from:to+1], nil, false)
		return b
	}
	return slope(max(0, i-k), i) > 0 && slope(i, min(len(x)-1, i+k)) < 0
}

// craneError is the error Crane chooses its estimator by: the mean
// relative error with an under-forecast amplified (-ln(1-e)/ln(1.25)), or
// the mean absolute error where some actual value is about zero.
func craneError(actual, predicted []float64) float64 {
	total, abs := 0.0, 0.0
	zero := false
	for i, a := range actual {
		abs += math.Abs(a - predicted[i])
		switch {
		case a < 1e-3:
			zero = true
		case predicted[i] < a:
			total += -math.Log(1-(a-predicted[i])/a) / math.Log(1.25)
		default:
			total += (predicted[i] - a) / a
		}
	}
	if zero {
		return abs / float64(len(actual))
	}
	return total / float64(len(actual))
}

// predict is Crane's forecast made at the end of the season's bucket
// index end (exclusive), from the whole days before it (up to c.history):
// the next days' point forecast, its margin taken off (the margin is a
// safety uplift, as the built-in forecaster's band, and this table scores
// point forecasts); nil if it makes none (less than two days of history,
// or no period of a day found).
func (c crane) predict(s scaler.Season, end int) []float64 {
	per := int(scaler.Day / s.Bucket)
	days := min(end/per, int(c.history/scaler.Day))
	if days < 2 {
		return nil
	}
	x := filled(s.Values[end-days*per : end])
	if cranePeriod(x, s.Bucket) != per {
		return nil
	}
	// Crane's choice: each estimator predicts the last day from the days
	// before it, and the one with the least craneError predicts the next
	// day from all of them, repeated for as many days as were read.
	last := x[len(x)-per:]
	best, bestErr := craneEstimators[0], math.Inf(1)
	for _, e := range craneEstimators {
		if err := craneError(last, e.estimate(x[:len(x)-per], per, s.Bucket)); err < bestErr {
			best, bestErr = e, err
		}
	}
	next := best.estimate(x, per, s.Bucket)
	out := make([]float64, 0, days*per)
	for range days {
		for _, v := range next {
			out = append(out, v/(1+best.margin))
		}
	}
	return out
}

// filled is the season's values with each gap filled on the line between
// its neighbours, as Crane fills missing samples (leading and trailing
// gaps take the nearest value; no data at all gives zeros).
func filled(vs []float32) []float64 {
	x := make([]float64, len(vs))
	prev := -1
	for i, v := range vs {
		x[i] = float64(v)
		if math.IsNaN(x[i]) {
			continue
		}
		if prev < i-1 {
			for j := prev + 1; j < i; j++ {
				if prev < 0 {
					x[j] = x[i]
				} else {
					x[j] = x[prev] + (x[i]-x[prev])*float64(j-prev)/float64(i-prev)
				}
			}
		}
		prev = i
	}
	for j := prev + 1; j < len(x); j++ {
		if prev < 0 {
			x[j] = 0
		} else {
			x[j] = x[prev]
		}
	}
	return x
}

// scorePeers fills r's peer columns, tested on [cut, end), Holt-Winters'
// parameters chosen on [1 day, cut); ours is the built-in forecaster's
// point forecast. The Holt-Winters runs and Crane's predictions are b's,
// shared by every horizon.
func (b *Backtest) scorePeers(r *SeasonalScore, horizon time.Duration, cut int, ours func(i int) float64) {
	series, season, step := b.series, b.season, b.step
	if b.hw == nil {
		for _, p := range hwGrid {
			b.hw = append(b.hw, p.run(season))
		}
	}
	per := int(season.Bucket / step)
	day := int(scaler.Day / step)
	ahead := int(horizon / step)
	// bucketsAhead: at sample i the last bucket complete is i/per-1 (bucket
	// b holds samples b*per+1 .. (b+1)*per); the one forecast holds i+ahead.
	bucketsAhead := func(i int) (last, target int) { return i/per - 1, (i + ahead - 1) / per }
	hw := func(st hwState) func(i int) float64 {
		return func(i int) float64 {
			last, target := bucketsAhead(i)
			return st.forecast(last, target-last)
		}
	}
	trainBest := math.Inf(1)
	chosen := 0 // kept if the training days score nothing
	for k, st := range b.hw {
		if m, _ := mapeAt(series, day, cut, step, horizon, hw(st)); m < trainBest {
			trainBest, chosen = m, k
		}
	}
	p := hwGrid[chosen]
	r.HoltWinters = fmt.Sprintf("alpha %g, beta %g, gamma %g", p.alpha, p.beta, p.gamma)
	r.HoltWintersMAPE, _ = mapeAt(series, cut, len(series), step, horizon, hw(b.hw[chosen]))

	every := int(defaultCrane.every / step)
	craneAt := func(i int) float64 {
		from := (i / every) * every / per // the last prediction's first bucket
		pred, ok := b.crane[from]
		if !ok {
			pred = defaultCrane.predict(season, from)
			b.crane[from] = pred
		}
		_, target := bucketsAhead(i)
		if k := target - from; pred != nil && k >= 0 && k < len(pred) {
			return pred[k]
		}
		return math.NaN()
	}
	r.CraneMAPE, r.CraneForecasts = mapeAt(series, cut, len(series), step, horizon, craneAt)
	if r.CraneForecasts == 0 {
		r.CraneMAPE = 0
	}
	r.SeasonalOnCraneMAPE, _ = mapeAt(series, cut, len(series), step, horizon, func(i int) float64 {
		if math.IsNaN(craneAt(i)) {
			return math.NaN()
		}
		return ours(i)
	})
	if r.CraneForecasts == 0 {
		r.SeasonalOnCraneMAPE = 0
	}
}
