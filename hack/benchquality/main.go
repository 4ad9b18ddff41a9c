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
// machines; -halves scores each half of the real weeks on its own, the
// nearest this repository has to a week nobody tuned on.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/predict/backtest"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
	"github.com/autoscale-io/reactive-autoscaler/pkg/simulate"
)

// Goal is a bound on ours' unserved-at-equal-cost ratio to a peer.
type Goal struct {
	Peer   string   `json:"peer"`
	Max    float64  `json:"max"`
	Traces []string `json:"traces,omitempty"` // empty: every trace
}

// daily are the traces with a daily pattern (the forecast's ground).
var daily = []string{"diurnal", "daily-ramp", "nasa", "twitter"}

// Goals of the recommended configuration at a 15 s scrape, on every trace
// where some policy loses at least GoalFloor of demand.
var Goals = []Goal{
	{Peer: simulate.PolicyHPATuned, Max: 0.7},
	{Peer: simulate.PolicyKEDATuned, Max: 0.7},
	{Peer: simulate.PolicyHPA, Max: 0.5},
	{Peer: simulate.PolicyKEDA, Max: 0.5},
	{Peer: simulate.PolicyKPA, Max: 1.0, Traces: daily},
	// Beyond the issue: the KPA at its best configuration, as the HPA and
	// KEDA are, so that no peer is compared only at its defaults.
	{Peer: simulate.PolicyKPATuned, Max: 1.0, Traces: daily},
}

// GoalFloor is the share of demand below which no goal is judged: where
// every policy serves 99.9 % or more, a ratio of two tiny numbers says
// nothing.
const GoalFloor = 0.001

// GoalScrape is the scrape interval the goals are set at.
const GoalScrape = 15 * time.Second

var (
	peers = []string{simulate.PolicyHPA, simulate.PolicyKEDA, simulate.PolicyHPATuned, simulate.PolicyKEDATuned, simulate.PolicyKPA, simulate.PolicyKPATuned}
	ours  = []string{simulate.PolicyRecommended, simulate.PolicyRecommendedReactive, simulate.PolicyOracle, simulate.PolicyReactive, simulate.PolicySeed}
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
	// GapRecovered (recommended only, on traces with a daily pattern): the
	// share of the gap in unserved requests between the recommended
	// profile without its forecast and the oracle that the forecast closes.
	GapRecovered *float64 `json:"gapRecovered,omitempty"`
	// AtFloor (recommended only, on a trace with a step no forecast can
	// see): how long after the step ours had new replicas ready, and the
	// least any loop reading the scrape could (the next scrape, the loop's
	// phase, a replica's start-up). At the floor, its goals are exempt.
	AtFloor *Floor `json:"atFloor,omitempty"`
}

// Floor is ours' reaction to a step against the least a scrape allows.
type Floor struct {
	ReadySeconds float64 `json:"readySeconds"`
	FloorSeconds float64 `json:"floorSeconds"`
	At           bool    `json:"at"`
}

// Result is everything the run measured.
type Result struct {
	Knob   float64                                `json:"knob"`
	World  simulate.World                         `json:"world"`
	Goals  []Goal                                 `json:"goals"`
	Rows   []Row                                  `json:"rows"`
	Curves map[string]map[string][]simulate.Curve `json:"curves"` // trace -> scrape -> curves
	Demand map[string]float64                     `json:"demandRequests"`
	// Forecast scores the built-in forecaster out of sample on the traces
	// of more than a day, 5 and 30 min ahead, on what the controller reads
	// (a 1m rate every 30 s at a 15 s scrape).
	Forecast map[string][]backtest.SeasonalScore `json:"forecast"`
	// Levels is the cost of serving each service level, per trace and
	// scrape: the other question, where unserved at equal cost is a ratio
	// of tiny numbers.
	Levels []Level `json:"serviceLevels"`
}

