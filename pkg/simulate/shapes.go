package simulate

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"
)

// ShapeStep is the resolution of the generated traces, as the real ones.
const ShapeStep = 10 * time.Second

// Shapes are the synthetic traces this project generates (hack/traces
// writes them to testdata/traces); seeded, so always the same.
var Shapes = map[string]func() *Trace{
	// Three days: 20 to 200 RPS and back each day, the level drifting by
	// up to 15 % from day to day; 5 % noise.
	"diurnal": func() *Trace {
		rng := rand.New(rand.NewPCG(1, 1))
		return shape("diurnal", 3*24*time.Hour, func(t float64) float64 {
			level := 1 + 0.15*math.Sin(2*math.Pi*t/(2.5*86400))
			return level * (20 + 180*(1-math.Cos(2*math.Pi*t/86400))/2) * (1 + 0.05*rng.NormFloat64())
		})
	},
	// Three days at 30 RPS; every day at 09:00 the load climbs to 240 RPS
	// within a minute and stays 2 h (a business opening, a daily batch);
	// 10 % noise. A step that recurs: what a forecast can see coming.
	"daily-ramp": func() *Trace {
		rng := rand.New(rand.NewPCG(3, 3))
		return shape("daily-ramp", 3*24*time.Hour, func(t float64) float64 {
			into := math.Mod(t, 86400) - 9*3600
			v := 30.0
			switch {
			case into >= 0 && into < 60:
				v = 30 + 210*into/60
			case into >= 60 && into < 2*3600:
				v = 240
			}
			return v * (1 + 0.1*rng.NormFloat64())
		})
	},
	// 30 RPS, then 250 RPS within 10 s for 10 min, then 30 again.
	"flash-crowd": func() *Trace {
		return shape("flash-crowd", 40*time.Minute, func(t float64) float64 {
			if t >= 600 && t < 1200 {
				return 250
			}
			return 30
		})
	},
	// 10 to 300 RPS over 30 min, then 10 min at 300.
	"ramp": func() *Trace {
		return shape("ramp", 40*time.Minute, func(t float64) float64 { return 10 + 290*min(t, 1800)/1800 })
	},
	// Teeth of 5 min: 20 rising to 200, then back to 20 at once.
	"sawtooth": func() *Trace {
		return shape("sawtooth", time.Hour, func(t float64) float64 { return 20 + 180*math.Mod(t, 300)/300 })
	},
	// 120 RPS with 25 % noise for an hour.
	"noisy-plateau": func() *Trace {
		rng := rand.New(rand.NewPCG(2, 2))
		return shape("noisy-plateau", time.Hour, func(float64) float64 { return max(0, 120*(1+0.25*rng.NormFloat64())) })
	},
	// 150 RPS; the metric is missing for 5 min in the middle (the demand
	// is not); then the load halves.
	"outage-gap": func() *Trace {
		return shape("outage-gap", 40*time.Minute, func(t float64) float64 {
			switch {
			case t >= 900 && t < 1200:
				return math.NaN()
			case t >= 1800:
				return 75
			}
			return 150
		})
	},
}

// ShapeNames lists the shapes in a fixed order.
var ShapeNames = []string{"diurnal", "daily-ramp", "flash-crowd", "ramp", "sawtooth", "noisy-plateau", "outage-gap"}

func shape(name string, d time.Duration, f func(t float64) float64) *Trace {
	tr := &Trace{Name: name, Step: ShapeStep}
	for t := time.Duration(0); t < d; t += ShapeStep {
		tr.RPS = append(tr.RPS, f(t.Seconds()))
	}
	return tr
}

// WriteCSV writes a trace as seconds,rps (an outage as an empty rate).
func WriteCSV(w io.Writer, t *Trace) error {
	if _, err := fmt.Fprintln(w, "seconds,rps"); err != nil {
		return err
	}
	for i, v := range t.RPS {
		s := ""
		if !math.IsNaN(v) {
			s = fmt.Sprintf("%.2f", v)
		}
		if _, err := fmt.Fprintf(w, "%d,%s\n", int64((time.Duration(i) * t.Step).Seconds()), s); err != nil {
			return err
		}
	}
	return nil
}
