// Command benchquality (make bench-quality) compares reactive-autoscaler
// with the HPA, KEDA and Knative's KPA at equal cost on every trace in
// testdata/traces (the generated shapes and the two real traces, NASA
// scaled x20 as its README suggests), at a 15 s and a 5 s scrape.
//
// Every policy is run at every value of the shared cost knob (the share of
// a replica's capacity it aims to use, simulate.Knobs); each peer's unserved
// requests at ours' replica-seconds are read off its curve; the ratio of
// ours' unserved to that is "unserved at equal cost". Ours is read at one
// knob, -knob (0.7, Knative's default target utilization). The goals of the
// recommended configuration are marked met or not; -json prints it all for
// machines.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/simulate"
)

// Goal is a bound on ours' unserved-at-equal-cost ratio to a peer.
type Goal struct {
	Peer   string   `json:"peer"`
	Max    float64  `json:"max"`
	Traces []string `json:"traces,omitempty"` // empty: every trace
}

// Goals of the recommended configuration at a 15 s scrape.
var Goals = []Goal{
	{Peer: simulate.PolicyHPA, Max: 0.7},
	{Peer: simulate.PolicyKEDA, Max: 0.7},
	{Peer: simulate.PolicyKPA, Max: 1.0, Traces: []string{"diurnal", "ramp", "nasa"}},
}

// GoalScrape is the scrape interval the goals are set at.
const GoalScrape = 15 * time.Second

var (
	peers = []string{simulate.PolicyHPA, simulate.PolicyKEDA, simulate.PolicyKPA}
	ours  = []string{simulate.PolicyRecommended, simulate.PolicyReactive, simulate.PolicySeed}
)

// Row is one of ours on one trace at one scrape interval.
type Row struct {
	Trace    string                        `json:"trace"`
	Scrape   string                        `json:"scrape"`
	Policy   string                        `json:"policy"`
	Knob     float64                       `json:"knob"`
	Point    simulate.CurvePoint           `json:"point"`
	Share    float64                       `json:"unservedShare"`
	VS       map[string]simulate.EqualCost `json:"vs"`
	GoalsMet map[string]bool               `json:"goalsMet,omitempty"`
}

// Result is everything the run measured.
type Result struct {
	Knob   float64                                `json:"knob"`
	World  simulate.World                         `json:"world"`
	Goals  []Goal                                 `json:"goals"`
	Rows   []Row                                  `json:"rows"`
	Curves map[string]map[string][]simulate.Curve `json:"curves"` // trace -> scrape -> curves
	Demand map[string]float64                     `json:"demandRequests"`
	// Forecast scores the built-in forecaster out of sample on the real
	// traces, 5 min ahead, on what the controller reads (a 1m rate every
	// 30 s at a 15 s scrape).
	Forecast map[string]predict.OutOfSample `json:"forecast"`
}

