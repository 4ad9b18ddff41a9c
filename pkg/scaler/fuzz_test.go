package scaler

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// slowDecide bounds one Decide call. A decision walks a table of at most
// MaxReplicasLimit rows; a pathological input (the old walk from
// spec.replicas down to 1) took seconds, a sound one takes microseconds.
const slowDecide = time.Second

// FuzzParseDecide feeds the parser any annotations and then drives Decide
// with any current replica count, any rate and any prediction, over a few
// evaluations. Whatever it is given: Parse fails with ErrInvalidSpec or
// yields a spec whose decisions stay within [min, max], never scale down
// without data or on a spike, and return in bounded time.
//
// annotations holds "key=value" lines; keys are taken without the
// autoscale.io/ prefix. Each byte of steps shapes one evaluation.
func FuzzParseDecide(f *testing.F) {
	seeds := []string{
		"min-replicas=1\nmax-replicas=10\nthresholds=" + SeedTable,
		"profile=recommended\ntarget-rps-per-replica=10\nmax-replicas=10000",
		"target-rps-per-replica=0.001\nmax-replicas=10000\nscale-down-ratio=0.99",
		"thresholds=1:1e308/0,2:inf/1e307\nmax-replicas=2",
		"strategy=weighted\npredictive-weight=0.5\ntarget-rps-per-replica=5\nmax-replicas=50",
		"strategy=override\noverride-threshold=0.1\npredictive-horizon=5m",
		"strategy=schedule\npredictive-hours=22:00-06:00\ntimezone=Europe/Berlin",
		"cooldown=0s\nema-alpha=1\ninterval=1s\nscale-down-stabilization=10m\nlead-time=1h",
		"min-replicas=2147483647\nmax-replicas=2147483647",
		"min-replicas=-1\nmax-replicas=0\nema-alpha=NaN\ncooldown=-1s",
	}
	for i, s := range seeds {
		f.Add(s, int32(i*7+1), float64(i)*37.5, i%3 == 0, []byte{byte(i), 200, 0, 255, 30, 11, 22})
	}
	f.Add(seeds[0], int32(math.MaxInt32), math.Inf(1), false, []byte{1, 2, 3})
	f.Add(seeds[1], int32(-5), math.NaN(), true, []byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, annotations string, current int32, rps float64, spike bool, steps []byte) {
		ann := map[string]string{}
		for _, line := range strings.Split(annotations, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				ann[AnnotationPrefix+k] = v
			}
		}
		spec, err := Parse("fuzz", ann, nil)
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("Parse error does not wrap ErrInvalidSpec: %v", err)
			}
			return
		}
		if spec.MinReplicas < 1 || spec.MaxReplicas < spec.MinReplicas || spec.MaxReplicas > MaxReplicasLimit {
			t.Fatalf("Parse accepted bounds [%d, %d]", spec.MinReplicas, spec.MaxReplicas)
		}
		if len(steps) > 64 {
			steps = steps[:64]
		}
		var st State
		for i, b := range steps {
			now := t0.Add(time.Duration(i) * 15 * time.Second)
			in := fuzzInput(b, current, rps, spike)
			start := time.Now()
			d, next := Decide(now, spec, st, in)
			if took := time.Since(start); took > slowDecide {
				t.Fatalf("step %d: Decide took %v on %+v", i, took, in)
			}
			if d.Desired < spec.MinReplicas || d.Desired > spec.MaxReplicas {
				t.Fatalf("step %d: desired %d outside [%d, %d] (%s)", i, d.Desired, spec.MinReplicas, spec.MaxReplicas, d.Reason)
			}
			inBounds := in.Current >= spec.MinReplicas && in.Current <= spec.MaxReplicas
			if d.Action == ScaleDown && inBounds && (!d.DataOK || in.Spike) {
				t.Fatalf("step %d: scaled down from %d to %d on %+v (%s)", i, in.Current, d.Desired, in, d.Reason)
			}
			st = next
			if d.Action != Hold {
				st, current = next.Scaled(now), d.Desired
			}
		}
	})
}

// fuzzInput shapes one evaluation from a byte: the rate scaled by it, or a
// missing, NaN, infinite or negative sample, a spike, a prediction that is
// sane, absurd or failed.
func fuzzInput(b byte, current int32, rps float64, spike bool) Input {
	in := Input{Current: current, RPS: rps * float64(b) / 64, Spike: spike && b%2 == 0}
	switch b % 13 {
	case 0:
		in.NoData = errors.New("no data")
	case 1:
		in.RPS = math.NaN()
	case 2:
		in.RPS = math.Inf(1)
	case 3:
		in.RPS = -rps
	}
	switch b % 5 {
	case 1:
		in.Prediction = &Prediction{Replicas: int32(b) * 1000, HasReplicas: true, Source: "external"}
	case 2:
		in.Prediction = &Prediction{Replicas: -int32(b), HasReplicas: true, Source: "external"}
	case 3:
		in.Prediction = &Prediction{RPS: rps * 3, HasRPS: true, Source: "builtin"}
	case 4:
		in.Prediction = &Prediction{Source: "external", Err: errors.New("predictor down")}
	}
	return in
}
