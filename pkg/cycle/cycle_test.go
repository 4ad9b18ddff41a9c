package cycle

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fixed answers every query with rps (err: no data), and no history.
type fixed struct {
	rps float64
	err error
}

func (f fixed) Rate(context.Context, time.Time, bool) (float64, error) { return f.rps, f.err }
func (f fixed) History(context.Context, time.Time, time.Duration, int) ([]scaler.Sample, error) {
	return nil, nil
}

type failing struct{ err error }

func (f failing) Predict(context.Context, scaler.PredictRequest) (scaler.Prediction, error) {
	return scaler.Prediction{}, f.err
}

func spec(t *testing.T, ann map[string]string) *scaler.Spec {
	t.Helper()
	a := map[string]string{"autoscale.io/reactive": "true", "autoscale.io/target-rps-per-replica": "10"}
	for k, v := range ann {
		a["autoscale.io/"+k] = v
	}
	s, err := scaler.Parse("f", a, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTheSpikeWindowAndItsFollowUps(t *testing.T) {
	c := New(time.Time{})
	c.Trigger(t0, 30*time.Second)
	if !c.InSpike(t0) || !c.InSpike(t0.Add(29*time.Second)) || c.InSpike(t0.Add(30*time.Second)) {
		t.Error("the window is [t0, t0+30s)")
	}
	at, ok := c.FollowUp(t0.Add(28*time.Second), time.Second)
	if !ok || !at.Equal(t0.Add(29*time.Second)) {
		t.Errorf("follow-up after 28 s: %v %v, want t0+29s", at, ok)
	}
	if _, ok := c.FollowUp(t0.Add(29*time.Second), time.Second); ok {
		t.Error("a follow-up at the window's end would not be a spike evaluation; none is due")
	}
	o := c.Evaluate(context.Background(), t0.Add(5*time.Second), spec(t, map[string]string{"cooldown": "5m"}), 1, Env{Source: fixed{rps: 35}})
	if !o.Spike || o.Decision.Desired != 4 {
		t.Errorf("a spike evaluation inside the cooldown window: spike %v, desired %d", o.Spike, o.Decision.Desired)
	}
}

func TestAFailingPredictorIsReportedOnceThenEveryPeriod(t *testing.T) {
	c := New(time.Time{})
	s := spec(t, map[string]string{"strategy": "max", "predictor": "external"})
	env := Env{Source: fixed{rps: 15}, Predictor: failing{errors.New("connection refused")}}
	var reports []time.Duration
	for at := time.Duration(0); at <= 11*time.Minute; at += 30 * time.Second {
		o := c.Evaluate(context.Background(), t0.Add(at), s, 2, env)
		c.Commit(o, false, t0.Add(at))
		if o.Predictor.Err == nil || o.Decision.Desired != 2 {
			t.Fatalf("at %v: predictor error %v, desired %d (want the reactive 2)", at, o.Predictor.Err, o.Decision.Desired)
		}
		if o.Predictor.Report {
			reports = append(reports, at)
		}
		if o.Predictor.WentDown != (at == 0) {
			t.Errorf("at %v: went down %v", at, o.Predictor.WentDown)
		}
	}
	want := []time.Duration{0, PredictorEventEvery, 2 * PredictorEventEvery}
	if len(reports) != len(want) || reports[0] != want[0] || reports[1] != want[1] || reports[2] != want[2] {
		t.Errorf("reported at %v, want %v", reports, want)
	}
	// Not configured on this controller: reactive, with the reason.
	o := New(time.Time{}).Evaluate(context.Background(), t0, s, 2, Env{Source: fixed{rps: 15}})
	if !errors.Is(o.Predictor.Err, scaler.ErrPredictorNotConfigured) {
		t.Errorf("no predictor configured: %v", o.Predictor.Err)
	}
}

func TestNothingIsKeptUntilCommit(t *testing.T) {
	c := New(time.Time{})
	s := spec(t, nil)
	o := c.Evaluate(context.Background(), t0, s, 1, Env{Source: fixed{rps: 35}})
	if o.Decision.Action != scaler.ScaleUp {
		t.Fatalf("35 RPS at 10 per replica from 1: %+v", o.Decision)
	}
	// Not committed: the next evaluation starts afresh, its smoothed rate
	// its own sample and no cooldown in its way.
	o = c.Evaluate(context.Background(), t0.Add(30*time.Second), s, 1, Env{Source: fixed{rps: 45}})
	if o.Decision.SmoothedRPS != 45 || o.Decision.Action != scaler.ScaleUp {
		t.Errorf("after an outcome not committed: smoothed %v, %v (%s); want 45 and a scale-up", o.Decision.SmoothedRPS, o.Decision.Action, o.Decision.Code)
	}
	c.Commit(o, true, t0.Add(30*time.Second))
	// Committed: the smoothed rate carries on from 45, and the scale-up's
	// cooldown holds the next scale action.
	o = c.Evaluate(context.Background(), t0.Add(time.Minute), s, 5, Env{Source: fixed{rps: 200}})
	if want := 0.7*200 + 0.3*45; math.Abs(o.Decision.SmoothedRPS-want) > 1e-9 || o.Decision.Code != scaler.CodeCooldown {
		t.Errorf("after a commit: smoothed %v (want %v), code %s (want Cooldown)", o.Decision.SmoothedRPS, want, o.Decision.Code)
	}
	c.Commit(o, false, t0.Add(time.Minute))
	// No data never scales down.
	o = c.Evaluate(context.Background(), t0.Add(5*time.Minute), s, 4, Env{Source: fixed{err: errors.New("prometheus down")}})
	if o.Decision.DataOK || o.Decision.Action != scaler.Hold {
		t.Errorf("no data: %+v", o.Decision)
	}
}

// seasonal answers a rate of 30 RPS, a history of days of 1-minute
// buckets with a step to 240 RPS at 12:02 every day (from first on), and
// counts the range queries of each step.
type seasonal struct {
	first time.Time
	reads map[time.Duration]int
	sizes []int // how many buckets each season read asked for
	err   error
}

func (s *seasonal) Rate(context.Context, time.Time, bool) (float64, error) { return 30, nil }
func (s *seasonal) History(_ context.Context, end time.Time, step time.Duration, n int) ([]scaler.Sample, error) {
	s.reads[step]++
	if step == time.Minute {
		s.sizes = append(s.sizes, n)
	}
	if s.err != nil {
		return nil, s.err
	}
	var out []scaler.Sample
	for i := n; i >= 0; i-- {
		at := end.Add(-time.Duration(i) * step)
		if at.Before(s.first) {
			continue
		}
		v := 30.0
		if m := at.Hour()*60 + at.Minute(); m > 12*60+2 && m <= 14*60 {
			v = 240
		}
		out = append(out, scaler.Sample{T: float64(at.Unix()), RPS: v})
	}
	return out, nil
}

// peakPredictor forecasts the season's highest bucket over the horizon
// (a stand-in for predict.Seasonal, which this package cannot import).
type peakPredictor struct{}

func (peakPredictor) Predict(_ context.Context, req scaler.PredictRequest) (scaler.Prediction, error) {
	if req.Season == nil || req.Season.Days() < 1 {
		return scaler.Prediction{}, scaler.ErrNoForecastYet
	}
	now := time.Unix(int64(req.History[len(req.History)-1].T), 0)
	day := now.Add(-scaler.Day)
	return scaler.Prediction{RPS: req.Season.Peak(day, day.Add(time.Duration(req.HorizonSeconds)*time.Second)), HasRPS: true}, nil
}

// seasonSeen is a predictor that keeps the period of the season it was
// handed last and forecasts nothing.
type seasonSeen struct{ period time.Duration }

func (p *seasonSeen) Predict(_ context.Context, req scaler.PredictRequest) (scaler.Prediction, error) {
	if req.Season != nil {
		p.period = req.Season.Period
	}
	return scaler.Prediction{}, scaler.ErrNoForecastYet
}

func TestTheSeasonIsReadAtEachRefreshAndScalesAhead(t *testing.T) {
	sp := spec(t, map[string]string{"strategy": "max", "predictor": "builtin", "predictive-horizon": "75s", "interval": "15s", "max-replicas": "40"})
	season := SeasonSpec{Bucket: time.Minute, Length: 2 * 1440, Refresh: 10 * time.Minute}

	// Less than a day of history: reactive, and the outcome says why.
	young := &seasonal{first: t0.Add(-12 * time.Hour), reads: map[time.Duration]int{}}
	c := New(time.Time{})
	o := c.Evaluate(context.Background(), t0, sp, 3, Env{Source: young, Predictor: peakPredictor{}, Season: season})
	if !errors.Is(o.Predictor.NoForecast, scaler.ErrNoForecastYet) || o.Predictor.SeasonDays != 0 || o.Predictor.Answer != nil {
		t.Errorf("12 h of history: no forecast %v, days %d, prediction %v", o.Predictor.NoForecast, o.Predictor.SeasonDays, o.Predictor.Answer)
	}

	// Two days: at 12:01, the 12:02 step is inside the horizon: up ahead of it.
	old := &seasonal{first: t0.Add(-50 * time.Hour), reads: map[time.Duration]int{}}
	c = New(time.Time{})
	env := Env{Source: old, Predictor: peakPredictor{}, Season: season}
	o = c.Evaluate(context.Background(), t0.Add(time.Minute), sp, 3, env)
	if o.Predictor.SeasonDays != 2 || o.Predictor.NoForecast != nil || o.Decision.Desired < 24 {
		t.Errorf("at 12:01 with two days: days %d, no forecast %v, desired %d (%s); want at least 24 for 240 RPS ahead",
			o.Predictor.SeasonDays, o.Predictor.NoForecast, o.Decision.Desired, o.Decision.Reason)
	}
	c.Commit(o, true, t0.Add(time.Minute))
	// Within the same 10 minutes the season is not read again; after, it is.
	for at := t0.Add(75 * time.Second); at.Before(t0.Add(11 * time.Minute)); at = at.Add(15 * time.Second) {
		c.Commit(c.Evaluate(context.Background(), at, sp, 24, env), false, at)
	}
	if got := old.reads[time.Minute]; got != 2 {
		t.Errorf("season read %d times over 12:01-12:11, want 2 (at 12:01 and after the 12:10 refresh)", got)
	}
	// The refresh reads only the ten buckets since the first read: past
	// days do not change.
	if len(old.sizes) != 2 || old.sizes[0] != season.Length || old.sizes[1] != 10 {
		t.Errorf("season reads of %v buckets, want the whole %d, then the 10 new ones", old.sizes, season.Length)
	}
	if got, want := c.season.End, t0.Add(10*time.Minute); !got.Equal(want) || c.season.Days() != 2 {
		t.Errorf("season after the refresh ends at %v with %d days, want %v and 2", got, c.season.Days(), want)
	}

	// The season's period is looked for once a read, with the read, and
	// travels with the season to the predictor.
	var looks []int
	periodic := season
	periodic.Period = func(s scaler.Season) time.Duration { looks = append(looks, len(s.Values)); return 2 * time.Hour }
	seen := &seasonSeen{}
	c = New(time.Time{})
	env = Env{Source: &seasonal{first: t0.Add(-50 * time.Hour), reads: map[time.Duration]int{}}, Predictor: seen, Season: periodic}
	for at := t0.Add(time.Minute); at.Before(t0.Add(11 * time.Minute)); at = at.Add(15 * time.Second) {
		o = c.Evaluate(context.Background(), at, sp, 3, env)
		c.Commit(o, false, at)
	}
	if len(looks) != 2 || looks[0] != periodic.Length || looks[1] != periodic.Length || seen.period != 2*time.Hour || o.Predictor.SeasonPeriod != 2*time.Hour {
		t.Errorf("period looked for over seasons of %v buckets, the predictor saw %v, the outcome says %v; want twice (the first read, the refresh) over the whole season, and 2h",
			looks, seen.period, o.Predictor.SeasonPeriod)
	}

	// A failed read: reactive, the outcome carries the error, nothing cached.
	broken := &seasonal{first: t0.Add(-50 * time.Hour), reads: map[time.Duration]int{}, err: errors.New("prometheus away")}
	c = New(time.Time{})
	o = c.Evaluate(context.Background(), t0.Add(time.Minute), sp, 3, Env{Source: broken, Predictor: peakPredictor{}, Season: season})
	if o.Predictor.NoForecast == nil || !strings.Contains(o.Predictor.NoForecast.Error(), "prometheus away") || o.Decision.Desired != 3 {
		t.Errorf("season read failed: no forecast %v, desired %d", o.Predictor.NoForecast, o.Decision.Desired)
	}
}

// blockedHistory is a seasonal source whose season reads wait for release.
type blockedHistory struct {
	*seasonal
	release chan struct{}
}

func (b blockedHistory) History(ctx context.Context, end time.Time, step time.Duration, n int) ([]scaler.Sample, error) {
	if step == time.Minute {
		<-b.release
	}
	return b.seasonal.History(ctx, end, step, n)
}

// TestABackgroundSeasonReadDoesNotHoldTheDecision: with Background, the
// evaluation due for the first read decides reactively at once (the read
// waits on a source that does not answer) and says why; an evaluation
// after the read ended forecasts from it.
func TestABackgroundSeasonReadDoesNotHoldTheDecision(t *testing.T) {
	sp := spec(t, map[string]string{"strategy": "max", "predictor": "builtin", "predictive-horizon": "75s", "interval": "15s", "max-replicas": "40"})
	src := blockedHistory{&seasonal{first: t0.Add(-50 * time.Hour), reads: map[time.Duration]int{}}, make(chan struct{})}
	env := Env{Source: src, Predictor: peakPredictor{}, Season: SeasonSpec{Bucket: time.Minute, Length: 2 * 1440, Refresh: 10 * time.Minute, Background: true}}
	c := New(time.Time{})
	o := c.Evaluate(context.Background(), t0.Add(time.Minute), sp, 3, env)
	if !errors.Is(o.Predictor.NoForecast, scaler.ErrNoForecastYet) || !strings.Contains(o.Predictor.NoForecast.Error(), "reading it from Prometheus") || o.Decision.Desired != 3 {
		t.Errorf("while the season is read: no forecast %v, desired %d; want reactive (3) and why", o.Predictor.NoForecast, o.Decision.Desired)
	}
	c.Commit(o, false, t0.Add(time.Minute))
	// Still reading: no second read is started.
	o = c.Evaluate(context.Background(), t0.Add(time.Minute+5*time.Second), sp, 3, env)
	c.Commit(o, false, t0.Add(time.Minute+5*time.Second))
	close(src.release)
	<-c.reading.done
	o = c.Evaluate(context.Background(), t0.Add(time.Minute+10*time.Second), sp, 3, env)
	if o.Predictor.SeasonDays != 2 || o.Predictor.NoForecast != nil || o.Decision.Desired < 24 {
		t.Errorf("after the read: days %d, no forecast %v, desired %d; want the forecast's 24", o.Predictor.SeasonDays, o.Predictor.NoForecast, o.Decision.Desired)
	}
	if got := src.reads[time.Minute]; got != 1 {
		t.Errorf("season read %d times, want 1", got)
	}
}
