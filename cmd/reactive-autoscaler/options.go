package main

import (
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	logsapi "k8s.io/component-base/logs/api/v1"
	"sigs.k8s.io/yaml"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
	"github.com/autoscale-io/reactive-autoscaler/pkg/watch"
)

// Options are the controller-wide settings of `run`. Every field can be set
// in the config file (--config, YAML, the keys below); a flag given on the
// command line wins over the file, the file over the built-in default.
type Options struct {
	Kubeconfig        string          `json:"kubeconfig,omitempty"`
	Namespace         string          `json:"namespace,omitempty"`
	PrometheusURL     string          `json:"prometheusURL,omitempty"`
	PrometheusTimeout metav1.Duration `json:"prometheusTimeout,omitempty"`
	// PrometheusHTTP is how to reach Prometheus beyond its URL: TLS, basic
	// auth, a bearer token or its file, OAuth2, headers such as
	// X-Scope-OrgID, a proxy. It is the block Prometheus and Alertmanager
	// use for their own clients (prometheus/common's HTTPClientConfig,
	// keys as in prometheus.yml); config file only. Credential files are
	// read on every request, TLS files when they change: a rotated Secret
	// needs no restart.
	PrometheusHTTP     *HTTPConfig `json:"prometheusHTTPConfig,omitempty"`
	MetricsBindAddress string      `json:"metricsBindAddress,omitempty"`
	// MetricsAuth is who may read /metrics: "none" (whoever reaches the
	// port) or "kubernetes" (a token the API server accepts, for a user
	// allowed to get the non-resource URL /metrics).
	MetricsAuth string `json:"metricsAuth,omitempty"`
	// MetricsAuthPlaintext lets --metrics-auth=kubernetes run without TLS
	// (a scraper's token would cross the network in the clear): only
	// behind a mesh that encrypts, or on loopback.
	MetricsAuthPlaintext bool `json:"metricsAuthPlaintext,omitempty"`
	// MetricsTokenAudiences are the audiences a scraper's token must be
	// issued for (empty: the API server's own).
	MetricsTokenAudiences []string `json:"metricsTokenAudiences,omitempty"`
	MetricsTLSCertFile    string   `json:"metricsTLSCertFile,omitempty"`
	MetricsTLSKeyFile     string   `json:"metricsTLSKeyFile,omitempty"`
	Workers               int      `json:"workers,omitempty"`
	// NamespaceWorkers bounds one namespace's evaluations in parallel (0:
	// half the workers, at least 1).
	NamespaceWorkers int     `json:"namespaceWorkers,omitempty"`
	KubeAPIQPS       float32 `json:"kubeAPIQPS,omitempty"`
	KubeAPIBurst     int     `json:"kubeAPIBurst,omitempty"`

	WebhookBindAddress string          `json:"webhookBindAddress,omitempty"`
	WebhookTokenFile   string          `json:"webhookTokenFile,omitempty"`
	WebhookDedupWindow metav1.Duration `json:"webhookDedupWindow,omitempty"`
	WebhookTLSCertFile string          `json:"webhookTLSCertFile,omitempty"`
	WebhookTLSKeyFile  string          `json:"webhookTLSKeyFile,omitempty"`
	SpikeWindow        metav1.Duration `json:"spikeWindow,omitempty"`
	SpikeResolution    metav1.Duration `json:"spikeResolution,omitempty"`

	// QueryPolicy says whether autoscale.io/query is honoured: allowed,
	// off, or allowlist (only AllowedQueries); MinInterval bounds every
	// target's interval from below.
	QueryPolicy    string          `json:"queryPolicy,omitempty"`
	AllowedQueries []string        `json:"allowedQueries,omitempty"`
	MinInterval    metav1.Duration `json:"minInterval,omitempty"`
	// MetricSourceNamespaces names, by metric source, the namespace its
	// exporter runs in (scaler.SetExporterNamespace): only series scraped
	// there count.
	MetricSourceNamespaces map[string]string `json:"metricSourceNamespaces,omitempty"`

	// StatefulSets: also scale annotated StatefulSets (needs get, list,
	// watch, patch on statefulsets and get, update on statefulsets/scale).
	StatefulSets bool `json:"statefulSets"`
	// Kinds are more kinds to scale, each with a /scale subresource, as
	// resource.group (rollouts.argoproj.io): watched through metadata-only
	// informers, their replicas read and written through /scale.
	Kinds        []string `json:"kinds,omitempty"`
	BatchQueries bool     `json:"batchQueries"`
	LeanCache    bool     `json:"leanCache"`

	PredictorURL     string          `json:"predictorURL,omitempty"`
	PredictorTimeout metav1.Duration `json:"predictorTimeout,omitempty"`
	// PredictorHTTP is the same block for the external predictor; its
	// redirects are never followed, whatever follow_redirects says.
	PredictorHTTP *HTTPConfig `json:"predictorHTTPConfig,omitempty"`

	LeaderElect             bool            `json:"leaderElect"`
	LeaderElectionNamespace string          `json:"leaderElectionNamespace,omitempty"`
	LeaderElectionID        string          `json:"leaderElectionID,omitempty"`
	LeaseDuration           metav1.Duration `json:"leaseDuration,omitempty"`
	RenewDeadline           metav1.Duration `json:"renewDeadline,omitempty"`
	RetryPeriod             metav1.Duration `json:"retryPeriod,omitempty"`

	// Defaults are the controller-wide defaults of the per-Deployment
	// settings, keyed like the annotations without "autoscale.io/".
	Defaults map[string]string `json:"defaults,omitempty"`

	Logging *logsapi.LoggingConfiguration `json:"logging,omitempty"`

	configFile   string
	defaultFlags map[string]*string // --default-KEY flags
}

