package scaler

import (
	"os"
	"strings"
	"testing"
)

func TestTheHTTPSourceIsTheDefaultQuery(t *testing.T) {
	http, ok := MetricSourceNamed(DefaultMetricSource)
	if !ok {
		t.Fatal("no http source")
	}
	rate, rateLabels := http.Grouped(false)
	irate, _ := http.Grouped(true)
	if http.Query(false) != DefaultQuery || http.Query(true) != FastQuery || rate != GroupedDefaultQuery || irate != GroupedFastQuery ||
		strings.Join(rateLabels, ",") != "namespace,service" {
		t.Errorf("http source: %q %q %q %q %v; want the default and fast queries and their grouped forms",
			http.Query(false), http.Query(true), rate, irate, rateLabels)
	}
}

func TestAMetricSourceChoosesTheQuery(t *testing.T) {
	istio, _ := MetricSourceNamed("istio")
	contour, _ := MetricSourceNamed("contour")
	custom := `sum(rate(my_requests_total{app="{{.Service}}"}[2m]))`
	for _, c := range []struct {
		name     string
		ann      []string
		defaults map[string]string
		source   string // "" = a custom query
		instant  bool
		query    string // the template the spec runs; "" = the source's
		err      string
	}{
		{"nothing set: the http source", nil, nil, DefaultMetricSource, false, DefaultQuery, ""},
		{"a metric source", []string{KeyMetricSource, "istio"}, nil, "istio", false, istio.Query(false), ""},
		{"with the recommended profile: its irate form", []string{KeyMetricSource, "contour", KeyProfile, "recommended"}, nil, "contour", true, contour.Query(true), ""},
		{"from the controller's defaults", nil, map[string]string{KeyMetricSource: "istio"}, "istio", false, istio.Query(false), ""},
		{"an annotated query beats a default source", []string{KeyQuery, custom}, map[string]string{KeyMetricSource: "istio"}, "", false, custom, ""},
		{"an annotated source beats a default query", []string{KeyMetricSource, "istio"}, map[string]string{KeyQuery: custom}, "istio", false, istio.Query(false), ""},
		{"both on the workload", []string{KeyMetricSource, "istio", KeyQuery, custom}, nil, "", false, "", "set either metric-source or query, not both"},
		{"an unknown source", []string{KeyMetricSource, "haproxy"}, nil, "", false, "", "must be one of http, ingress-nginx, istio"},
		{"the fast query written out is the http source's irate", []string{KeyQuery, FastQuery}, nil, DefaultMetricSource, true, FastQuery, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			ann := map[string]string{AnnotationPrefix + KeyReactive: "true"}
			for i := 0; i+1 < len(c.ann); i += 2 {
				ann[AnnotationPrefix+c.ann[i]] = c.ann[i+1]
			}
			s, err := Parse("web", ann, c.defaults)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			name := ""
			if s.Source != nil {
				name = s.Source.Name
			}
			if name != c.source || s.Instant != c.instant || s.Query.Root.String() != c.query {
				t.Errorf("source %q instant %t query %q; want %q %t %q", name, s.Instant, s.Query.Root.String(), c.source, c.instant, c.query)
			}
		})
	}
}

// TestEverySourceSelectsItsTargetAndKeysItAsItsGroupedQueryDoes renders
// every source's query for one target and checks what ties the two
// paths together: the grouped query keys the target's series by the key
// the target reads (checked against Prometheus' engine in the e2e suite).
func TestEverySourceSelectsItsTargetAndKeysItAsItsGroupedQueryDoes(t *testing.T) {
	f := QueryFields{Namespace: "shop", Deployment: "web-v2", Service: "web"}
	for _, m := range MetricSources {
		s, err := Parse("web-v2", map[string]string{AnnotationPrefix + KeyReactive: "true", AnnotationPrefix + KeyMetricSource: m.Name,
			AnnotationPrefix + KeyService: "web"}, nil)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		q, err := s.RenderQuery("shop", "web-v2")
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if !strings.HasPrefix(q, "sum(rate("+m.Metric) || strings.Contains(q, "{{") {
			t.Errorf("%s: query %q", m.Name, q)
		}
		key, err := m.Key(f)
		if err != nil || key == "" {
			t.Errorf("%s: key %q, %v", m.Name, key, err)
		}
		grouped, labels := m.Grouped(false)
		if !strings.Contains(grouped, m.Metric) || len(labels) == 0 {
			t.Errorf("%s: grouped %q by %v", m.Name, grouped, labels)
		}
		if strings.Contains(m.Target, "{{.Deployment}}") != strings.Contains(m.TargetKey, "{{.Deployment}}") {
			t.Errorf("%s: the query selects by %q but the key is %q", m.Name, m.Target, m.TargetKey)
		}
	}
}

// TestReferenceListsEveryMetricSource: docs/REFERENCE.md has a row for each
// source with the query it runs.
func TestReferenceListsEveryMetricSource(t *testing.T) {
	data, err := os.ReadFile("../../docs/REFERENCE.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range MetricSources {
		if !strings.Contains(string(data), "| `"+m.Name+"` | `"+m.Query(false)+"`") {
			t.Errorf("docs/REFERENCE.md has no row for metric source %s with its query %s", m.Name, m.Query(false))
		}
	}
}