// Level is what each policy costs to serve a share of demand on one trace
// at one scrape: the least replica-seconds over its knob's sweep that
// leaves at most 1-Served of demand unserved (simulate.Curve.CostAt), and
// the physical floor.
type Level struct {
	Trace  string  `json:"trace"`
	Scrape string  `json:"scrape"`
	Served float64 `json:"served"`
	Floor  float64 `json:"floorReplicaSeconds"`
	// Cost by policy; a policy that reaches the level at no knob swept is
	// absent.
	Cost map[string]float64 `json:"replicaSeconds"`
	// Edge names the policies whose cheapest knob swept already serves the
	// level: their cost is an upper bound (a tighter knob might cost less).
	Edge map[string]bool `json:"atCheapestKnob,omitempty"`
	// GapRecovered: the share of the cost gap between the recommended
	// profile without its forecast and the oracle that the forecast closes
	// (absent when either does not reach the level, or there is no gap).
	GapRecovered *float64 `json:"gapRecovered,omitempty"`
}

// levels reads every policy's cost at each service level off its curve.
func levels(trace string, scrape time.Duration, curves map[string]simulate.Curve, demand, floor float64) []Level {
	var out []Level
	for _, served := range simulate.ServiceLevels {
		l := Level{Trace: trace, Scrape: scrape.String(), Served: served, Floor: floor, Cost: map[string]float64{}, Edge: map[string]bool{}}
		for _, name := range append(append([]string{}, ours...), peers...) {
			budget := (1 - served) * demand
			if c, ok := curves[name].CostAt(budget); ok {
				l.Cost[name] = c
				if pts := curves[name].Points; len(pts) > 1 && pts[0].UnservedRequests <= budget {
					l.Edge[name] = true
				}
			}
		}
		rec, okR := l.Cost[simulate.PolicyRecommended]
		without, okW := l.Cost[simulate.PolicyRecommendedReactive]
		oracle, okO := l.Cost[simulate.PolicyOracle]
		if okR && okW && okO && without > oracle {
			v := (without - rec) / (without - oracle)
			l.GapRecovered = &v
		}
		out = append(out, l)
	}
	return out
}