func newOptions() *Options {
	return &Options{
		PrometheusURL:           "http://localhost:9090",
		PrometheusTimeout:       metav1.Duration{Duration: 5 * time.Second},
		MetricsBindAddress:      ":8080",
		MetricsAuth:             "none",
		Workers:                 4,
		PredictorTimeout:        metav1.Duration{Duration: 2 * time.Second},
		BatchQueries:            true,
		StatefulSets:            true,
		LeanCache:               true,
		QueryPolicy:             string(watch.QueryAllowed),
		MinInterval:             metav1.Duration{Duration: time.Second},
		KubeAPIQPS:              50,
		KubeAPIBurst:            100,
		WebhookDedupWindow:      metav1.Duration{Duration: 30 * time.Second},
		SpikeWindow:             metav1.Duration{Duration: 30 * time.Second},
		SpikeResolution:         metav1.Duration{Duration: time.Second},
		LeaderElect:             true,
		LeaderElectionNamespace: inClusterNamespace(),
		LeaderElectionID:        "reactive-autoscaler",
		LeaseDuration:           metav1.Duration{Duration: 15 * time.Second},
		RenewDeadline:           metav1.Duration{Duration: 10 * time.Second},
		RetryPeriod:             metav1.Duration{Duration: 500 * time.Millisecond},
		Defaults:                map[string]string{},
		Logging:                 logsapi.NewLoggingConfiguration(),
		defaultFlags:            map[string]*string{},
	}
}

