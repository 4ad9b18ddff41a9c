package promql

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics"
	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
	"github.com/autoscale-io/reactive-autoscaler/pkg/watch"
)

// hostile are values a person who may edit one workload could try: the
// audit's injection, each quote and escape PromQL knows, control and
// non-ASCII characters.
var hostile = []string{
	`x"}[1m])) or sum(rate(http_requests_total{namespace="other",service="payments"}[1m])) or vector(0) or sum(rate(y{a="`,
	`"} or up{namespace="other"} or up{a="`,
	`x\"} or up{namespace=\"other\"}`,
	`x\`, `'`, "`", `x",namespace="other`, `x"} or up{namespace=~".+`,
	"x\n} or up{namespace=\"other\"", "\x00\x1b[2J", "ünïcödé", `{{.Namespace}}`,
	"web", "web-1",
}

// templates use each field, in the forms a query template puts them.
var templates = []string{
	scaler.DefaultQuery,
	scaler.FastQuery,
	`sum(rate(http_requests_total{namespace="{{.Namespace}}",deployment="{{.Deployment}}"}[1m]))`,
	`sum(rate(http_requests_total{namespace="{{.Namespace}}",service=~"{{.Service}}|{{.Deployment}}"}[5m]))`,
	`sum by (service) (rate(http_requests_total{namespace="{{.Namespace}}",service!="{{.Service}}-canary",pod=~"{{.Deployment}}-.*"}[1m]))`,
	`sum(rate(http_requests_total{namespace="{{ .Namespace }}",service="{{ .Service}}"}[1m]))`,
}

// selectsOnly fails unless every series selector of q has a matcher
// namespace="ns" (and no other namespace matcher), as Prometheus parses it.
func selectsOnly(t *testing.T, q, ns string) {
	t.Helper()
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err != nil {
		t.Errorf("Prometheus cannot parse the rendered query %q: %v", q, err)
		return
	}
	selectors := 0
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		selectors++
		own := false
		for _, m := range vs.LabelMatchers {
			if m.Name != "namespace" {
				continue
			}
			if m.Type != labels.MatchEqual || m.Value != ns {
				t.Errorf("query %q selects %s: not only namespace %q", q, m, ns)
			}
			own = true
		}
		if !own {
			t.Errorf("query %q has a selector without namespace=%q: %s", q, ns, vs)
		}
		return nil
	})
	if selectors == 0 {
		t.Errorf("query %q selects no series", q)
	}
}

func TestEveryTemplateFieldWithHostileValuesSelectsOnlyTheTargetsNamespace(t *testing.T) {
	rendered := 0
	for _, tmpl := range templates {
		for _, field := range []string{"namespace", "deployment", "service"} {
			for _, v := range hostile {
				ns, name := "shop", "web"
				ann := map[string]string{"autoscale.io/reactive": "true", "autoscale.io/query": tmpl}
				switch field {
				case "namespace":
					ns = v
				case "deployment":
					name = v
				case "service":
					ann["autoscale.io/service"] = v
				}
				spec, err := scaler.Parse(name, ann, nil)
				if err != nil {
					if field != "service" || scaler.IsDNSLabel(v) {
						t.Fatalf("Parse(%s=%q): %v", field, v, err)
					}
					// Refused as configuration; the renderer must refuse
					// it too, were it to get that far.
					spec, err = scaler.Parse(name, map[string]string{"autoscale.io/query": tmpl}, nil)
					if err != nil {
						t.Fatal(err)
					}
					spec.Service = v
				}
				q, err := spec.RenderQuery(ns, name)
				if err != nil {
					continue // refused: nothing reaches Prometheus
				}
				rendered++
				selectsOnly(t, q, ns)
			}
		}
	}
	if rendered == 0 {
		t.Fatal("no query rendered at all: the test checks nothing")
	}
}

// TestEscapedValuesAreExactLabelValues: what EscapeString makes of a value
// is that value, to Prometheus' parser, inside a double-quoted matcher.
func TestEscapedValuesAreExactLabelValues(t *testing.T) {
	for _, v := range hostile {
		q := `up{namespace="shop",service="` + scaler.EscapeString(v) + `"}`
		expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
		if err != nil {
			t.Errorf("%q: %v", q, err)
			continue
		}
		vs := expr.(*parser.VectorSelector)
		var got []string
		for _, m := range vs.LabelMatchers {
			if m.Name != labels.MetricName {
				got = append(got, m.Name+"="+m.Value)
			}
		}
		if want := []string{"namespace=shop", "service=" + v}; strings.Join(got, "\x01") != strings.Join(want, "\x01") {
			t.Errorf("%q parses to %q, want %q", q, got, want)
		}
	}
}

