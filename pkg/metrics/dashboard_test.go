package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// TestDashboardQueriesExportedMetrics: every reactive_autoscaler_* series
// the chart's Grafana dashboard queries is one the binary exports.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("../../charts/reactive-autoscaler/dashboards/reactive-autoscaler.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}

	// Every method once, so that every vector has a series to gather.
	reg := prometheus.NewRegistry()
	r := NewRecorder(reg)
	d := &scaler.Decision{Current: 1, Desired: 2, DataOK: true, SmoothedRPS: 3}
	r.Evaluated(types.NamespacedName{Namespace: "ns", Name: "d"}, Evaluation{Result: ResultScaled, Decision: d, Took: time.Millisecond,
		Scheduled: true, Lag: time.Millisecond, SpikeToScale: time.Millisecond,
		Prediction: &Prediction{RPS: 5, HasRPS: true, MAPE: 0.1, Scored: 3, Failed: predict.ReasonTimeout}})
	r.ObserveWebhook(200)
	r.ObserveAlert(AlertQueued)
	r.SetManagedCount("Deployment", 1)
	r.SetLeader(true)
	r.observeQuery(time.Millisecond)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range mfs {
		exported[mf.GetName()] = true
	}

	name := regexp.MustCompile(`reactive_autoscaler_[a-z_]+`)
	queried := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				queried++
				base := m
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(m, suffix); ok && exported[b] {
						base = b
					}
				}
				if !exported[base] {
					t.Errorf("panel %q queries %s, which the binary does not export", p.Title, m)
				}
			}
		}
	}
	if queried < 10 {
		t.Errorf("the dashboard queries only %d reactive_autoscaler_ series", queried)
	}
}
