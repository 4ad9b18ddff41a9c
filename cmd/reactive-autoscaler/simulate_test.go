package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoscale-io/reactive-autoscaler/pkg/simulate"
)

// TestSimulateWithNoArguments: the zero-setup way to see the product work
// prints every policy's scores on the built-in flash crowd.
func TestSimulateWithNoArguments(t *testing.T) {
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"simulate"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.HasPrefix(got, "flash-crowd: 40m0s of demand") {
		t.Errorf("no scenario line:\n%s", got)
	}
	for _, p := range simulate.PolicyNames {
		if !strings.Contains(got, p+"  ") {
			t.Errorf("no row for %s:\n%s", p, got)
		}
	}
	if !strings.Contains(got, "unserved/hpa") || !strings.Contains(got, "unserved/kpa") {
		t.Errorf("no ratio columns:\n%s", got)
	}
	for _, line := range strings.Split(got, "\n") {
		if len(line) > 120 {
			t.Errorf("a line of %d columns, want at most 120 (every ratio is behind --details): %q", len(line), line)
		}
	}
	root = newRootCommand()
	out.Reset()
	root.SetOut(&out)
	root.SetArgs([]string{"simulate", "--details"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "cost/kpa") || !strings.Contains(out.String(), "under/keda") {
		t.Errorf("--details has not every ratio:\n%s", out.String())
	}
}

// TestSimulateSaysWhenATraceIsTooSmallForTheCapacityModel: a trace whose
// peak one replica carries scores nothing, and simulate says so and how
// to scale it.
func TestSimulateSaysWhenATraceIsTooSmallForTheCapacityModel(t *testing.T) {
	csv := filepath.Join(t.TempDir(), "small.csv")
	if err := os.WriteFile(csv, []byte("seconds,rps\n0,1\n60,3\n120,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for args, note := range map[string]bool{"": true, "--trace-scale=40": false} {
		root := newRootCommand()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(append([]string{"simulate", "--trace", csv, "--policies", "hpa"}, strings.Fields(args)...))
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(out.String(), "note: the trace's peak, 3 RPS, is within one replica's target") ||
			strings.Contains(out.String(), "note: the trace's peak"); got != note {
			t.Errorf("simulate %s: note %t, want %t:\n%s", args, got, note, out.String())
		}
	}
}

func TestSimulateJSONAndSVGFromACSV(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "t.csv")
	if err := os.WriteFile(csv, []byte("seconds,rps\n0,10\n60,100\n120,100\n180,10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	svg := filepath.Join(dir, "t.svg")
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"simulate", "--trace", csv, "--json", "--svg", svg, "--policies", "reactive,hpa",
		"--annotation", "autoscale.io/cooldown=30s", "--capacity", "20"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Seconds float64            `json:"seconds"`
		Scores  []simulate.Score   `json:"scores"`
		World   map[string]float64 `json:"world"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if res.Seconds != 240 || len(res.Scores) != 2 || res.Scores[0].Policy != "reactive" || res.Scores[1].Policy != "hpa" || res.Scores[0].PeakReplicas < 2 {
		t.Errorf("result %+v", res)
	}
	if res.World["capacityRPS"] != 20 || res.World["startupSeconds"] != 30 || res.World["scrapeSeconds"] != 15 || res.World["ingestSeconds"] != 0 || len(res.World) != 7 {
		t.Errorf("world %v: want lower-case names, durations in seconds", res.World)
	}
	if b, err := os.ReadFile(svg); err != nil || !bytes.HasPrefix(b, []byte("<svg")) {
		t.Errorf("svg: %v %.40q", err, b)
	}
	root = newRootCommand()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"simulate", "--annotation", "autoscale.io/cooldown=soon"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), `autoscale.io/cooldown="soon"`) {
		t.Errorf("a bad annotation: %v", err)
	}
}

// TestSimulateRefusesFlagsThatCannotMeanWhatTheySay, and its help names
// one default for --phase.
func TestSimulateRefusesFlagsThatCannotMeanWhatTheySay(t *testing.T) {
	for _, args := range [][]string{{"--utilization", "2"}, {"--utilization", "0"}, {"--capacity", "0"}, {"--startup", "-1s"}, {"--trace-scale", "0"}, {"--trace-scale", "-2"}} {
		root := newRootCommand()
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&bytes.Buffer{})
		root.SetArgs(append([]string{"simulate"}, args...))
		if err := root.Execute(); err == nil {
			t.Errorf("simulate %v: accepted", args)
		}
	}
	root := newRootCommand()
	var help bytes.Buffer
	root.SetOut(&help)
	root.SetArgs([]string{"simulate", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(help.String(), "\n") {
		if strings.Contains(line, "--phase") && strings.Count(line, "default") != 1 {
			t.Errorf("--phase help names %d defaults: %q", strings.Count(line, "default"), line)
		}
	}
}