func main() {
	dir := flag.String("traces", "testdata/traces", "directory of CSV traces")
	knob := flag.Float64("knob", 0.7, "the cost knob ours is read at")
	jsonOut := flag.Bool("json", false, "print the result as JSON")
	only := flag.String("only", "", "comma-separated substrings of trace names to run (default all)")
	scrapes := flag.String("scrapes", "15s,5s", "scrape intervals to run at")
	rec := flag.String("recommended", "", "comma-separated autoscale.io/KEY=VALUE overriding the recommended profile (experiments)")
	band := flag.Float64("band", predict.DefaultSeasonal().Band, "the built-in forecaster's band: the share of past days the decision covers (experiments)")
	tune := flag.Bool("tune-peers", false, "search the HPA's behavior, tolerance and query for hpa-tuned and keda-tuned on every trace, print the best, and exit")
	tuneKPA := flag.Bool("tune-kpa", false, "search the KPA's windows, panic, scale-down rate and delay for kpa-tuned on every trace, print the best, and exit")
	ingest := flag.Duration("ingest", 0, "how long after its scrape a sample becomes queryable (simulate.World.Ingest): 0 for a Prometheus that scrapes the pods; a remote-write pipeline or a long-term store adds seconds to a minute, for every Prometheus-fed policy and the alert rule, not the KPA")
	halves := flag.Bool("halves", false, fmt.Sprintf("score each half of every trace of %d days or more as a trace of its own (the second replayed from t=0, with no history): how far the figures hold on a week nobody tuned on", HalvesFrom/scaler.Day))
	flag.Parse()
	paths, err := filepath.Glob(filepath.Join(*dir, "*.csv"))
	if err != nil || len(paths) == 0 {
		fail(fmt.Errorf("no traces in %s", *dir))
	}
	builtin := predict.DefaultSeasonal()
	builtin.Band = *band
	// Alerting is set per scrape below: the chart's rule for it.
	world := simulate.DefaultWorld
	world.Ingest = *ingest
	opts := simulate.Options{World: world, Utilization: *knob, Builtin: builtin}
	if *rec != "" {
		// Over the profile, as an annotation beside it would be.
		opts.Recommended = map[string]string{"autoscale.io/profile": "recommended"}
		for _, kv := range strings.Split(*rec, ",") {
			k, v, _ := strings.Cut(kv, "=")
			opts.Recommended["autoscale.io/"+strings.TrimPrefix(k, "autoscale.io/")] = v
		}
	}
	res := Result{Knob: *knob, World: opts.World, Goals: Goals, Curves: map[string]map[string][]simulate.Curve{}, Demand: map[string]float64{},
		Forecast: map[string][]backtest.SeasonalScore{}}
	start := time.Now()
	if *tune || *tuneKPA {
		var traces []*simulate.Trace
		for _, path := range paths {
			for _, tr := range load(path, *halves) {
				if *only == "" || matches(tr.Name, *only) {
					traces = append(traces, tr)
				}
			}
		}
		o := opts
		o.World = opts.World.WithScrape(GoalScrape)
		o.Alerting = simulate.ChartAlerting(GoalScrape)
		if *tune {
			tunePeers(o, traces)
		}
		if *tuneKPA {
			tuneKPAs(o, traces)
		}
		fmt.Printf("searched in %v\n", time.Since(start).Round(time.Second))
		return
	}
	var traces []*simulate.Trace
	for _, path := range paths {
		traces = append(traces, load(path, *halves)...)
	}
	for _, tr := range traces {
		if *only != "" && !matches(tr.Name, *only) {
			continue
		}
		res.Curves[tr.Name] = map[string][]simulate.Curve{}
		if days := tr.Duration() / scaler.Day; days >= 2 {
			// Train on the first days (the first only serves as history),
			// score the rest: three of seven, two of three.
			train := min(3, days-1) * scaler.Day
			bt := backtest.New(observed(tr), simulate.Epoch.Add(simulate.DefaultWorld.Phase), 30*time.Second, train)
			for _, h := range []time.Duration{5 * time.Minute, 30 * time.Minute} {
				res.Forecast[tr.Name] = append(res.Forecast[tr.Name], bt.Score(h))
			}
		}
		for _, sc := range strings.Split(*scrapes, ",") {
			scrape, err := time.ParseDuration(sc)
			if err != nil {
				fail(fmt.Errorf("-scrapes: %w", err))
			}
			o := opts
			o.World = opts.World.WithScrape(scrape)
			// The spike rule a user of the chart runs at this scrape.
			o.Alerting = simulate.ChartAlerting(scrape)
			// One sweep to 1.3 for the service levels; unserved at equal cost
			// reads the same curves within 0.3 to 0.95.
			all, demand, err := simulate.Sweep(o, tr, append(append([]string{}, ours...), peers...), simulate.LevelKnobs)
			if err != nil {
				fail(err)
			}
			curves := map[string]simulate.Curve{}
			for name, c := range all {
				curves[name] = c.Within(simulate.Knobs)
			}
			res.Demand[tr.Name] = demand
			for _, name := range append(append([]string{}, ours...), peers...) {
				res.Curves[tr.Name][scrape.String()] = append(res.Curves[tr.Name][scrape.String()], curves[name])
			}
			res.Levels = append(res.Levels, levels(tr.Name, scrape, all, demand, simulate.FloorReplicaSeconds(o.World, tr))...)
			rs := rows(tr.Name, scrape, *knob, curves, demand)
			if strings.Contains(tr.Name, "flash") && scrape == GoalScrape {
				f, err := floor(o, tr)
				if err != nil {
					fail(err)
				}
				rs[0].AtFloor = &f
				if f.At {
					rs[0].GoalsMet = nil
				}
			}
			res.Rows = append(res.Rows, rs...)
		}
	}
	if *jsonOut {
		printJSON(res)
		return
	}
	report(res)
	fmt.Printf("\n%d traces, scrape intervals %s, ingestion delay %v, %d knobs (%d for the service levels), in %v\n", len(res.Curves), *scrapes,
		*ingest, len(simulate.Knobs), len(simulate.LevelKnobs), time.Since(start).Round(time.Second))
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
		if name == simulate.PolicyRecommended && scrape == GoalScrape && judged(row, curves, demand) {
			row.GoalsMet = map[string]bool{}
			for _, g := range Goals {
				if applies(g, trace) {
					row.GoalsMet[g.Peer] = row.VS[g.Peer].Met(g.Max, p.UnservedRequests)
				}
			}
		}
		out = append(out, row)
	}
	if matches(trace, strings.Join(daily, ",")) {
		rec, without, oracle := out[0].Point.UnservedRequests, out[1].Point.UnservedRequests, out[2].Point.UnservedRequests
		if gap := without - oracle; gap > 0 {
			v := (without - rec) / gap
			out[0].GapRecovered = &v
		}
	}
	return out
}

