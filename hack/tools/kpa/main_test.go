package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/simulate"
)

// The simulator's model of the KPA decides as Knative's own decider does,
// tick for tick, for the default and the tuned configuration and for the
// tuned one with each setting put back to its default, on a generated
// flash crowd and on the real Twitter week: any change to the model that
// parts from Knative fails here.
func TestTheModelOfTheKPADecidesAsKnativesDecider(t *testing.T) {
	for _, name := range []string{"flash-crowd.csv", "twitter-stream-week1.csv"} {
		f, err := os.Open(filepath.Join("..", "..", "..", "testdata", "traces", name))
		if err != nil {
			t.Fatal(err)
		}
		tr, err := simulate.ReadCSV(name, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if testing.Short() && name != "flash-crowd.csv" {
			continue
		}
		pairs, err := score(tr, 25, 0.7, 30*time.Second, 15*time.Second, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(pairs) < 8 {
			t.Fatalf("%s: %d configurations scored, want the default, the tuned and six variants", name, len(pairs))
		}
		for _, p := range pairs {
			m, k := p.Model, p.Knative
			if len(m.Series) != len(k.Series) {
				t.Fatalf("%s %s: %d ticks in the model, %d with Knative's decider", name, m.Policy, len(m.Series), len(k.Series))
			}
			for i := range m.Series {
				if m.Series[i].Replicas != k.Series[i].Replicas {
					t.Errorf("%s %s: at %s the model has %d replicas, Knative's decider %d", name, m.Policy, m.Series[i].T, m.Series[i].Replicas, k.Series[i].Replicas)
					break
				}
			}
		}
	}
}