func main() {
	dir := flag.String("traces", "testdata/traces", "directory of CSV traces")
	knob := flag.Float64("knob", 0.7, "the cost knob ours is read at")
	jsonOut := flag.Bool("json", false, "print the result as JSON")
	only := flag.String("only", "", "comma-separated substrings of trace names to run (default all)")
	scrapes := flag.String("scrapes", "15s,5s", "scrape intervals to run at")
	rec := flag.String("recommended", "", "comma-separated autoscale.io/KEY=VALUE overriding the recommended profile (experiments)")
	flag.Parse()
	paths, err := filepath.Glob(filepath.Join(*dir, "*.csv"))
	if err != nil || len(paths) == 0 {
		fail(fmt.Errorf("no traces in %s", *dir))
	}
	opts := simulate.Options{World: simulate.DefaultWorld, Utilization: *knob, Alerting: simulate.DefaultAlerting}
	if *rec != "" {
		opts.Recommended = map[string]string{}
		for _, kv := range strings.Split(*rec, ",") {
			k, v, _ := strings.Cut(kv, "=")
			opts.Recommended["autoscale.io/"+strings.TrimPrefix(k, "autoscale.io/")] = v
		}
	}
	res := Result{Knob: *knob, World: opts.World, Goals: Goals, Curves: map[string]map[string][]simulate.Curve{}, Demand: map[string]float64{},
		Forecast: map[string]predict.OutOfSample{}}
	start := time.Now()
	for _, path := range paths {
		tr := load(path)
		if *only != "" && !matches(tr.Name, *only) {
			continue
		}
		res.Curves[tr.Name] = map[string][]simulate.Curve{}
		if strings.HasPrefix(tr.Name, "nasa") || strings.HasPrefix(tr.Name, "twitter") {
			res.Forecast[tr.Name] = predict.Score(observed(tr), 30*time.Second, 5*time.Minute)
		}
		for _, sc := range strings.Split(*scrapes, ",") {
			scrape, err := time.ParseDuration(sc)
			if err != nil {
				fail(fmt.Errorf("-scrapes: %w", err))
			}
			o := opts
			o.World = opts.World.WithScrape(scrape)
			curves, demand, err := simulate.Sweep(o, tr, append(append([]string{}, ours...), peers...), simulate.Knobs)
			if err != nil {
				fail(err)
			}
			res.Demand[tr.Name] = demand
			for _, name := range append(append([]string{}, ours...), peers...) {
				res.Curves[tr.Name][scrape.String()] = append(res.Curves[tr.Name][scrape.String()], curves[name])
			}
			res.Rows = append(res.Rows, rows(tr.Name, scrape, *knob, curves, demand)...)
		}
	}
	if *jsonOut {
		printJSON(res)
		return
	}
	report(res)
	fmt.Printf("\n%d traces, scrape intervals %s, %d knobs, in %v\n", len(res.Curves), *scrapes, len(simulate.Knobs), time.Since(start).Round(time.Second))
}

// rows reads each of ours at knob on one trace at one scrape interval
// against every peer's curve, and marks the goals.
func rows(trace string, scrape time.Duration, knob float64, curves map[string]simulate.Curve, demand float64) []Row {
	var out []Row
	for _, name := range ours {
		p, ok := curves[name].At(knob)
		if !ok {
			p = curves[name].Points[0] // a policy the knob does not reach
		}
		row := Row{Trace: trace, Scrape: scrape.String(), Policy: name, Knob: knob, Point: p, VS: map[string]simulate.EqualCost{}}
		if name == simulate.PolicySeed {
			row.Knob = math.NaN()
		}
		if demand > 0 {
			row.Share = p.UnservedRequests / demand
		}
		for _, peer := range peers {
			row.VS[peer] = curves[peer].Compare(p)
		}
		if name == simulate.PolicyRecommended && scrape == GoalScrape {
			row.GoalsMet = map[string]bool{}
			for _, g := range Goals {
				if applies(g, trace) {
					row.GoalsMet[g.Peer] = row.VS[g.Peer].Met(g.Max, p.UnservedRequests)
				}
			}
		}
		out = append(out, row)
	}
	return out
}