// AddFlags registers every option, with its default, on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.configFile, "config", "", "YAML config file with any of the options below (flags given on the command line win)")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig file; empty = $KUBECONFIG, else ~/.kube/config, else the in-cluster config (as kubectl)")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "only manage Deployments in this namespace; empty = all namespaces")
	fs.StringVar(&o.PrometheusURL, "prometheus-url", o.PrometheusURL, "Prometheus HTTP API base URL")
	fs.DurationVar(&o.PrometheusTimeout.Duration, "prometheus-timeout", o.PrometheusTimeout.Duration, "timeout of one Prometheus query")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "address serving /metrics, /healthz and /readyz")
	fs.StringVar(&o.MetricsAuth, "metrics-auth", o.MetricsAuth, "who may read /metrics: none (whoever reaches the port) or kubernetes (a bearer token the API server accepts, for a user allowed to get the non-resource URL /metrics; needs create on tokenreviews and subjectaccessreviews)")
	fs.BoolVar(&o.MetricsAuthPlaintext, "metrics-auth-plaintext", o.MetricsAuthPlaintext, "allow --metrics-auth=kubernetes without --metrics-tls-cert-file (scrapers' tokens in the clear: only on loopback or behind a mesh that encrypts)")
	fs.StringSliceVar(&o.MetricsTokenAudiences, "metrics-token-audiences", o.MetricsTokenAudiences, "with --metrics-auth=kubernetes, the audiences a scraper's token must be issued for (a projected token with its own audience is no use at the API server if it leaks); empty = the API server's")
	fs.StringVar(&o.MetricsTLSCertFile, "metrics-tls-cert-file", o.MetricsTLSCertFile, "serve /metrics, /healthz and /readyz over TLS with this certificate (PEM, re-read when it changes); with --metrics-tls-key-file")
	fs.StringVar(&o.MetricsTLSKeyFile, "metrics-tls-key-file", o.MetricsTLSKeyFile, "the metrics certificate's private key (PEM)")
	fs.IntVar(&o.Workers, "workers", o.Workers, "evaluations run in parallel")
	fs.IntVar(&o.NamespaceWorkers, "namespace-workers", o.NamespaceWorkers, "evaluations of one namespace run in parallel at most (0 = half of --workers, at least 1; every worker with --namespace): a tenant whose queries are slow leaves the other workers to the others")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "queries per second to the API server, for each of the three clients (scale writes and informers; status and Events; leader election); /metrics token reviews have a client of their own at 5 QPS, burst 10")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "burst of queries to the API server, for each of the three clients")
	fs.StringVar(&o.WebhookBindAddress, "webhook-bind-address", o.WebhookBindAddress, "address serving POST /webhook/alertmanager (spike triggers); empty = no webhook")
	fs.StringVar(&o.WebhookTokenFile, "webhook-token-file", o.WebhookTokenFile, "file holding the bearer token Alertmanager must send; required with --webhook-bind-address; re-read when it changes")
	fs.DurationVar(&o.WebhookDedupWindow.Duration, "webhook-dedup-window", o.WebhookDedupWindow.Duration, "an identical notification (same group key and firing alerts) within this window triggers nothing more")
	fs.StringVar(&o.WebhookTLSCertFile, "webhook-tls-cert-file", o.WebhookTLSCertFile, "serve the webhook over TLS with this certificate (PEM); with --webhook-tls-key-file")
	fs.StringVar(&o.WebhookTLSKeyFile, "webhook-tls-key-file", o.WebhookTLSKeyFile, "the certificate's private key (PEM)")
	fs.DurationVar(&o.SpikeWindow.Duration, "spike-window", o.SpikeWindow.Duration, "after a spike trigger, evaluate the target as a spike (scale up inside the cooldown, never down) for this long")
	fs.DurationVar(&o.SpikeResolution.Duration, "spike-resolution", o.SpikeResolution.Duration, "period of the spike evaluations inside the spike window")
	fs.StringVar(&o.QueryPolicy, "query-policy", o.QueryPolicy, "whether a Deployment's autoscale.io/query is honoured: allowed, off (only the built-in queries), or allowlist (only --allowed-queries); a query runs with this controller's Prometheus access")
	fs.StringArrayVar(&o.AllowedQueries, "allowed-queries", o.AllowedQueries, "with --query-policy=allowlist: a query template a Deployment may use, exactly as written (repeatable)")
	fs.StringToStringVar(&o.MetricSourceNamespaces, "metric-source-namespace", o.MetricSourceNamespaces, "SOURCE=NAMESPACE: the namespace a metric source's exporter runs in, as the scrape labels it (repeatable); only its series count for a target. Defaults: ingress-nginx=ingress-nginx, contour=projectcontour, envoy-gateway=envoy-gateway-system, traefik=traefik; otel has none and needs one")
	fs.DurationVar(&o.MinInterval.Duration, "min-interval", o.MinInterval.Duration, "the shortest autoscale.io/interval a Deployment may set")
	fs.BoolVar(&o.StatefulSets, "statefulsets", o.StatefulSets, "also scale StatefulSets annotated autoscale.io/reactive=true (false: Deployments only, for RBAC without statefulsets)")
	fs.StringSliceVar(&o.Kinds, "kinds", o.Kinds, "more kinds to scale, each with a /scale subresource, as resource.group (for example rollouts.argoproj.io); needs get, list, watch, patch on the resource and get, update on its /scale")
	fs.BoolVar(&o.BatchQueries, "batch-queries", o.BatchQueries, "answer every target on the default query from one query grouped by service per tick of its interval (evaluations then align to those ticks); false = one query per target")
	fs.BoolVar(&o.LeanCache, "lean-cache", o.LeanCache, "cache only what decisions read of each Deployment; false (whole objects) exists to measure the difference")
	fs.StringVar(&o.PredictorURL, "predictor-url", o.PredictorURL, "base URL of the external predictive model (POST {url}/predict) for targets with autoscale.io/predictor=external; empty = none")
	fs.DurationVar(&o.PredictorTimeout.Duration, "predictor-timeout", o.PredictorTimeout.Duration, "how long a prediction may take before the decision falls back to reactive")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "elect a leader on a Lease so that several replicas can run; only the leader scales")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace, "namespace of the leader-election Lease")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", o.LeaderElectionID, "name of the leader-election Lease")
	fs.DurationVar(&o.LeaseDuration.Duration, "leader-elect-lease-duration", o.LeaseDuration.Duration, "how long a non-leader waits before taking over an unrenewed lease")
	fs.DurationVar(&o.RenewDeadline.Duration, "leader-elect-renew-deadline", o.RenewDeadline.Duration, "how long the leader retries renewing before it gives up (and exits)")
	fs.DurationVar(&o.RetryPeriod.Duration, "leader-elect-retry-period", o.RetryPeriod.Duration, "wait between leader-election attempts: the leader renews this often, and a candidate looks this often (jittered up to 2.2x)")
	for _, s := range scaler.Settings() {
		v := new(string)
		o.defaultFlags[s.Key] = v
		fs.StringVar(v, "default-"+s.Key, s.Default, "controller-wide default of autoscale.io/"+s.Key+": "+s.Help)
	}
	logsapi.AddFlags(o.Logging, fs)
}