// judged reports whether some policy loses at least GoalFloor of demand on
// the row's trace: ours at its knob, or a peer at ours' cost. A peer that
// cannot spend as much as ours is read at its dearest point, the least it
// loses: otherwise a variant of ours that spends more than a peer can would
// take the trace out of judging, a goal escaped by spending.
func judged(r Row, curves map[string]simulate.Curve, demand float64) bool {
	if demand <= 0 {
		return false
	}
	worst := r.Point.UnservedRequests
	for peer, e := range r.VS {
		switch pts := curves[peer].Points; {
		case e.Bound == "dearer" && len(pts) > 0:
			worst = max(worst, pts[len(pts)-1].UnservedRequests)
		case !math.IsNaN(e.PeerUnserved):
			worst = max(worst, e.PeerUnserved)
		}
	}
	return worst >= GoalFloor*demand
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
	fmt.Println("Each ratio stands beside the peer's unserved share of demand at ours' cost; ours' share is in its own column.")
	for _, scrape := range []string{"15s", "5s"} {
		fmt.Printf("\n== at a %s scrape\n", scrape)
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 1, ' ', tabwriter.AlignRight)
		head := "trace\tpolicy\treplica-s\tshare\t"
		for _, peer := range peers {
			head += "vs " + peer + "\t(share)\t"
		}
		fmt.Fprintln(tw, head)
		for _, r := range res.Rows {
			if r.Scrape != scrape {
				continue
			}
			line := fmt.Sprintf("%s\t%s\t%.0f\t%s\t", short(r.Trace), r.Policy, r.Point.ReplicaSeconds, pct(r.Share))
			for _, peer := range peers {
				e := r.VS[peer]
				line += fmt.Sprintf("%s\t(%s)\t", e, pct(e.PeerUnserved/res.Demand[r.Trace]))
			}
			fmt.Fprintln(tw, line)
		}
		_ = tw.Flush()
	}
	reportLevels(res)
	fmt.Printf("\n== goals of the recommended profile at a %v scrape, on traces where some policy loses >= %.1f%% of demand\n", GoalScrape, 100*GoalFloor)
	met, total := 0, 0
	for _, r := range res.Rows {
		if r.Policy != simulate.PolicyRecommended || r.Scrape != GoalScrape.String() {
			continue
		}
		line := goals(r)
		switch {
		case r.AtFloor != nil && r.AtFloor.At:
			line = fmt.Sprintf("exempt: a step no forecast can see, and ours at the floor a %v scrape allows (new replicas ready %.0f s after the step; the floor is %.0f s)",
				GoalScrape, r.AtFloor.ReadySeconds, r.AtFloor.FloorSeconds)
		case r.GoalsMet == nil:
			line = "not judged (every policy serves 99.9 % or more)"
		case r.AtFloor != nil:
			line += fmt.Sprintf(" (not at the floor: new replicas ready %.0f s after the step; the floor is %.0f s)", r.AtFloor.ReadySeconds, r.AtFloor.FloorSeconds)
		}
		if r.GapRecovered != nil {
			line += fmt.Sprintf("; the forecast recovers %.0f%% of the gap to the oracle", 100**r.GapRecovered)
		}
		fmt.Printf("%-32s %s\n", short(r.Trace), line)
		for _, ok := range r.GoalsMet {
			total++
			if ok {
				met++
			}
		}
	}
	fmt.Printf("goals: <=%.1fx hpa-tuned and keda-tuned, <=%.1fx hpa and keda, <=%.1fx kpa and kpa-tuned on traces with a daily pattern: %d of %d met\n",
		Goals[0].Max, Goals[2].Max, Goals[4].Max, met, total)

	fmt.Println("\n== the built-in forecaster out of sample (trained on the first days, scored on the rest) on a 1m rate every 30 s, beside the baselines and the peers' models: MAPE")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "trace\tahead\tseasonal (default)\tlevel window chosen\tseasonal (chosen)\tlast value\tsame time yesterday\tHolt-Winters (PHPA)\tCrane DSP (ours there)\tforecasts\tperiod found\t")
	names := make([]string, 0, len(res.Forecast))
	for name := range res.Forecast {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, f := range res.Forecast[name] {
			period := "none"
			if f.Period > 0 {
				period = predict.PeriodName(f.Period)
			}
			crane := "no forecast (no daily period found)"
			if f.CraneForecasts > 0 {
				crane = fmt.Sprintf("%.1f%% (%.1f%%) on %d", 100*f.CraneMAPE, 100*f.SeasonalOnCraneMAPE, f.CraneForecasts)
			}
			fmt.Fprintf(tw, "%s\t%v\t%.1f%%\t%v\t%.1f%%\t%.1f%%\t%.1f%%\t%.1f%%\t%s\t%d\t%s\t\n", short(name), f.Horizon, 100*f.DefaultMAPE, f.ChosenLevel,
				100*f.ChosenMAPE, 100*f.LastMAPE, 100*f.YesterdayMAPE, 100*f.HoltWintersMAPE, crane, f.Forecasts, period)
		}
	}
	_ = tw.Flush()
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