// printJSON prints res; an undefined ratio (0 and 0) or +inf is -1.
func printJSON(res Result) {
	for i := range res.Rows {
		if math.IsNaN(res.Rows[i].Knob) {
			res.Rows[i].Knob = 0
		}
		for k, e := range res.Rows[i].VS {
			e.Ratio, e.PeerUnserved = jsonNum(e.Ratio), jsonNum(e.PeerUnserved)
			res.Rows[i].VS[k] = e
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		fail(err)
	}
}

func report(res Result) {
	fmt.Printf("Unserved requests at equal cost: ours at knob %.2f; each peer's unserved read off its %d-knob curve at ours' replica-seconds.\n", res.Knob, len(simulate.Knobs))
	fmt.Println("Below 1: ours serves more for the same cost. <=: ours is cheaper than the peer's cheapest point (an upper bound).")
	fmt.Println("Unserved is also shown as a share of demand, so that a ratio of two tiny numbers shows as such.")
	for _, scrape := range []string{"15s", "5s"} {
		fmt.Printf("\n== at a %s scrape\n", scrape)
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "trace\tpolicy\treplica-s\tunserved\tshare\tvs hpa\t(hpa share)\tvs keda\t(keda share)\tvs kpa\t(kpa share)\tgoals\t")
		for _, r := range res.Rows {
			if r.Scrape != scrape {
				continue
			}
			line := fmt.Sprintf("%s\t%s\t%.0f\t%.0f\t%s\t", short(r.Trace), r.Policy, r.Point.ReplicaSeconds, r.Point.UnservedRequests, pct(r.Share))
			for _, peer := range peers {
				e := r.VS[peer]
				line += fmt.Sprintf("%s\t(%s)\t", e, pct(e.PeerUnserved/res.Demand[r.Trace]))
			}
			line += goals(r) + "\t"
			fmt.Fprintln(tw, line)
		}
		_ = tw.Flush()
	}
	fmt.Println("\n== the built-in forecaster out of sample, 5 min ahead, on a 1m rate every 30 s (parameters chosen on each trace's first half; MAPE on the second)")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "trace\tchosen (alpha, beta, phi)\ttrain MAPE\ttest MAPE\tdefault params\tlast value\tsame time yesterday\tforecasts\t")
	for name, f := range res.Forecast {
		fmt.Fprintf(tw, "%s\t%.2f, %.2f, %.2f\t%.1f%%\t%.1f%%\t%.1f%%\t%.1f%%\t%.1f%%\t%d\t\n", short(name), f.Chosen.Alpha, f.Chosen.Beta, f.Chosen.Phi,
			100*f.TrainMAPE, 100*f.ChosenMAPE, 100*f.DefaultMAPE, 100*f.LastMAPE, 100*f.SeasonalMAPE, f.Forecasts)
	}
	_ = tw.Flush()
	met, total := 0, 0
	for _, r := range res.Rows {
		for _, ok := range r.GoalsMet {
			total++
			if ok {
				met++
			}
		}
	}
	fmt.Printf("\nGoals of the recommended configuration at a %v scrape (<=0.7x hpa and keda on every trace, <=1.0x kpa on diurnal, ramp, NASA): %d of %d met\n", GoalScrape, met, total)
}

func goals(r Row) string {
	if r.GoalsMet == nil {
		return ""
	}
	var parts []string
	for _, g := range Goals {
		if ok, has := r.GoalsMet[g.Peer]; has {
			mark := "met"
			if !ok {
				mark = "MISSED"
			}
			parts = append(parts, fmt.Sprintf("%s %s", g.Peer, mark))
		}
	}
	return strings.Join(parts, ", ")
}

func applies(g Goal, trace string) bool {
	if len(g.Traces) == 0 {
		return true
	}
	return matches(trace, strings.Join(g.Traces, ","))
}

func matches(name, subs string) bool {
	for _, s := range strings.Split(subs, ",") {
		if s != "" && strings.Contains(name, s) {
			return true
		}
	}
	return false
}

func pct(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.3f%%", 100*v)
}

func short(name string) string { return strings.TrimSuffix(name, ".csv") }

func jsonNum(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return -1
	}
	return v
}

// observed is what the controller reads of tr with the default query at
// the default interval: rate(x[1m]) every 30 s, in the default world (7 s
// after a 15 s scrape).
func observed(tr *simulate.Trace) []float64 {
	w := simulate.DefaultWorld
	var out []float64
	for at := w.Phase; at < tr.Duration(); at += 30 * time.Second {
		v := tr.PromRate(at, time.Minute, w.Scrape, false)
		if math.IsNaN(v) {
			v = 0
		}
		out = append(out, v)
	}
	return out
}

func load(path string) *simulate.Trace {
	f, err := os.Open(path)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	tr, err := simulate.ReadCSV(filepath.Base(path), f)
	if err != nil {
		fail(err)
	}
	if strings.HasPrefix(tr.Name, "nasa") {
		tr = tr.Scaled(20)
		tr.Name += " (x20)"
	}
	return tr
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchquality:", err)
	os.Exit(1)
}
