package scaler

import (
	"errors"
	"fmt"
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
	exporterNamespace(t, "otel", "observability")
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

// exporterNamespace sets source's exporter namespace for the test.
func exporterNamespace(t *testing.T, source, namespace string) {
	t.Helper()
	m, _ := MetricSourceNamed(source)
	was := m.ExporterNamespace
	if err := SetExporterNamespace(source, namespace); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.ExporterNamespace = was })
}

// TestAPresetNeedsItsExportersNamespace: a source whose exporter counts for
// every namespace (a gateway, a collector) is refused until the operator
// names the namespace it runs in; with it, every query the source runs
// selects only series scraped there, and a source keyed by a composite
// name selects only the names its key regex matches (label_replace keeps
// a forged autoscale_key on a series it does not match). A source whose
// exporter runs beside the application (Istio's sidecar) selects the
// series scraped in the target's own namespace, and groups by it.
// (Prometheus' engine runs the attack in test/promql.)
func TestAPresetNeedsItsExportersNamespace(t *testing.T) {
	ann := map[string]string{AnnotationPrefix + KeyReactive: "true", AnnotationPrefix + KeyMetricSource: "otel"}
	if _, err := Parse("web", ann, nil); err == nil || !strings.Contains(err.Error(), "--metric-source-namespace otel=") {
		t.Errorf("otel without its collector's namespace: %v, want the flag named", err)
	}
	if err := SetExporterNamespace("traefik", ""); err == nil {
		t.Error("a gateway source accepted no namespace")
	}
	for _, bad := range [][2]string{{"haproxy", "x"}, {"istio", "Not_A_Label"}} {
		if err := SetExporterNamespace(bad[0], bad[1]); err == nil {
			t.Errorf("SetExporterNamespace(%q, %q) accepted", bad[0], bad[1])
		}
	}
	exporterNamespace(t, "otel", "observability")
	exporterNamespace(t, "ingress-nginx", "edge")
	for _, m := range MetricSources {
		want := `namespace="{{.Namespace}}"`
		if m.ExporterNamespace != "" {
			want = `namespace="` + m.ExporterNamespace + `"`
		}
		for _, instant := range []bool{false, true} {
			if q := m.Query(instant); !strings.Contains(q, want) {
				t.Errorf("%s: query %s does not select %s", m.Name, q, want)
			}
			grouped, by := m.Grouped(instant)
			switch {
			case m.ExporterNamespace != "":
				if !strings.Contains(grouped, want) {
					t.Errorf("%s: grouped query %s does not select %s", m.Name, grouped, want)
				}
			case by[0] != ScrapeNamespaceLabel:
				t.Errorf("%s: grouped query %s is not grouped by the scrape's namespace first", m.Name, grouped)
			}
			if m.KeyLabel != "" && !strings.Contains(grouped, fmt.Sprintf("{%s,%s=~%q}", want, m.KeyLabel, m.KeyRegex)) {
				t.Errorf("%s: grouped query %s does not select only what its key regex matches", m.Name, grouped)
			}
		}
	}
	if m, _ := MetricSourceNamed("ingress-nginx"); !strings.Contains(m.Query(false), `namespace="edge"`) {
		t.Errorf("the operator's namespace is not in %s", m.Query(false))
	}
}

// TestACompositeNameAnotherNamespaceCouldProduceIsRefused: Traefik names
// a target namespace-service, so namespace shop's service payments-api
// and namespace shop-payments' service api are one name. A pair with a
// "-" in either part is refused (InvalidAnnotation), one without is not;
// sources whose names join with a character no name holds are not
// affected.
func TestACompositeNameAnotherNamespaceCouldProduceIsRefused(t *testing.T) {
	for _, c := range []struct {
		source, namespace, service string
		ok                         bool
	}{
		{"traefik", "shop", "payments-api", false}, {"traefik", "shop-payments", "api", false},
		{"traefik", "shop", "payments", true}, {"contour", "shop", "payments-api", true}, {"envoy-gateway", "shop-x", "api-y", true},
	} {
		spec, err := Parse("web", map[string]string{AnnotationPrefix + KeyReactive: "true", AnnotationPrefix + KeyMetricSource: c.source,
			AnnotationPrefix + KeyService: c.service}, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = spec.CheckWorkload(c.namespace, "web")
		if c.ok != (err == nil) {
			t.Errorf("%s %s/%s: %v, want accepted %t", c.source, c.namespace, c.service, err, c.ok)
		}
		if err != nil && (!errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "another namespace could produce")) {
			t.Errorf("%s %s/%s: %v is not an invalid setting that says why", c.source, c.namespace, c.service, err)
		}
	}
}
