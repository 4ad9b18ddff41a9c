// Command kpa-decider scores Knative's KPA, its real decider, on a trace:
// knative.dev/serving's scaling.New autoscaler, fed each second's demand
// through the same window buckets its metric collector keeps (linear or
// weightedExponential), ticking every 2 s, in pkg/simulate's world (pods
// ready after the start-up, capacity per pod), scored by simulate.Run
// exactly as the simulator's own model of the KPA is. It prints the
// scores of the default and the tuned configuration (simulate.DefaultKPA
// and simulate.TunedKPA) as JSON, series included.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"time"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/serving/pkg/apis/autoscaling"
	"knative.dev/serving/pkg/autoscaler/aggregation"
	"knative.dev/serving/pkg/autoscaler/scaling"

	"github.com/autoscale-io/reactive-autoscaler/pkg/simulate"
)

func main() {
	trace := flag.String("trace", "", "the trace (seconds,rps CSV)")
	capacity := flag.Float64("capacity", simulate.DefaultWorld.Capacity, "requests per second a pod serves")
	knob := flag.Float64("knob", 0.7, "the target as a share of capacity")
	startup := flag.Duration("startup", simulate.DefaultWorld.Startup, "from a scale-up to the pod being ready")
	scrape := flag.Duration("scrape", simulate.DefaultWorld.Scrape, "the world's scrape interval (the KPA reads its pods, not Prometheus)")
	initial := flag.Int("initial", 0, "replicas at the start (0: the steady state of the first demand)")
	variants := flag.Bool("variants", false, "also score the tuned configuration with each of its settings set back to the default, one at a time")
	flag.Parse()
	if err := run(*trace, *capacity, *knob, *startup, *scrape, int32(*initial), *variants); err != nil {
		fmt.Fprintln(os.Stderr, "kpa-decider:", err)
		os.Exit(1)
	}
}

func run(path string, capacity, knob float64, startup, scrape time.Duration, initial int32, variants bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr, err := simulate.ReadCSV(path, f)
	if err != nil {
		return err
	}
	pairs, err := score(tr, capacity, knob, startup, scrape, initial, variants)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(pairs)
}

// score runs the default and the tuned configuration (and, with variants,
// the tuned one with each setting put back to the default) through the
// model and through Knative's decider.
func score(tr *simulate.Trace, capacity, knob float64, startup, scrape time.Duration, initial int32, variants bool) ([]pair, error) {
	world := simulate.DefaultWorld.WithScrape(scrape)
	world.Capacity, world.Startup, world.Initial = capacity, startup, initial
	if world.Initial == 0 {
		world.Initial = max(1, int32(math.Ceil(tr.RPS[0]/(capacity*knob))))
	}
	type config struct {
		name string
		cfg  simulate.KPAConfig
	}
	configs := []config{{simulate.PolicyKPA, simulate.DefaultKPA}, {simulate.PolicyKPATuned, simulate.TunedKPA}}
	if variants {
		d := simulate.DefaultKPA
		for _, v := range []struct {
			name string
			set  func(*simulate.KPAConfig)
		}{
			{"linear", func(c *simulate.KPAConfig) { c.Weighted = false }},
			{"no-delay", func(c *simulate.KPAConfig) { c.ScaleDownDelay = d.ScaleDownDelay }},
			{"panic-window", func(c *simulate.KPAConfig) { c.PanicPercent = d.PanicPercent }},
			{"panic-threshold", func(c *simulate.KPAConfig) { c.PanicThreshold = d.PanicThreshold }},
			{"scale-down-rate", func(c *simulate.KPAConfig) { c.MaxScaleDown = d.MaxScaleDown }},
			{"stable-window", func(c *simulate.KPAConfig) { c.Stable = d.Stable }},
		} {
			c := simulate.TunedKPA
			v.set(&c)
			configs = append(configs, config{simulate.PolicyKPATuned + "/default-" + v.name, c})
		}
	}
	var pairs []pair
	for _, c := range configs {
		pairs = append(pairs, pair{
			Model:   simulate.Run(world, tr, simulate.NewKPAWith(c.name, capacity*knob, c.cfg, 1, simulate.MaxReplicas)),
			Knative: simulate.Run(world, tr, newDecider(c.name, c.cfg, capacity, knob, world.Initial)),
		})
	}
	return pairs, nil
}