// HalvesFrom is the shortest trace -halves cuts in two: each half keeps
// more than a day of training and a day to score (the real weeks).
const HalvesFrom = 4 * scaler.Day

// load reads the trace at path, NASA's scaled x20 as its README suggests;
// with halves, a trace of HalvesFrom or more as its two halves.
func load(path string, halves bool) []*simulate.Trace {
	f, err := os.Open(path)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	tr, err := simulate.ReadCSV(filepath.Base(path), f)
	if err != nil {
		fail(err)
	}
	out := []*simulate.Trace{tr}
	if halves && tr.Duration() >= HalvesFrom {
		a, b := tr.Halves()
		out = []*simulate.Trace{a, b}
	}
	for i, tr := range out {
		if strings.HasPrefix(tr.Name, "nasa") {
			out[i] = tr.Scaled(20)
			out[i].Name += " (x20)"
		}
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchquality:", err)
	os.Exit(1)
}

// tuneKnobs are the cost knobs each candidate is run at while tuning:
// the whole range the equal-cost comparison sweeps (simulate.Knobs), so
// that a candidate is read at ours' cost, not at the end of a narrower
// curve.
var tuneKnobs = simulate.Knobs

// tunePeers searches what an HPA's spec.behavior, its tolerance and its
// query allow, on every trace at the goal scrape, for the configuration
// that leaves the fewest requests unserved at ours' cost (the recommended
// profile at the knob it is read at: the cost at which the equal-cost
// table compares them): the sum over traces of log(unserved + 1e-5 x
// demand), so that every trace counts by its ratio, not its size. One
// configuration for all traces, as the recommended profile.
func tunePeers(o simulate.Options, traces []*simulate.Trace) {
	type query struct {
		window  time.Duration
		instant bool
	}
	var grid []simulate.HPAConfig
	for _, q := range []query{{time.Minute, false}, {time.Minute, true}, {2 * time.Minute, false}} {
		for _, tol := range []float64{0.2, 0.1, 0.05, 0} {
			for _, up := range []float64{100, 300, 1000} {
				for _, down := range []time.Duration{0, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 20 * time.Minute, time.Hour} {
					for _, downPct := range []float64{100, 50} {
						grid = append(grid, simulate.HPAConfig{Window: q.window, Instant: q.instant, Tolerance: tol,
							Behavior: simulate.Behavior{UpPercent: up, UpPods: 4, DownStabilization: down, DownPercent: downPct}})
					}
				}
			}
		}
	}
	best := search(o, traces, grid, simulate.PolicyHPATuned, func(o *simulate.Options, c *simulate.HPAConfig) { o.TunedHPA = c })
	fmt.Printf("best: %+v\n", best)
}

// tuneKPAs searches what the KPA's settings allow (its stable window, the
// panic window's share of it, the panic threshold, the max scale-down
// rate, the scale-down delay and the metric aggregation algorithm; 864
// configurations) with tunePeers' criterion, at ours' cost.
func tuneKPAs(o simulate.Options, traces []*simulate.Trace) {
	var grid []simulate.KPAConfig
	for _, stable := range []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute} {
		for _, panicPct := range []float64{5, 10, 20} {
			for _, threshold := range []float64{1.1, 1.5, 2} {
				for _, delay := range []time.Duration{0, time.Minute, 5 * time.Minute, 10 * time.Minute, 20 * time.Minute, time.Hour} {
					for _, down := range []float64{2, 1.25} {
						for _, weighted := range []bool{false, true} {
							grid = append(grid, simulate.KPAConfig{Stable: stable, PanicPercent: panicPct, PanicThreshold: threshold,
								MaxScaleDown: down, ScaleDownDelay: delay, Weighted: weighted})
						}
					}
				}
			}
		}
	}
	best := search(o, traces, grid, simulate.PolicyKPATuned, func(o *simulate.Options, c *simulate.KPAConfig) { o.TunedKPA = c })
	fmt.Printf("best: %+v\n", best)
}

