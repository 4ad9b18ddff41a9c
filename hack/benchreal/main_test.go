package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/simulate"
)

// A flat day with one burst: the segment starts five minutes before it.
func TestTheSegmentPickedHoldsTheDaysBurst(t *testing.T) {
	step := 10 * time.Second
	rps := make([]float64, int(24*time.Hour/step)+100)
	for i := range rps {
		rps[i] = 20
	}
	burst := int(13 * time.Hour / step)
	for i := burst; i < burst+int(5*time.Minute/step); i++ {
		rps[i] = 80
	}
	// A collection gap (zeros) followed by the traffic's return is no rise.
	gap := int(20 * time.Hour / step)
	for i := gap; i < gap+int(10*time.Minute/step); i++ {
		rps[i] = 0
	}
	n := int(25 * time.Minute / step)
	from := pickSegment(&simulate.Trace{Step: step, RPS: rps}, n)
	if want := burst - int(5*time.Minute/step); from != want {
		t.Errorf("picked row %d; the burst is at row %d, want the segment to start five minutes before it, at %d", from, burst, want)
	}
}

// The segment is scaled to the peak asked for, and an outage's rows carry
// the rate before them (the demand went on).
func TestTheSegmentIsScaledAndItsGapsFilled(t *testing.T) {
	csv := "seconds,rps\n0,10\n10,20\n20,NaN\n30,40\n40,5\n"
	path := filepath.Join(t.TempDir(), "t.csv")
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	seg, err := segment(config{trace: path, from: 10 * time.Second, length: 30 * time.Second, peak: 80})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{40, 40, 80}
	if len(seg.RPS) != len(want) {
		t.Fatalf("segment %v, want %v", seg.RPS, want)
	}
	for i := range want {
		if math.Abs(seg.RPS[i]-want[i]) > 1e-9 {
			t.Errorf("segment %v, want %v", seg.RPS, want)
		}
	}
	if !strings.Contains(seg.Name, "from 10s") {
		t.Errorf("name %q does not say where the segment starts", seg.Name)
	}
	if _, err := segment(config{trace: path, from: 30 * time.Second, length: time.Minute, peak: 80}); err == nil {
		t.Error("a segment past the trace's end was accepted")
	}
}

// The peers' behavior is simulate.TunedHPA's, the configuration the model
// of them runs.
func TestThePeersRunTheTunedBehavior(t *testing.T) {
	b := behavior()
	up := b["scaleUp"].(map[string]any)
	down := b["scaleDown"].(map[string]any)
	if up["tolerance"] != "0.05" || down["tolerance"] != "0.05" {
		t.Errorf("tolerance up %v down %v, want TunedHPA's 0.05", up["tolerance"], down["tolerance"])
	}
	upPolicies := up["policies"].([]map[string]any)
	if upPolicies[0]["value"] != simulate.TunedHPA.Behavior.UpPercent || upPolicies[1]["value"] != simulate.TunedHPA.Behavior.UpPods {
		t.Errorf("scale-up policies %v, want TunedHPA's", upPolicies)
	}
	if down["policies"].([]map[string]any)[0]["value"] != simulate.TunedHPA.Behavior.DownPercent || down["stabilizationWindowSeconds"] != 0 {
		t.Errorf("scale-down %v, want TunedHPA's", down)
	}
}