// pair is one configuration scored by the simulator's model of the KPA
// and by Knative's own decider, in the same world on the same trace.
type pair struct {
	Model   simulate.Score `json:"model"`
	Knative simulate.Score `json:"knative"`
}

// decider is a simulate.Policy around Knative's autoscaler.
type decider struct {
	name          string
	scaler        scaling.UniScaler
	stable, panic buckets
	ready         int
	epoch         time.Time
	started       bool
	spec          *scaling.DeciderSpec
	logger        *zap.SugaredLogger
}

// buckets is what Knative's collector keeps per window.
type buckets interface {
	Record(time.Time, float64)
	WindowAverage(time.Time) float64
	IsEmpty(time.Time) bool
}

func newDecider(name string, c simulate.KPAConfig, capacity, knob float64, initial int32) *decider {
	panicWindow := max(time.Second, time.Duration(float64(c.Stable)*c.PanicPercent/100))
	d := &decider{name: name, logger: zap.NewNop().Sugar()}
	// Knative's collector: one-second buckets for both windows.
	if c.Weighted {
		d.stable, d.panic = aggregation.NewWeightedFloat64Buckets(c.Stable, time.Second), aggregation.NewWeightedFloat64Buckets(panicWindow, time.Second)
	} else {
		d.stable, d.panic = aggregation.NewTimedFloat64Buckets(c.Stable, time.Second), aggregation.NewTimedFloat64Buckets(panicWindow, time.Second)
	}
	d.spec = &scaling.DeciderSpec{
		MaxScaleUpRate: 1000, MaxScaleDownRate: c.MaxScaleDown, ScalingMetric: autoscaling.RPS,
		TargetValue: capacity * knob, TotalValue: capacity, TargetBurstCapacity: 0, ActivatorCapacity: 100,
		PanicThreshold: c.PanicThreshold, StableWindow: c.Stable, ScaleDownDelay: c.ScaleDownDelay,
		InitialScale: initial, Reachable: true,
	}
	return d
}

// Name implements simulate.Policy.
func (d *decider) Name() string { return d.name }

// Step implements simulate.Policy: record the last whole second's demand
// (what the pods report), and decide every 2 s.
func (d *decider) Step(now time.Duration, v *simulate.View) int32 {
	if !d.started {
		// The simulated clock starts now: a new autoscaler over more than
		// one pod starts in panic at the wall clock's time (time.Now).
		d.epoch = time.Now().Truncate(time.Second)
	}
	at := d.epoch.Add(now)
	d.ready = int(v.Ready())
	if now >= time.Second {
		// As the collector's scrape: at this second, the load the pods
		// saw over the last whole one.
		load := v.Direct(time.Second, time.Second)
		d.stable.Record(at, load)
		d.panic.Record(at, load)
	}
	if !d.started {
		// Created with the pods already running, as the model's KPA is.
		d.started = true
		d.scaler = scaling.New(context.Background(), "bench", d.name, d, d, d.spec)
	}
	if now%(2*time.Second) != 0 {
		return v.Current()
	}
	res := d.scaler.Scale(d.logger, at)
	if !res.ScaleValid {
		return v.Current()
	}
	return max(1, min(res.DesiredPodCount, simulate.MaxReplicas))
}

// StableAndPanicConcurrency implements metrics.MetricClient (unused: the
// metric is RPS).
func (d *decider) StableAndPanicConcurrency(types.NamespacedName, time.Time) (float64, float64, error) {
	return 0, 0, fmt.Errorf("concurrency is not scored")
}

// StableAndPanicRPS implements metrics.MetricClient as the collector does.
func (d *decider) StableAndPanicRPS(_ types.NamespacedName, now time.Time) (float64, float64, error) {
	if d.stable.IsEmpty(now) {
		return 0, 0, fmt.Errorf("no data")
	}
	return d.stable.WindowAverage(now), d.panic.WindowAverage(now), nil
}

// ReadyCount and NotReadyCount implement resources.EndpointsCounter.
func (d *decider) ReadyCount() (int, error)    { return d.ready, nil }
func (d *decider) NotReadyCount() (int, error) { return 0, nil }
