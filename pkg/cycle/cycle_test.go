package cycle

import (
	"context"
	"errors"
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
		if o.PredictorErr == nil || o.Decision.Desired != 2 {
			t.Fatalf("at %v: predictor error %v, desired %d (want the reactive 2)", at, o.PredictorErr, o.Decision.Desired)
		}
		if o.PredictorReport {
			reports = append(reports, at)
		}
		if o.PredictorWentDown != (at == 0) {
			t.Errorf("at %v: went down %v", at, o.PredictorWentDown)
		}
	}
	want := []time.Duration{0, PredictorEventEvery, 2 * PredictorEventEvery}
	if len(reports) != len(want) || reports[0] != want[0] || reports[1] != want[1] || reports[2] != want[2] {
		t.Errorf("reported at %v, want %v", reports, want)
	}
	// Not configured on this controller: reactive, with the reason.
	o := New(time.Time{}).Evaluate(context.Background(), t0, s, 2, Env{Source: fixed{rps: 15}})
	if !errors.Is(o.PredictorErr, scaler.ErrPredictorNotConfigured) {
		t.Errorf("no predictor configured: %v", o.PredictorErr)
	}
}

func TestNothingIsKeptUntilCommit(t *testing.T) {
	c := New(time.Time{})
	s := spec(t, nil)
	o := c.Evaluate(context.Background(), t0, s, 1, Env{Source: fixed{rps: 35}})
	if o.Decision.Action != scaler.ScaleUp {
		t.Fatalf("35 RPS at 10 per replica from 1: %+v", o.Decision)
	}
	if c.State().HasEMA || !c.State().LastScale.IsZero() {
		t.Errorf("an outcome not committed changed the state: %+v", c.State())
	}
	c.Commit(o, true, t0)
	if !c.State().HasEMA || !c.State().LastScale.Equal(t0) {
		t.Errorf("committed: %+v", c.State())
	}
	// No data never scales down.
	o = c.Evaluate(context.Background(), t0.Add(5*time.Minute), s, 4, Env{Source: fixed{err: errors.New("prometheus down")}})
	if o.Decision.DataOK || o.Decision.Action != scaler.Hold {
		t.Errorf("no data: %+v", o.Decision)
	}
}
