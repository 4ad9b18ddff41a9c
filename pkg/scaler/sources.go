package scaler

import (
	"fmt"
	"slices"
	"strings"
	"text/template"
)

// A MetricSource is a named, operator-approved request counter: where a
// kind of exporter counts requests and which of its labels name a target.
// autoscale.io/metric-source picks one instead of writing PromQL; its
// queries are built in, so --query-policy=off allows them, and its rates
// for every target come from one grouped query per tick, as the default
// query's do.
type MetricSource struct {
	Name string
	// Exporter says what exports the counter and what the labels assume,
	// for the reference.
	Exporter string
	// Metric is the counter.
	Metric string
	// Constant are matchers every series of the source needs ("" none).
	Constant string
	// Target are the matchers of one target's series: a template over
	// QueryFields.
	Target string
	// Key names a target's series in the grouped query: either GroupBy
	// (labels whose values, joined with "/", are the key) or KeyLabel,
	// KeyRegex and KeyReplacement (a label_replace that builds the key
	// from a composite label, such as Contour's namespace_service_port).
	// TargetKey is the key a target reads, a template over QueryFields.
	GroupBy                            []string
	KeyLabel, KeyRegex, KeyReplacement string
	TargetKey                          string
	// ExporterNamespace is who may count a target's requests: the
	// namespace the exporter's pods run in, as the scrape attaches it
	// (label ScrapeNamespaceLabel, which an exporter cannot set itself).
	// The target labels above are the exporter's own, so any tenant's app
	// could expose them; the scrape's namespace it cannot. "" is the
	// target's own namespace: the exporter runs beside the application (a
	// sidecar, the app itself). The operator sets it per source
	// (SetExporterNamespace, --metric-source-namespace).
	ExporterNamespace string
	// Shared: the exporter counts for every namespace (a gateway, a
	// collector), so ExporterNamespace must name where it runs; a source
	// with none set is refused.
	Shared bool
}

// unsetNamespace is a shared source's scope until the operator names its
// exporter's namespace: no pod's namespace (not a DNS label), so that the
// query, shown in the reference, selects nothing.
const unsetNamespace = "(set --metric-source-namespace)"

// ScrapeNamespaceLabel is the label a scrape attaches for the namespace of
// the pod it scraped (the Prometheus Operator's, and the usual relabelling
// of __meta_kubernetes_namespace). An exporter's own label of that name
// becomes exported_namespace, so it names the scraped pod's namespace.
const ScrapeNamespaceLabel = "namespace"

// GroupKeyLabel is the label a grouped query built with label_replace keys
// its series by.
const GroupKeyLabel = "autoscale_key"

// DefaultMetricSource is the source of DefaultQuery and FastQuery.
const DefaultMetricSource = "http"