// TestTheSpikePathUnderQueryPolicyOffQueriesOnlyTheTargetsNamespace runs
// the controller (fake API server, httptest Prometheus recording every
// query) with --query-policy=off and triggers spike evaluations of a
// workload with a hostile service and of a valid one: every query that
// reaches Prometheus parses and selects only namespace shop, the hostile
// one gets an InvalidAnnotation Event and no query.
func TestTheSpikePathUnderQueryPolicyOffQueriesOnlyTheTargetsNamespace(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	prom := promtest.New()
	defer prom.Close()
	prom.Set(promtest.Answer{Model: func(q string, _ time.Time) (float64, bool) {
		mu.Lock()
		defer mu.Unlock()
		queries = append(queries, q)
		return 50, true
	}})
	dep := func(name, service string) *appsv1.Deployment {
		one := int32(1)
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", ResourceVersion: "1", Annotations: map[string]string{
				"autoscale.io/reactive": "true", "autoscale.io/service": service, "autoscale.io/predictor": "none"}},
			Spec: appsv1.DeploymentSpec{Replicas: &one},
		}
	}
	client := fake.NewClientset(dep("evil", hostile[0]), dep("web", "web"))
	pc, err := promapi.NewClient(promapi.Config{Address: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory := informers.NewSharedInformerFactory(client, 0)
	events := record.NewFakeRecorder(100)
	ctrl, err := watch.New(watch.Config{
		Client: client, Informer: factory.Apps().V1().Deployments().Informer(),
		Source:   metrics.NewSource(promv1.NewAPI(pc), 5*time.Second, nil),
		Recorder: events, SpikeWindow: 0, QueryPolicy: watch.QueryOff,
	})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	go func() { _ = ctrl.Run(ctx, 2) }()
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return ctrl.Ready(), nil
	}); err != nil {
		t.Fatal("the controller never became ready")
	}
	for _, name := range []string{"evil", "web"} {
		if !ctrl.Spike("shop", name, time.Now()) {
			t.Fatalf("Spike(shop/%s): not managed", name)
		}
	}
	invalid := false
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		for {
			select {
			case e := <-events.Events:
				invalid = invalid || strings.Contains(e, watch.EventInvalidAnnotation) && strings.Contains(e, "service")
			default:
				mu.Lock()
				n := len(queries)
				mu.Unlock()
				return invalid && n > 0, nil
			}
		}
	}); err != nil {
		t.Fatalf("want an InvalidAnnotation Event for the hostile service (got one: %v) and the valid target's queries", invalid)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, q := range queries {
		selectsOnly(t, q, "shop")
		if strings.Contains(q, "payments") {
			t.Errorf("the hostile service's query reached Prometheus: %q", q)
		}
	}
}

// TestEveryMetricSourceParsesAndSelectsOnlyItsTarget: each built-in source's
// query, rendered for a target with hostile field values, is refused or
// parses with Prometheus' parser into selectors whose matchers pin the
// target's namespace (by its namespace label, or inside the composite name
// a regex matches); the grouped forms parse too.
func TestEveryMetricSourceParsesAndSelectsOnlyItsTarget(t *testing.T) {
	if err := scaler.SetExporterNamespace("otel", "observability"); err != nil {
		t.Fatal(err)
	}
	for _, m := range scaler.MetricSources {
		for _, instant := range []bool{false, true} {
			grouped, _ := m.Grouped(instant)
			if _, err := parser.NewParser(parser.Options{}).ParseExpr(grouped); err != nil {
				t.Errorf("%s: Prometheus cannot parse the grouped query %q: %v", m.Name, grouped, err)
			}
		}
		for _, field := range []string{"namespace", "deployment", "service"} {
			for _, v := range hostile {
				ns, name, svc := "shop", "web", "web"
				switch field {
				case "namespace":
					ns = v
				case "deployment":
					name = v
				case "service":
					svc = v
				}
				spec, err := scaler.Parse("web", map[string]string{"autoscale.io/reactive": "true", "autoscale.io/metric-source": m.Name}, nil)
				if err != nil {
					t.Fatal(err)
				}
				spec.Service = svc
				q, err := spec.RenderQuery(ns, name)
				if err != nil {
					continue // refused: nothing reaches Prometheus
				}
				pinsNamespace(t, m.Name, q, ns)
			}
		}
	}
}

// pinsNamespace fails unless every selector of q has a matcher whose value
// is ns (an equality) or a regex that starts with ns or holds "/ns/".
func pinsNamespace(t *testing.T, source, q, ns string) {
	t.Helper()
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err != nil {
		t.Errorf("%s: Prometheus cannot parse %q: %v", source, q, err)
		return
	}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		pinned := false
		for _, m := range vs.LabelMatchers {
			switch m.Type {
			case labels.MatchEqual:
				pinned = pinned || m.Value == ns
			case labels.MatchRegexp:
				pinned = pinned || strings.HasPrefix(m.Value, ns+"_") || strings.HasPrefix(m.Value, ns+"-") || strings.Contains(m.Value, "/"+ns+"/")
			}
		}
		if !pinned {
			t.Errorf("%s: selector %s of %q does not pin namespace %q", source, vs, q, ns)
		}
		return nil
	})
}
