package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/simulate"
)

type simulateOptions struct {
	trace       string
	scale       float64
	promURL     string
	query       string
	start, end  string
	step        time.Duration
	annotations []string
	world       simulate.World
	utilization float64
	policies    []string
	jsonOut     bool
	details     bool
	svg         string
}

func newSimulateCommand() *cobra.Command {
	o := simulateOptions{world: simulate.DefaultWorld, scale: 1, utilization: 0.8, step: 10 * time.Second}
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Replay a request-rate trace through the real decision code and the HPA, KEDA and Knative baselines, and score them",
		Long: `simulate replays a trace (a CSV of seconds,rps or RFC 3339 time,rps; or a Prometheus range
query) through reactive-autoscaler's own decision code (pkg/scaler) on a simulated clock, beside the
documented algorithms of the Kubernetes HPA, KEDA's Prometheus scaler and Knative's KPA, in a model
where replicas take --startup to become ready and each serves --capacity requests per second.
With no trace it runs a built-in flash crowd. Scores: seconds with demand above ready capacity,
requests not served (and their share of demand), replica-seconds, scale actions, peak replicas; and
each policy's ratio to the HPA, KEDA and the KPA at the --utilization given to every policy. For a
comparison at equal cost over a sweep of --utilization, see make bench-quality.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSimulate(cmd.Context(), cmd.OutOrStdout(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.trace, "trace", "", "CSV trace (seconds,rps or RFC 3339 time,rps); empty = the built-in flash crowd")
	f.Float64Var(&o.scale, "trace-scale", o.scale, "multiply the trace's rates by this")
	f.StringVar(&o.promURL, "prometheus-url", "", "replay a range query from this Prometheus instead of a CSV")
	f.StringVar(&o.query, "query", "", "with --prometheus-url: the PromQL of the request rate (one series)")
	f.StringVar(&o.start, "start", "", "with --prometheus-url: range start, RFC 3339 or a duration ago such as 24h")
	f.StringVar(&o.end, "end", "", "with --prometheus-url: range end, RFC 3339 or a duration ago; empty = now")
	f.DurationVar(&o.step, "step", o.step, "with --prometheus-url: range step")
	f.StringArrayVar(&o.annotations, "annotation", nil, "an autoscale.io/KEY=VALUE annotation for ours, as on a Deployment (repeatable)")
	f.Float64Var(&o.world.Capacity, "capacity", o.world.Capacity, "requests per second one ready replica serves")
	f.DurationVar(&o.world.Startup, "startup", o.world.Startup, "time until a new replica is ready")
	f.DurationVar(&o.world.Scrape, "scrape-interval", o.world.Scrape, "Prometheus scrape interval; every Prometheus-fed loop runs half of it after a scrape unless --phase says otherwise")
	f.DurationVar(&o.world.Phase, "phase", -1, "how long after a scrape ours, the HPA, KEDA and the alert rule read Prometheus (default half the scrape interval)")
	// The flag's own default (-1) means "derived": print none but the help's.
	f.Lookup("phase").DefValue = "0s"
	f.Float64Var(&o.utilization, "utilization", o.utilization, "share of capacity every policy targets per replica, 0 < u <= 1")
	f.StringSliceVar(&o.policies, "policies", nil, fmt.Sprintf("policies to run (default all: %s)", strings.Join(simulate.PolicyNames, ",")))
	f.BoolVar(&o.jsonOut, "json", false, "print the scores as JSON (durations in seconds)")
	f.BoolVar(&o.details, "details", false, "print every ratio (under-provisioned time, unserved requests and cost to each peer) in a wide table")
	f.StringVar(&o.svg, "svg", "", "write demand, capacity and replicas over time for each policy to this SVG file")
	return cmd
}

func runSimulate(ctx context.Context, out io.Writer, o simulateOptions) error {
	trace, err := loadTrace(ctx, o)
	if err != nil {
		return err
	}
	if !(o.scale > 0) || math.IsInf(o.scale, 0) {
		return fmt.Errorf("--trace-scale=%v: must be a positive number", o.scale)
	}
	if o.scale != 1 {
		trace = trace.Scaled(o.scale)
	}
	if o.world.Scrape <= 0 {
		return fmt.Errorf("--scrape-interval must be positive")
	}
	if !(o.utilization > 0 && o.utilization <= 1) {
		return fmt.Errorf("--utilization=%v: must be a share of capacity, 0 < u <= 1", o.utilization)
	}
	if !(o.world.Capacity > 0) || o.world.Startup < 0 {
		return fmt.Errorf("--capacity must be positive and --startup not negative")
	}
	if phase := o.world.Phase; phase < 0 {
		o.world = o.world.WithScrape(o.world.Scrape)
	} else if phase >= o.world.Scrape {
		return fmt.Errorf("--phase %v must be below the scrape interval %v", phase, o.world.Scrape)
	}
	ann := map[string]string{}
	for _, a := range o.annotations {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("--annotation %q: want autoscale.io/KEY=VALUE", a)
		}
		if !strings.HasPrefix(k, "autoscale.io/") {
			k = "autoscale.io/" + k
		}
		ann[k] = v
	}
	opts := simulate.Options{World: o.world, Annotations: ann, Utilization: o.utilization,
		Alerting: simulate.ChartAlerting(o.world.Scrape), Builtin: predict.DefaultSeasonal(), Only: o.policies}
	if _, err := opts.Spec(nil); err != nil {
		return err
	}
	start := time.Now()
	scores, err := simulate.Compare(opts, trace)
	if err != nil {
		return err
	}
	if o.svg != "" {
		f, err := os.Create(o.svg)
		if err != nil {
			return err
		}
		err = simulate.SVG(f, fmt.Sprintf("%s (%v, capacity %.0f RPS per replica, startup %v)", trace.Name, trace.Duration(), o.world.Capacity, o.world.Startup), o.world, scores)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if o.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"trace": trace.Name, "seconds": trace.Duration().Seconds(), "world": o.world, "scores": scores})
	}
	// The time taken has a line of its own: its width varies with the
	// machine, and the scenario line must stay within 120 columns.
	fmt.Fprintf(out, "%s: %v of demand (%.0f requests), capacity %.0f RPS per replica, ready %v after scale-up\nsimulated %d policies in %v\n",
		trace.Name, trace.Duration(), scores[0].DemandTotal, o.world.Capacity, o.world.Startup, len(scores), time.Since(start).Round(time.Millisecond))
	if peak, one := trace.Peak(), o.world.Capacity*o.utilization; peak <= one {
		fmt.Fprintf(out, "note: the trace's peak, %.3g RPS, is within one replica's target of %.3g RPS: every policy holds one replica and the scores say nothing; "+
			"multiply the rates with --trace-scale (about %.0f would bring its peak to five replicas)\n", peak, one, math.Ceil(5*one/max(peak, 1e-9)))
	}
	fmt.Fprintln(out)
	if o.details {
		return simulate.Table(out, scores, simulate.PolicyHPA, simulate.PolicyKEDA, simulate.PolicyKPA)
	}
	return simulate.CompactTable(out, scores, simulate.PolicyHPA, simulate.PolicyKEDA, simulate.PolicyKPA)
}

func loadTrace(ctx context.Context, o simulateOptions) (*simulate.Trace, error) {
	switch {
	case o.promURL != "":
		return promTrace(ctx, o)
	case o.trace != "":
		f, err := os.Open(o.trace)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return simulate.ReadCSV(o.trace, f)
	}
	return simulate.Shapes["flash-crowd"](), nil
}

// promTrace replays a range query: yesterday's real traffic, for example.
func promTrace(ctx context.Context, o simulateOptions) (*simulate.Trace, error) {
	if o.query == "" || o.start == "" {
		return nil, fmt.Errorf("--prometheus-url needs --query and --start")
	}
	now := time.Now()
	start, err := when(o.start, now)
	if err != nil {
		return nil, fmt.Errorf("--start: %w", err)
	}
	end := now
	if o.end != "" {
		if end, err = when(o.end, now); err != nil {
			return nil, fmt.Errorf("--end: %w", err)
		}
	}
	c, err := api.NewClient(api.Config{Address: o.promURL})
	if err != nil {
		return nil, err
	}
	val, _, _, err := promv1.NewAPI(c).QueryRange(ctx, o.query, promv1.Range{Start: start, End: end, Step: o.step})
	if err != nil {
		return nil, fmt.Errorf("range query: %w", err)
	}
	m, ok := val.(model.Matrix)
	if !ok || len(m) != 1 {
		return nil, fmt.Errorf("the query must return one series, got %v", val.Type())
	}
	tr := &simulate.Trace{Name: o.query, Step: o.step}
	byTime := map[int64]float64{}
	for _, p := range m[0].Values {
		byTime[p.Timestamp.Unix()] = float64(p.Value)
	}
	for t := start; !t.After(end); t = t.Add(o.step) {
		v, ok := byTime[t.Unix()]
		if !ok {
			v = math.NaN() // a gap in the data: a metrics outage
		}
		tr.RPS = append(tr.RPS, v)
	}
	return tr, nil
}

func when(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Parse(time.RFC3339, s)
}