// MetricSources are the built-in sources, by name.
var MetricSources = []MetricSource{
	{
		Name:     DefaultMetricSource,
		Exporter: "an application's own http_requests_total, scraped through a ServiceMonitor (which attaches namespace and service)",
		Metric:   "http_requests_total", Target: `namespace="{{.Namespace}}",service="{{.Service}}"`,
		GroupBy: []string{"namespace", "service"}, TargetKey: "{{.Namespace}}/{{.Service}}",
	},
	{
		Name: "ingress-nginx",
		Exporter: "ingress-nginx's nginx_ingress_controller_requests, scraped through a ServiceMonitor: the backend's namespace and service " +
			"become exported_namespace and exported_service (the scrape's own namespace and service are the controller's)",
		Metric: "nginx_ingress_controller_requests", Target: `exported_namespace="{{.Namespace}}",exported_service="{{.Service}}"`,
		GroupBy: []string{"exported_namespace", "exported_service"}, TargetKey: "{{.Namespace}}/{{.Service}}",
		ExporterNamespace: "ingress-nginx", Shared: true,
	},
	{
		Name:     "istio",
		Exporter: "Istio's istio_requests_total as the destination's sidecar reports it (reporter=\"destination\")",
		Metric:   "istio_requests_total", Constant: `reporter="destination"`,
		Target:  `destination_service_namespace="{{.Namespace}}",destination_service_name="{{.Service}}"`,
		GroupBy: []string{"destination_service_namespace", "destination_service_name"}, TargetKey: "{{.Namespace}}/{{.Service}}",
	},
	{
		Name: "linkerd",
		Exporter: "Linkerd's proxy request_total for inbound requests, with the namespace and deployment labels linkerd-viz's scrape " +
			"attaches (keyed by the workload's name, not the service)",
		Metric: "request_total", Constant: `direction="inbound"`, Target: `namespace="{{.Namespace}}",deployment="{{.Deployment}}"`,
		GroupBy: []string{"namespace", "deployment"}, TargetKey: "{{.Namespace}}/{{.Deployment}}",
	},
	{
		Name:     "contour",
		Exporter: "Envoy's envoy_cluster_upstream_rq_total behind Contour, whose cluster names are namespace_service_port",
		Metric:   "envoy_cluster_upstream_rq_total", Target: `envoy_cluster_name=~"{{.Namespace}}_{{.Service}}_[0-9]+"`,
		KeyLabel: "envoy_cluster_name", KeyRegex: `([a-z0-9-]+)_([a-z0-9-]+)_[0-9]+`, KeyReplacement: "$1/$2",
		TargetKey: "{{.Namespace}}/{{.Service}}", ExporterNamespace: "projectcontour", Shared: true,
	},
	{
		Name: "envoy-gateway",
		Exporter: "Envoy's envoy_cluster_upstream_rq_total behind Envoy Gateway, whose cluster names are httproute/namespace/route/rule/N: " +
			"autoscale.io/service names the HTTPRoute",
		Metric: "envoy_cluster_upstream_rq_total", Target: `envoy_cluster_name=~"httproute/{{.Namespace}}/{{.Service}}/rule/[0-9]+"`,
		KeyLabel: "envoy_cluster_name", KeyRegex: `httproute/([a-z0-9-]+)/([a-z0-9-]+)/rule/[0-9]+`, KeyReplacement: "$1/$2",
		TargetKey: "{{.Namespace}}/{{.Service}}", ExporterNamespace: "envoy-gateway-system", Shared: true,
	},
	{
		Name: "traefik",
		Exporter: "Traefik's traefik_service_requests_total for IngressRoutes (namespace-service-port@kubernetescrd), scraped through a " +
			"ServiceMonitor (Traefik's service label becomes exported_service)",
		Metric: "traefik_service_requests_total", Target: `exported_service=~"{{.Namespace}}-{{.Service}}-[a-z0-9]+@kubernetescrd"`,
		KeyLabel: "exported_service", KeyRegex: `([a-z0-9]+-[a-z0-9]+)-[a-z0-9]+@kubernetescrd`, KeyReplacement: "$1",
		TargetKey: "{{.Namespace}}-{{.Service}}", ExporterNamespace: "traefik", Shared: true,
	},
	{
		Name: "otel",
		Exporter: "OpenTelemetry's http.server.request.duration histogram (http_server_request_duration_seconds_count), with the " +
			"resource attributes k8s.namespace.name and service.name promoted to labels",
		Metric: "http_server_request_duration_seconds_count", Target: `k8s_namespace_name="{{.Namespace}}",service_name="{{.Service}}"`,
		GroupBy: []string{"k8s_namespace_name", "service_name"}, TargetKey: "{{.Namespace}}/{{.Service}}", Shared: true,
	},
}

// MetricSourceNamed returns the built-in source called name.
func MetricSourceNamed(name string) (*MetricSource, bool) {
	i := slices.IndexFunc(MetricSources, func(m MetricSource) bool { return m.Name == name })
	if i < 0 {
		return nil, false
	}
	return &MetricSources[i], true
}

// MetricSourceNames lists the built-in sources' names.
func MetricSourceNames() []string {
	names := make([]string, len(MetricSources))
	for i, m := range MetricSources {
		names[i] = m.Name
	}
	return names
}

// SetExporterNamespace sets the namespace source's exporter runs in
// (MetricSource.ExporterNamespace): "" is the target's own. The operator
// calls it at start, before any spec is parsed.
func SetExporterNamespace(source, namespace string) error {
	m, ok := MetricSourceNamed(source)
	switch {
	case !ok:
		return fmt.Errorf("no metric source %q (one of %s)", source, strings.Join(MetricSourceNames(), ", "))
	case namespace != "" && !IsDNSLabel(namespace):
		return fmt.Errorf("metric source %s: namespace %q is not a DNS label", source, namespace)
	case namespace == "" && m.Shared:
		return fmt.Errorf("metric source %s: its exporter counts for every namespace; name the namespace it runs in", source)
	}
	m.ExporterNamespace = namespace
	return nil
}