// search runs every configuration of grid as the tuned policy (set puts it
// in the options) on every trace and returns the one that leaves the
// fewest requests unserved at ours' cost (oursCost): the sum over traces
// of log(unserved + 1e-5 x demand), so that every trace counts by its
// ratio, not its size.
func search[C any](o simulate.Options, traces []*simulate.Trace, grid []C, tuned string, set func(*simulate.Options, *C)) C {
	refs := map[string]float64{}
	for _, tr := range traces {
		refs[tr.Name] = oursCost(o, tr)
	}
	scores := make([]float64, len(grid))
	var done atomic.Int64
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range work {
				oc := o
				set(&oc, &grid[i])
				for _, tr := range traces {
					u, demand := unservedAtCost(oc, tr, tuned, refs[tr.Name])
					scores[i] += math.Log(u + 1e-5*demand)
				}
				fmt.Printf("%3d/%d %+v score %.3f\n", done.Add(1), len(grid), grid[i], scores[i])
			}
		})
	}
	for i := range grid {
		work <- i
	}
	close(work)
	wg.Wait()
	best := 0
	for i := range grid {
		if scores[i] < scores[best] {
			best = i
		}
	}
	fmt.Printf("best score %.3f\n", scores[best])
	return grid[best]
}

// unservedAtCost is policy's unserved requests on tr at cost (read on
// its curve over tuneKnobs, or at the curve's nearest end), and the
// trace's demand. Cost falls as the knob rises, so the two knobs that
// bracket cost are found by bisection: six runs instead of fourteen.
func unservedAtCost(o simulate.Options, tr *simulate.Trace, policy string, cost float64) (unserved, demand float64) {
	pts := map[int]simulate.CurvePoint{}
	at := func(i int) simulate.CurvePoint {
		if p, ok := pts[i]; ok {
			return p
		}
		curves, d, err := simulate.Sweep(o, tr, []string{policy}, tuneKnobs[i:i+1])
		if err != nil {
			fail(err)
		}
		pts[i], demand = curves[policy].Points[0], d
		return pts[i]
	}
	lo, hi := 0, len(tuneKnobs)-1
	switch {
	case cost >= at(lo).ReplicaSeconds:
		return at(lo).UnservedRequests, demand
	case cost <= at(hi).ReplicaSeconds:
		return at(hi).UnservedRequests, demand
	}
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; at(mid).ReplicaSeconds >= cost {
			lo = mid
		} else {
			hi = mid
		}
	}
	u, _ := simulate.Curve{Policy: policy, Points: []simulate.CurvePoint{at(hi), at(lo)}}.UnservedAt(cost)
	return u, demand
}

// oursCost is the recommended profile's replica-seconds on tr at the knob
// the equal-cost table reads it at: the cost a tuned peer is searched at.
func oursCost(o simulate.Options, tr *simulate.Trace) float64 {
	curves, _, err := simulate.Sweep(o, tr, []string{simulate.PolicyRecommended}, []float64{o.Utilization})
	if err != nil {
		fail(err)
	}
	return curves[simulate.PolicyRecommended].Points[0].ReplicaSeconds
}

