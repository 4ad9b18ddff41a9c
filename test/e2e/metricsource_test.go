//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"text/template"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// exporter is one scrape target of a metric source's fixture: the labels
// its scrape attaches (what a ServiceMonitor or the mesh's scrape config
// adds) and the exposition text it serves, whose {{rate R}} counters grow
// by R a second.
type exporter struct {
	labels []string
	text   string
}

// sourceFixtures are, per built-in metric source, exposition text with the
// exporter's documented metric and label names. The target is Deployment
// web (Service web) in namespace shop and serves 7 requests a second in
// every fixture; the rest is traffic a wrong selector would add: another
// namespace's (100), another service's (50), or the same requests counted
// a second time by another reporter or direction (40).
var sourceFixtures = map[string][]exporter{
	"http": {
		{[]string{"namespace", "shop", "service", "web"}, `# HELP http_requests_total Requests handled.
# TYPE http_requests_total counter
http_requests_total{code="200",method="GET"} {{rate 5}}
http_requests_total{code="503",method="GET"} {{rate 2}}
`},
		{[]string{"namespace", "other", "service", "web"}, `# TYPE http_requests_total counter
http_requests_total{code="200",method="GET"} {{rate 100}}
`},
		{[]string{"namespace", "shop", "service", "api"}, `# TYPE http_requests_total counter
http_requests_total{code="200",method="GET"} {{rate 50}}
`},
	},
	// The controller's metrics Service is what the ServiceMonitor scrapes:
	// the request's own namespace and service become exported_*.
	"ingress-nginx": {{[]string{"namespace", "ingress-nginx", "service", "ingress-nginx-controller-metrics", "pod", "ingress-nginx-controller-5d8f"},
		`# HELP nginx_ingress_controller_requests The total number of client requests
# TYPE nginx_ingress_controller_requests counter
nginx_ingress_controller_requests{canary="",controller_class="k8s.io/ingress-nginx",controller_namespace="ingress-nginx",controller_pod="ingress-nginx-controller-5d8f",host="shop.example",ingress="web",method="GET",namespace="shop",path="/",service="web",status="200"} {{rate 6}}
nginx_ingress_controller_requests{canary="",controller_class="k8s.io/ingress-nginx",controller_namespace="ingress-nginx",controller_pod="ingress-nginx-controller-5d8f",host="shop.example",ingress="web",method="POST",namespace="shop",path="/",service="web",status="502"} {{rate 1}}
nginx_ingress_controller_requests{canary="",controller_class="k8s.io/ingress-nginx",controller_namespace="ingress-nginx",controller_pod="ingress-nginx-controller-5d8f",host="other.example",ingress="web",method="GET",namespace="other",path="/",service="web",status="200"} {{rate 100}}
nginx_ingress_controller_requests{canary="",controller_class="k8s.io/ingress-nginx",controller_namespace="ingress-nginx",controller_pod="ingress-nginx-controller-5d8f",host="shop.example",ingress="api",method="GET",namespace="shop",path="/api",service="api",status="200"} {{rate 50}}
`}},
	"istio": {{[]string{"namespace", "shop", "pod", "web-v2-7c9d"},
		`# TYPE istio_requests_total counter
istio_requests_total{connection_security_policy="mutual_tls",destination_service="web.shop.svc.cluster.local",destination_service_name="web",destination_service_namespace="shop",destination_workload="web-v2",destination_workload_namespace="shop",reporter="destination",request_protocol="http",response_code="200",source_workload="frontend",source_workload_namespace="shop"} {{rate 7}}
istio_requests_total{connection_security_policy="unknown",destination_service="web.shop.svc.cluster.local",destination_service_name="web",destination_service_namespace="shop",destination_workload="web-v2",destination_workload_namespace="shop",reporter="source",request_protocol="http",response_code="200",source_workload="frontend",source_workload_namespace="shop"} {{rate 40}}
istio_requests_total{connection_security_policy="mutual_tls",destination_service="web.other.svc.cluster.local",destination_service_name="web",destination_service_namespace="other",destination_workload="web",destination_workload_namespace="other",reporter="destination",request_protocol="http",response_code="200",source_workload="frontend",source_workload_namespace="other"} {{rate 100}}
`}},
	// linkerd-viz's scrape attaches the pod's namespace and owner.
	"linkerd": {
		{[]string{"namespace", "shop", "deployment", "web", "pod", "web-6f7b"}, `# HELP request_total Total count of HTTP requests.
# TYPE request_total counter
request_total{authority="web.shop.svc.cluster.local:80",direction="inbound",target_addr="10.0.0.5:8080",tls="true"} {{rate 7}}
request_total{authority="api.shop.svc.cluster.local:80",direction="outbound",dst_deployment="api",dst_namespace="shop",target_addr="10.0.0.9:8080",tls="true"} {{rate 40}}
`},
		{[]string{"namespace", "other", "deployment", "web", "pod", "web-9a1c"}, `# TYPE request_total counter
request_total{authority="web.other.svc.cluster.local:80",direction="inbound",target_addr="10.0.1.5:8080",tls="true"} {{rate 100}}
`},
	},
	"contour": {{[]string{"namespace", "projectcontour", "pod", "envoy-x2k4"}, `# TYPE envoy_cluster_upstream_rq_total counter
envoy_cluster_upstream_rq_total{envoy_cluster_name="shop_web_80"} {{rate 7}}
envoy_cluster_upstream_rq_total{envoy_cluster_name="shop_web-api_80"} {{rate 50}}
envoy_cluster_upstream_rq_total{envoy_cluster_name="other_web_80"} {{rate 100}}
`}},
	"envoy-gateway": {{[]string{"namespace", "envoy-gateway-system", "pod", "envoy-default-eg-7b9"}, `# TYPE envoy_cluster_upstream_rq_total counter
envoy_cluster_upstream_rq_total{envoy_cluster_name="httproute/shop/web/rule/0"} {{rate 7}}
envoy_cluster_upstream_rq_total{envoy_cluster_name="httproute/shop/web-api/rule/0"} {{rate 50}}
envoy_cluster_upstream_rq_total{envoy_cluster_name="httproute/other/web/rule/0"} {{rate 100}}
`}},
	// Traefik's own service label becomes exported_service under its
	// ServiceMonitor.
	"traefik": {{[]string{"namespace", "traefik", "service", "traefik-metrics", "pod", "traefik-5c6d"}, `# TYPE traefik_service_requests_total counter
traefik_service_requests_total{code="200",method="GET",protocol="http",service="shop-web-80@kubernetescrd"} {{rate 7}}
traefik_service_requests_total{code="200",method="GET",protocol="http",service="shop-web-api-80@kubernetescrd"} {{rate 50}}
traefik_service_requests_total{code="200",method="GET",protocol="http",service="other-web-80@kubernetescrd"} {{rate 100}}
`}},
	// The collector's Prometheus exporter with resource attributes
	// promoted to labels.
	"otel": {{[]string{"namespace", "observability", "service", "otel-collector"}, `# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{http_request_method="GET",http_response_status_code="200",k8s_namespace_name="shop",service_name="web",le="0.1"} {{rate 6}}
http_server_request_duration_seconds_bucket{http_request_method="GET",http_response_status_code="200",k8s_namespace_name="shop",service_name="web",le="+Inf"} {{rate 7}}
http_server_request_duration_seconds_sum{http_request_method="GET",http_response_status_code="200",k8s_namespace_name="shop",service_name="web"} {{rate 0.3}}
http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",k8s_namespace_name="shop",service_name="web"} {{rate 7}}
http_server_request_duration_seconds_bucket{http_request_method="GET",http_response_status_code="200",k8s_namespace_name="other",service_name="web",le="+Inf"} {{rate 100}}
http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",k8s_namespace_name="other",service_name="web"} {{rate 100}}
`}},
}

