package promql

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// composite is a series' composite name, for the sources keyed by one.
var composite = map[string]string{
	"contour":       "shop_web_80",
	"envoy-gateway": "httproute/shop/web/rule/0",
	"traefik":       "shop-web-80@kubernetescrd",
}

// TestAPresetCountsOnlyItsExportersSeries loads, into Prometheus' own
// engine, each source's series for target web in namespace shop as its
// exporter reports it (7 requests a second) beside what a tenant can add
// with an exporter of its own: the same labels scraped in namespace
// attacker (1,000 a second), and, for a source keyed by a composite name,
// a series that already carries the grouped query's key (1,000 a second).
// The target's query and its series of the grouped query read 7.
func TestAPresetCountsOnlyItsExportersSeries(t *testing.T) {
	if err := scaler.SetExporterNamespace("otel", "observability"); err != nil {
		t.Fatal(err)
	}
	target := scaler.QueryFields{Namespace: "shop", Deployment: "web", Service: "web"}
	for _, m := range scaler.MetricSources {
		spec, err := scaler.Parse("web", map[string]string{"autoscale.io/reactive": "true", "autoscale.io/metric-source": m.Name}, nil)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		q, err := spec.RenderQuery("shop", "web")
		if err != nil {
			t.Fatal(err)
		}
		own := seriesOf(t, m, q)
		forged := own.Copy()
		forged[scaler.ScrapeNamespaceLabel] = "attacker"
		perSecond := map[*labelSet]float64{&own: 7, &forged: 1000}
		if m.KeyLabel != "" {
			keyed := own.Copy()
			keyed[m.KeyLabel] = "junk"
			key, _ := m.Key(target)
			keyed[scaler.GroupKeyLabel] = key
			perSecond[&keyed] = 1000
		}
		storage := load(t, perSecond)
		engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
		at := time.Unix(0, 0).Add(10 * time.Minute)
		if got := eval(t, engine, storage, q, at, nil); math.Abs(got-7) > 1e-9 {
			t.Errorf("%s: the target's query %s = %v, want 7 (its exporter's series only)", m.Name, q, got)
		}
		grouped, by := m.Grouped(false)
		key, err := m.Key(target)
		if err != nil {
			t.Fatal(err)
		}
		if got := eval(t, engine, storage, grouped, at, func(l labels.Labels) bool {
			values := make([]string, len(by))
			for i, b := range by {
				values[i] = l.Get(b)
			}
			return strings.Join(values, "/") == key
		}); math.Abs(got-7) > 1e-9 {
			t.Errorf("%s: key %s of the grouped query %s = %v, want 7", m.Name, key, grouped, got)
		}
		_ = storage.Close()
	}
}

// seriesOf is the label set of a series the target's query q selects: its
// equality matchers, and the composite name its regex matches.
func seriesOf(t *testing.T, m scaler.MetricSource, q string) labelSet {
	t.Helper()
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	out := labelSet{}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			for _, lm := range vs.LabelMatchers {
				switch lm.Type {
				case labels.MatchEqual:
					out[lm.Name] = lm.Value
				case labels.MatchRegexp:
					out[lm.Name] = composite[m.Name]
				}
			}
		}
		return nil
	})
	return out
}

type labelSet map[string]string

func (l labelSet) Copy() labelSet {
	out := labelSet{}
	for k, v := range l {
		out[k] = v
	}
	return out
}

// load stores each counter, rising at its rate, a sample every 15 s from 0
// to 10 minutes, in a TSDB of the test's own.
func load(t *testing.T, perSecond map[*labelSet]float64) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	app := db.Appender(context.Background())
	for l, rate := range perSecond {
		for i := range 41 {
			if _, err := app.Append(0, labels.FromMap(*l), int64(i)*15_000, rate*15*float64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	return db
}

// eval runs q at at and sums the samples keep accepts (all if nil).
func eval(t *testing.T, engine *promql.Engine, storage storage.Queryable, q string, at time.Time, keep func(labels.Labels) bool) float64 {
	t.Helper()
	qry, err := engine.NewInstantQuery(context.Background(), storage, nil, q, at)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	res := qry.Exec(context.Background())
	if res.Err != nil {
		t.Fatalf("%s: %v", q, res.Err)
	}
	vec, err := res.Vector()
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	sum := 0.0
	for _, s := range vec {
		if keep == nil || keep(s.Metric) {
			sum += s.F
		}
	}
	return sum
}
