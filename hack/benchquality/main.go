// Command benchquality (make bench-quality) runs every simulate policy on
// every trace in testdata/traces (the generated shapes and the two real
// traces, NASA scaled x20 as its README suggests) and prints each trace's
// scores with the ratios of every policy to the HPA and to the KPA, then a
// summary: per trace, ours (reactive+spike) against each baseline.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/simulate"
)

func main() {
	dir := "testdata/traces"
	paths, err := filepath.Glob(filepath.Join(dir, "*.csv"))
	if err != nil || len(paths) == 0 {
		fmt.Fprintln(os.Stderr, "benchquality: no traces in", dir)
		os.Exit(1)
	}
	opts := simulate.Options{World: simulate.DefaultWorld, Utilization: 0.8, Alerting: simulate.DefaultAlerting, Builtin: predict.DefaultForecaster}
	type row struct {
		trace          string
		ours, hpa, kpa simulate.Score
	}
	var summary []row
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			fail(err)
		}
		tr, err := simulate.ReadCSV(filepath.Base(path), f)
		f.Close()
		if err != nil {
			fail(err)
		}
		if strings.HasPrefix(tr.Name, "nasa") {
			tr = tr.Scaled(20)
			tr.Name += " (x20)"
		}
		scores, err := simulate.Compare(opts, tr)
		if err != nil {
			fail(err)
		}
		fmt.Printf("== %s: %v, %.0f requests\n", tr.Name, tr.Duration(), scores[0].DemandTotal)
		if err := simulate.Table(os.Stdout, scores, simulate.PolicyHPA, simulate.PolicyKPA); err != nil {
			fail(err)
		}
		fmt.Println()
		by := map[string]simulate.Score{}
		for _, s := range scores {
			by[s.Policy] = s
		}
		summary = append(summary, row{tr.Name, by[simulate.PolicySpike], by[simulate.PolicyHPA], by[simulate.PolicyKPA]})
	}
	fmt.Println("== reactive+spike against the baselines (below 1: better; cost is replica-seconds)")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "trace\tunserved/hpa\tcost/hpa\tunserved/kpa\tcost/kpa\t")
	for _, r := range summary {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", r.trace, ratio(r.ours.UnservedRequests, r.hpa.UnservedRequests), ratio(r.ours.ReplicaSeconds, r.hpa.ReplicaSeconds),
			ratio(r.ours.UnservedRequests, r.kpa.UnservedRequests), ratio(r.ours.ReplicaSeconds, r.kpa.ReplicaSeconds))
	}
	_ = tw.Flush()
}

func ratio(a, b float64) string {
	if b == 0 {
		if a == 0 {
			return "="
		}
		return "+inf"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchquality:", err)
	os.Exit(1)
}