// TestEveryMetricSourceReadsItsTargetsRateFromItsExporter: the real
// Prometheus scrapes each source's fixture, labelled as its usual scrape
// labels it; the source's query for Deployment web in namespace shop, and
// the target's series of its grouped query (read as the controller reads
// it, through metrics.Batch), both return the target's 7 requests a second
// and nothing of the rest, in the rate and the irate forms.
func TestEveryMetricSourceReadsItsTargetsRateFromItsExporter(t *testing.T) {
	s := newScenario(t)
	if len(sourceFixtures) != len(scaler.MetricSources) {
		t.Fatalf("%d fixtures for %d metric sources: every source needs one", len(sourceFixtures), len(scaler.MetricSources))
	}
	start := time.Now()
	for name, exporters := range sourceFixtures {
		for i, e := range exporters {
			tmpl := template.Must(template.New(name).Funcs(template.FuncMap{
				"rate": func(r float64) string { return fmt.Sprintf("%.3f", r*time.Since(start).Seconds()) },
			}).Parse(e.text))
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain; version=0.0.4")
				if err := tmpl.Execute(w, nil); err != nil {
					t.Errorf("fixture %s: %v", name, err)
				}
			}))
			t.Cleanup(srv.Close)
			hostport := strings.TrimPrefix(srv.URL, "http://")
			if err := env.AddScrapeTarget(fmt.Sprintf("fixture-%s-%d", name, i), hostport, e.labels...); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = env.RemoveScrapeTarget(hostport) })
		}
	}
	// The otel fixture is a collector's, in namespace observability.
	if err := scaler.SetExporterNamespace("otel", "observability"); err != nil {
		t.Fatal(err)
	}
	client, err := promapi.NewClient(promapi.Config{Address: env.PrometheusURL})
	if err != nil {
		t.Fatal(err)
	}
	src := metrics.NewSource(promv1.NewAPI(client), 5*time.Second, nil)
	target := scaler.QueryFields{Namespace: "shop", Deployment: "web", Service: "web"}
	for _, m := range scaler.MetricSources {
		for _, instant := range []bool{false, true} {
			spec, err := scaler.Parse("web", map[string]string{"autoscale.io/reactive": "true", "autoscale.io/metric-source": m.Name}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if instant {
				spec, err = scaler.Parse("web", map[string]string{"autoscale.io/reactive": "true", "autoscale.io/metric-source": m.Name, "autoscale.io/profile": "recommended"}, nil)
				if err != nil {
					t.Fatal(err)
				}
			}
			q, err := spec.RenderQuery("shop", "web")
			if err != nil {
				t.Fatal(err)
			}
			grouped, labels := m.Grouped(instant)
			batch := metrics.NewBatch(src, grouped, labels...)
			key, err := m.Key(target)
			if err != nil {
				t.Fatal(err)
			}
			var own, byKey float64
			s.poll(fmt.Sprintf("%s (instant %t): %s", m.Name, instant, q), 2*time.Minute, func() (bool, error) {
				v, err := localenv.Query(s.ctx, env.PrometheusURL, q)
				if err != nil {
					return false, nil
				}
				own = v
				byKey, err = batch.Rate(s.ctx, key, time.Now(), time.Minute)
				// A rate over 1m reads right once a minute of samples is in.
				return err == nil && time.Since(start) > 70*time.Second, nil
			})
			if math.Abs(own-7) > 0.35 || math.Abs(byKey-7) > 0.35 {
				t.Errorf("%s (instant %t): the target's query %q = %.2f, its series %q of %q = %.2f; want 7 each",
					m.Name, instant, q, own, key, grouped, byKey)
			}
		}
	}
}