// Complete merges the config file under the flags given on the command line.
func (o *Options) Complete(fs *pflag.FlagSet) error {
	changed := map[string]string{}
	fs.Visit(func(f *pflag.Flag) { changed[f.Name] = f.Value.String() })
	if o.configFile != "" {
		data, err := os.ReadFile(o.configFile)
		if err != nil {
			return fmt.Errorf("reading the config file: %w", err)
		}
		file := newOptions()
		file.configFile, file.defaultFlags = o.configFile, o.defaultFlags
		if err := yaml.UnmarshalStrict(data, file); err != nil {
			return fmt.Errorf("config file %s: %w", o.configFile, err)
		}
		// Relative credential and certificate paths are the file's neighbours.
		for _, c := range []*HTTPConfig{file.PrometheusHTTP, file.PredictorHTTP} {
			if c != nil {
				c.SetDirectory(filepath.Dir(o.configFile))
			}
		}
		// The flags point into *o: copy the file's values in, then give the
		// command line's flags back their values.
		*o = *file
		for name, v := range changed {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("flag --%s: %w", name, err)
			}
		}
	}
	for key, v := range o.defaultFlags {
		if _, ok := changed["default-"+key]; ok {
			o.Defaults[key] = *v
		}
	}
	return nil
}

// HTTPConfig is prometheus/common's HTTPClientConfig read as Prometheus
// reads it: strict YAML (an unknown key is an error, http_headers inline).
// The config file reaches it as JSON, which is YAML.
type HTTPConfig struct{ promconfig.HTTPClientConfig }

// UnmarshalJSON parses and validates the block.
func (h *HTTPConfig) UnmarshalJSON(b []byte) error {
	c, err := promconfig.LoadHTTPConfig(string(b))
	if err != nil {
		return err
	}
	h.HTTPClientConfig = *c
	return nil
}