// floor measures how long after the trace's step (its first rise to more
// than twice the row before) ours had its first new replica ready, against
// the floor for a loop reading a scrape: the first scrape after the step,
// the loop's phase after it, and a replica's start-up.
func floor(o simulate.Options, tr *simulate.Trace) (Floor, error) {
	step := time.Duration(-1)
	for i := 1; i < len(tr.RPS); i++ {
		if tr.RPS[i] > 2*tr.RPS[i-1] && tr.RPS[i-1] > 0 {
			step = time.Duration(i) * tr.Step
			break
		}
	}
	if step < 0 {
		return Floor{}, fmt.Errorf("%s has no step", tr.Name)
	}
	o.Only = []string{simulate.PolicyRecommended}
	scores, err := simulate.Compare(o, tr)
	if err != nil {
		return Floor{}, err
	}
	series := scores[0].Series
	before := series[int(step/o.World.Tick)-1].Ready
	ready := time.Duration(-1)
	for _, p := range series {
		if p.T >= step && p.Ready > before {
			ready = p.T
			break
		}
	}
	w := o.World
	floorAt := step.Truncate(w.Scrape) + w.Scrape + w.Phase + w.Startup
	f := Floor{ReadySeconds: (ready - step).Seconds(), FloorSeconds: (floorAt - step).Seconds()}
	f.At = ready >= 0 && ready <= floorAt
	return f, nil
}

// reportLevels prints the cost at each service level: ours' (recommended,
// at its best knob) against the floor, and its ratio to each peer's at the
// peer's best knob.
func reportLevels(res Result) {
	fmt.Printf("\n== cost at a service level: the least replica-seconds over each policy's %d-knob sweep (%.2f to %.2f) that serves the level\n",
		len(simulate.LevelKnobs), simulate.LevelKnobs[0], simulate.LevelKnobs[len(simulate.LevelKnobs)-1])
	fmt.Println("recommended as a multiple of the floor (exactly the replicas the demand needs, ready at once); then ours over each policy's cost")
	fmt.Println("(below 1: ours is cheaper; never: that policy does not reach the level at any knob; ours never: ours does not;")
	fmt.Println("<= and >=: ours, or the other, already serves the level at its cheapest knob, so its cost is an upper bound; ~: both)")
	for _, scrape := range []string{"15s", "5s"} {
		fmt.Printf("\n-- at a %s scrape\n", scrape)
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 1, ' ', tabwriter.AlignRight)
		head := "trace\tserved\tfloor\trecommended\t"
		others := append([]string{simulate.PolicyRecommendedReactive, simulate.PolicyOracle}, peers...)
		for _, p := range others {
			head += "vs " + p + "\t"
		}
		fmt.Fprintln(tw, head+"forecast closes\t")
		for _, l := range res.Levels {
			if l.Scrape != scrape {
				continue
			}
			rec, ok := l.Cost[simulate.PolicyRecommended]
			line := fmt.Sprintf("%s\t%g%%\t%.0f\t", short(l.Trace), 100*l.Served, l.Floor)
			mark := func(p string) string {
				if l.Edge[p] {
					return "<="
				}
				return ""
			}
			if ok {
				line += fmt.Sprintf("%s%.2fx\t", mark(simulate.PolicyRecommended), rec/l.Floor)
			} else {
				line += "never\t"
			}
			for _, p := range others {
				c, has := l.Cost[p]
				switch {
				case !ok && !has:
					line += "both never\t"
				case !ok:
					line += "ours never\t"
				case !has:
					line += "never\t"
				default:
					// Ours at its cheapest knob: the ratio is at most this;
					// the other at its: at least; both: neither.
					bound := map[[2]bool]string{{true, false}: "<=", {false, true}: ">=", {true, true}: "~"}[[2]bool{l.Edge[simulate.PolicyRecommended], l.Edge[p]}]
					line += fmt.Sprintf("%s%.2fx\t", bound, rec/c)
				}
			}
			if l.GapRecovered != nil {
				line += fmt.Sprintf("%.0f%%\t", 100**l.GapRecovered)
			} else {
				line += "-\t"
			}
			fmt.Fprintln(tw, line)
		}
		_ = tw.Flush()
	}
}
