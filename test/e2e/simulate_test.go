//go:build e2e

package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestSimulateReplaysAPrometheusRange: simulate reads its trace from the
// real Prometheus with a range query (yesterday's traffic in production;
// here the last 30 s of `up`).
func TestSimulateReplaysAPrometheusRange(t *testing.T) {
	out, err := exec.Command(filepath.Join(binDir, "reactive-autoscaler"), "simulate", "--prometheus-url", env.PrometheusURL,
		"--query", "sum(up)", "--start", "30s", "--step", "5s", "--policies", "reactive,kpa", "--json").Output()
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	var res struct {
		Trace   string  `json:"trace"`
		Seconds float64 `json:"seconds"`
		Scores  []struct {
			Policy string `json:"policy"`
		} `json:"scores"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if res.Trace != "sum(up)" || res.Seconds < 30 || res.Seconds > 40 || len(res.Scores) != 2 {
		t.Errorf("replayed %q over %v s with %d policies, want sum(up) over 30-40 s with 2", res.Trace, res.Seconds, len(res.Scores))
	}
}