// Validate checks the options; defaults are checked with the same parser
// that checks annotations.
func (o *Options) Validate() error {
	for key := range o.Defaults {
		if !slices.ContainsFunc(scaler.Settings(), func(s scaler.Setting) bool { return s.Key == key }) {
			return fmt.Errorf("config file: unknown key %q under defaults", key)
		}
	}
	// Before the defaults are parsed: a default metric source may need its
	// exporter's namespace. Applied here, once at start, for every spec
	// parsed after.
	for _, source := range slices.Sorted(maps.Keys(o.MetricSourceNamespaces)) {
		if err := scaler.SetExporterNamespace(source, o.MetricSourceNamespaces[source]); err != nil {
			return fmt.Errorf("--metric-source-namespace: %w", err)
		}
	}
	if _, err := scaler.Parse("deployment", nil, o.Defaults); err != nil {
		return fmt.Errorf("controller-wide defaults: %w", err)
	}
	switch watch.QueryPolicy(o.QueryPolicy) {
	case watch.QueryAllowed, watch.QueryOff:
	case watch.QueryAllowList:
		if len(o.AllowedQueries) == 0 {
			return fmt.Errorf("--query-policy=allowlist needs --allowed-queries")
		}
	default:
		return fmt.Errorf("--query-policy=%q: must be allowed, off or allowlist", o.QueryPolicy)
	}
	for _, k := range o.Kinds {
		if _, err := parseKind(k); err != nil {
			return err
		}
	}
	if o.MinInterval.Duration < time.Second {
		return fmt.Errorf("--min-interval=%v: must be at least 1s", o.MinInterval.Duration)
	}
	if o.PrometheusTimeout.Duration <= 0 {
		return fmt.Errorf("--prometheus-timeout=%v: must be positive", o.PrometheusTimeout.Duration)
	}
	if o.NamespaceWorkers < 0 || o.NamespaceWorkers > o.Workers {
		return fmt.Errorf("--namespace-workers=%d: must be 0 to --workers (%d)", o.NamespaceWorkers, o.Workers)
	}
	if o.Workers < 1 {
		return fmt.Errorf("--workers=%d: must be >= 1", o.Workers)
	}
	if o.WebhookBindAddress != "" && o.WebhookTokenFile == "" {
		return fmt.Errorf("--webhook-bind-address needs --webhook-token-file: the webhook is always authenticated")
	}
	if (o.WebhookTLSCertFile == "") != (o.WebhookTLSKeyFile == "") {
		return fmt.Errorf("--webhook-tls-cert-file and --webhook-tls-key-file go together")
	}
	if (o.MetricsTLSCertFile == "") != (o.MetricsTLSKeyFile == "") {
		return fmt.Errorf("--metrics-tls-cert-file and --metrics-tls-key-file go together")
	}
	if o.MetricsAuth != "none" && o.MetricsAuth != "kubernetes" {
		return fmt.Errorf("--metrics-auth=%q: must be none or kubernetes", o.MetricsAuth)
	}
	if o.MetricsAuth == "kubernetes" && o.MetricsTLSCertFile == "" && !o.MetricsAuthPlaintext {
		return fmt.Errorf("--metrics-auth=kubernetes needs --metrics-tls-cert-file: scrapers send their tokens, which must not cross the network in the clear (--metrics-auth-plaintext to allow it on loopback or behind a mesh that encrypts)")
	}
	if u, err := url.Parse(o.PrometheusURL); o.PrometheusURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--prometheus-url=%q: must be an http or https URL, such as http://prometheus.monitoring:9090", o.PrometheusURL)
	}
	if o.PredictorURL != "" {
		if u, err := url.Parse(o.PredictorURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--predictor-url=%q: must be an http or https URL", o.PredictorURL)
		}
	}
	if o.PredictorTimeout.Duration <= 0 {
		return fmt.Errorf("--predictor-timeout=%s: must be positive", o.PredictorTimeout.Duration)
	}
	if o.LeaderElect {
		ld, rd, rp := o.LeaseDuration.Duration, o.RenewDeadline.Duration, o.RetryPeriod.Duration
		if !(ld > rd && float64(rd) > 1.2*float64(rp) && rp > 0) {
			return fmt.Errorf("leader election needs lease-duration > renew-deadline > 1.2 x retry-period > 0, got %s, %s, %s", ld, rd, rp)
		}
	}
	return logsapi.Validate(o.Logging, nil, nil).ToAggregate()
}

// inClusterNamespace is the pod's namespace when running in a cluster.
func inClusterNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
		return string(b)
	}
	return "default"
}

// parseKind reads a --kinds entry, resource.group: a resource name and an
// API group (the apps kinds have their own flags).
func parseKind(s string) (schema.GroupResource, error) {
	gr := schema.ParseGroupResource(s)
	switch {
	case gr.Group == "" || !scaler.IsDNSLabel(gr.Resource) || !scaler.IsDNSSubdomain(gr.Group):
		return gr, fmt.Errorf("--kinds %q: must be resource.group, such as rollouts.argoproj.io", s)
	case gr.Group == "apps" && (gr.Resource == "deployments" || gr.Resource == "statefulsets"):
		return gr, fmt.Errorf("--kinds %q: Deployments are always scaled, and StatefulSets unless --statefulsets=false", s)
	}
	return gr, nil
}