// Admits reports why a target cannot use the source, or nil. A name
// joined with "-" (Traefik's namespace-service) is one another namespace
// could produce when either part holds a "-" itself: namespace shop's
// service payments-api and namespace shop-payments' service api are both
// shop-payments-api, and each would read the other's traffic.
func (m *MetricSource) Admits(f QueryFields) error {
	if strings.Contains(m.TargetKey, "}}-{{") && (strings.Contains(f.Namespace, "-") || strings.Contains(f.Service, "-")) {
		return fmt.Errorf("%s names a target %s-%s, which another namespace could produce too (neither a namespace nor a service with \"-\" can be told apart); use a service and namespace without \"-\", or another source", m.Name, f.Namespace, f.Service)
	}
	return nil
}

// scope is the matcher that ties a series to who exported it: the
// exporter's namespace, or the target's (a template), or nothing when
// the target's matchers are that label already.
func (m *MetricSource) scope() string {
	switch {
	case m.ExporterNamespace != "":
		return fmt.Sprintf("%s=%q", ScrapeNamespaceLabel, m.ExporterNamespace)
	case m.Shared:
		return fmt.Sprintf("%s=%q", ScrapeNamespaceLabel, unsetNamespace)
	case slices.Contains(m.GroupBy, ScrapeNamespaceLabel):
		return ""
	}
	return ScrapeNamespaceLabel + `="{{.Namespace}}"`
}

// scopedByTarget reports whether the scope is the target's own namespace
// and not already among its labels: the grouped query then groups by the
// scrape's namespace too, and a target's key begins with it.
func (m *MetricSource) scopedByTarget() bool {
	return m.ExporterNamespace == "" && !m.Shared && !slices.Contains(m.GroupBy, ScrapeNamespaceLabel)
}

// rateFunc is the PromQL function of a query: rate over the window, or
// irate (the last two samples in it) for the instant form.
func rateFunc(instant bool) string {
	if instant {
		return "irate"
	}
	return "rate"
}

func (m *MetricSource) selector(matchers ...string) string {
	var nonEmpty []string
	for _, s := range matchers {
		if s != "" {
			nonEmpty = append(nonEmpty, s)
		}
	}
	if len(nonEmpty) == 0 {
		return m.Metric
	}
	return m.Metric + "{" + strings.Join(nonEmpty, ",") + "}"
}

// Query is the template of one target's rate over 1m, or its irate.
func (m *MetricSource) Query(instant bool) string {
	return fmt.Sprintf("sum(%s(%s[1m]))", rateFunc(instant), m.selector(m.Constant, m.scope(), m.Target))
}

// Grouped is Query for every target at once, and the labels its series
// are keyed by: the series of key K has the value Query has for the
// target whose Key is K.
func (m *MetricSource) Grouped(instant bool) (string, []string) {
	if m.KeyLabel == "" {
		by, scope := m.GroupBy, m.scope()
		if m.scopedByTarget() {
			by, scope = append([]string{ScrapeNamespaceLabel}, m.GroupBy...), ""
		}
		inner := fmt.Sprintf("%s(%s[1m])", rateFunc(instant), m.selector(m.Constant, scope))
		return fmt.Sprintf("sum by (%s) (%s)", strings.Join(by, ", "), inner), by
	}
	// Only series whose composite name the regex matches: label_replace
	// leaves a series it does not match as it was, with whatever
	// autoscale_key label it already had.
	inner := fmt.Sprintf("%s(%s[1m])", rateFunc(instant), m.selector(m.Constant, m.scope(), fmt.Sprintf("%s=~%q", m.KeyLabel, m.KeyRegex)))
	return fmt.Sprintf("sum by (%s) (label_replace(%s, %q, %q, %q, %q))", GroupKeyLabel, inner, GroupKeyLabel, m.KeyReplacement, m.KeyLabel, m.KeyRegex),
		[]string{GroupKeyLabel}
}

// Key is the key of a target's series in the grouped query.
func (m *MetricSource) Key(f QueryFields) (string, error) {
	key := m.TargetKey
	if m.scopedByTarget() {
		key = "{{.Namespace}}/" + key
	}
	t, err := template.New("key").Option("missingkey=error").Parse(key)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	err = t.Execute(&b, f)
	return b.String(), err
}
