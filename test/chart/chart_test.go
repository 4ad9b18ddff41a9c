//go:build chart

// Package chart checks charts/reactive-autoscaler with the real helm (built
// by hack/tools into bin/): lint, render with default values and with every
// optional object on, the values schema, the restricted Pod Security level
// and least-privilege RBAC.
package chart

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
	"github.com/autoscale-io/reactive-autoscaler/pkg/simulate"
)

const chartDir = "../../charts/reactive-autoscaler"

// allOn switches on every optional object.
var allOn = []string{"--set", "serviceMonitor.enabled=true,prometheusRule.enabled=true,podDisruptionBudget.enabled=true," +
	"networkPolicy.enabled=true,grafanaDashboard.enabled=true,webhook.tls.secretName=webhook-tls,predictor.url=http://model:9400,hardened=true"}

func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := filepath.Abs("../../bin/helm")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	// Only stdout is the rendered chart: a line helm writes to stderr (a
	// warning) must not become a document. Stderr comes back with an error.
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err = cmd.Run(); err != nil {
		return out.String() + stderr.String(), err
	}
	if stderr.Len() > 0 {
		t.Logf("helm %v wrote to stderr: %s", args, stderr.String())
	}
	return out.String(), nil
}

// render returns the objects helm template produces.
func render(t *testing.T, extra ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helm(t, append([]string{"template", "rel", chartDir, "--namespace", "ops"}, extra...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", extra, err, out)
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(out), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding the rendered chart: %v", err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

func find[T any](t *testing.T, objs []*unstructured.Unstructured, kind string) []T {
	t.Helper()
	var out []T
	for _, u := range objs {
		if u.GetKind() != kind {
			continue
		}
		var v T
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &v); err != nil {
			t.Fatalf("%s %s: %v", kind, u.GetName(), err)
		}
		out = append(out, v)
	}
	return out
}

func TestLint(t *testing.T) {
	for name, args := range map[string][]string{"defaults": nil, "every optional object": allOn} {
		if out, err := helm(t, append([]string{"lint", "--strict", chartDir}, args...)...); err != nil {
			t.Errorf("helm lint --strict with %s: %v\n%s", name, err, out)
		}
	}
}

func TestRendersEveryObject(t *testing.T) {
	kinds := func(objs []*unstructured.Unstructured) []string {
		var k []string
		for _, o := range objs {
			k = append(k, o.GetKind())
		}
		slices.Sort(k)
		return slices.Compact(k)
	}
	def := kinds(render(t))
	if want := []string{"ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Role", "RoleBinding", "Secret", "Service", "ServiceAccount",
		"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}; !slices.Equal(def, want) {
		t.Errorf("default objects %v, want %v", def, want)
	}
	all := kinds(render(t, allOn...))
	for _, k := range []string{"ServiceMonitor", "PrometheusRule", "PodDisruptionBudget", "NetworkPolicy"} {
		if !slices.Contains(all, k) {
			t.Errorf("with every optional object on, no %s: %v", k, all)
		}
	}
	d := find[appsv1.Deployment](t, render(t), "Deployment")[0]
	args := strings.Join(d.Spec.Template.Spec.Containers[0].Args, " ")
	if *d.Spec.Replicas != 2 || !strings.Contains(args, "--leader-elect=true") {
		t.Errorf("default Deployment: %d replicas, args %s; want 2 with leader election", *d.Spec.Replicas, args)
	}
	hasPodName := false
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		hasPodName = hasPodName || (e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name")
	}
	if !hasPodName {
		t.Error("POD_NAME (the Lease holder identity) is not the pod name")
	}
}

func TestSchemaRejectsBadValues(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"replicaCount=two", "got string, want integer"},
		{"replicaCount=-1", "minimum: got -1, want 0"},
		{"replicaCunt=2", "additional properties 'replicaCunt' not allowed"},
		{"webhook.tokn=x", "additional properties 'tokn' not allowed"},
		{"defaults.min-replica=2", "invalid propertyName 'min-replica'"},
		{"logging.format=xml", "value must be one of"},
		{"prometheus.auth.password=x", "additional properties 'password' not allowed"},
		{"prometheus.auth.tls.caKey=ca.crt", "prometheus.auth.existingSecret, which is not set"},
		{"prometheus.auth.existingSecret=s,prometheus.auth.basicAuthPasswordKey=p,prometheus.auth.bearerTokenKey=t", "not both"},
	} {
		out, err := helm(t, "template", "rel", chartDir, "--set", tc.set)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("--set %s: err %v, output %q; want a schema error containing %q", tc.set, err, out, tc.want)
		}
	}
}

// TestSchemaKnowsEverySetting: the defaults the chart accepts are exactly
// the controller's settings.
func TestSchemaKnowsEverySetting(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			Defaults struct {
				PropertyNames struct {
					Enum []string `json:"enum"`
				} `json:"propertyNames"`
			} `json:"defaults"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range scaler.Settings() {
		want = append(want, s.Key)
	}
	got := schema.Properties.Defaults.PropertyNames.Enum
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("schema's defaults keys %v, controller's settings %v", got, want)
	}
}

func TestPodIsRestricted(t *testing.T) {
	eval, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{"defaults": nil, "every optional object": allOn} {
		d := find[appsv1.Deployment](t, render(t, args...), "Deployment")[0]
		res := psapolicy.AggregateCheckResults(eval.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()},
			&d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec))
		if !res.Allowed {
			t.Errorf("%s: the pod breaks the restricted Pod Security level: %s", name, res.ForbiddenDetail())
		}
		c := d.Spec.Template.Spec.Containers[0].SecurityContext
		if c == nil || c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem {
			t.Errorf("%s: root filesystem not read-only", name)
		}
	}
}

// TestRBACIsLeastPrivilege: what the controller may do is what it does.
func TestRBACIsLeastPrivilege(t *testing.T) {
	objs := render(t)
	rules := map[string][]rbacv1.PolicyRule{}
	for _, r := range find[rbacv1.ClusterRole](t, objs, "ClusterRole") {
		rules["ClusterRole"] = append(rules["ClusterRole"], r.Rules...)
	}
	for _, r := range find[rbacv1.Role](t, objs, "Role") {
		rules["Role "+r.Namespace] = append(rules["Role "+r.Namespace], r.Rules...)
	}
	allowed := map[string][]string{ // group/resource -> verbs
		"apps/deployments":                     {"get", "list", "watch", "patch"},
		"apps/deployments/scale":               {"get", "update"},
		"apps/statefulsets":                    {"get", "list", "watch", "patch"},
		"apps/statefulsets/scale":              {"get", "update"},
		"/events":                              {"create", "patch"},
		"autoscaling/horizontalpodautoscalers": {"get", "list", "watch"},
		"coordination.k8s.io/leases":           {"get", "list", "watch", "update", "create"},
	}
	for where, rs := range rules {
		for _, r := range rs {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					ok, known := allowed[g+"/"+res]
					if !known {
						t.Errorf("%s grants %s/%s", where, g, res)
						continue
					}
					for _, v := range r.Verbs {
						if !slices.Contains(ok, v) {
							t.Errorf("%s grants %s on %s/%s", where, v, g, res)
						}
					}
					if res == "leases" && !slices.Contains(r.Verbs, "create") && len(r.ResourceNames) != 1 {
						t.Errorf("%s: lease rights not limited to the release's own Lease: %v", where, r.ResourceNames)
					}
				}
			}
		}
	}
	if _, ok := rules["ClusterRole"]; !ok {
		t.Error("no ClusterRole for watching every namespace")
	}
	if _, ok := rules["Role ops"]; !ok {
		t.Error("no Role for the Lease in the release namespace")
	}
	// One namespace: no cluster-wide rights at all.
	if n := len(find[rbacv1.ClusterRole](t, render(t, "--set", "watchNamespace=shop"), "ClusterRole")); n != 0 {
		t.Errorf("watchNamespace=shop still renders %d ClusterRoles", n)
	}
}

// TestHardenedIsOneValue: hardened=true closes every door the defaults
// leave open: the NetworkPolicy admits only Alertmanager to the webhook and
// Prometheus to /metrics, both are served over HTTPS with a certificate the
// chart generates (valid for both Services, signed by the CA it ships in
// the Secret), /metrics asks the API server (system:auth-delegator), and the
// ServiceMonitor scrapes over TLS with a token.
func TestHardenedIsOneValue(t *testing.T) {
	def := render(t, "--set", "serviceMonitor.enabled=true")
	if n := len(find[networkingv1.NetworkPolicy](t, def, "NetworkPolicy")); n != 0 {
		t.Errorf("defaults render %d NetworkPolicies", n)
	}
	if args := strings.Join(find[appsv1.Deployment](t, def, "Deployment")[0].Spec.Template.Spec.Containers[0].Args, " "); !strings.Contains(args, "--metrics-auth=none") ||
		strings.Contains(args, "tls") {
		t.Errorf("defaults: args %s, want --metrics-auth=none and no TLS", args)
	}

	objs := render(t, "--set", "hardened=true,serviceMonitor.enabled=true")
	np := find[networkingv1.NetworkPolicy](t, objs, "NetworkPolicy")
	if len(np) != 1 || len(np[0].Spec.Ingress) != 2 {
		t.Fatalf("hardened: NetworkPolicies %+v, want one with two ingress rules", np)
	}
	for i, who := range []string{"alertmanager", "prometheus"} {
		from := np[0].Spec.Ingress[i].From
		if len(from) != 1 || from[0].PodSelector == nil || from[0].PodSelector.MatchLabels["app.kubernetes.io/name"] != who {
			t.Errorf("hardened: ingress rule %d admits %+v, want only %s pods", i, from, who)
		}
		// A pod label alone any tenant can set in a namespace of their
		// own: the namespace is named by the label the API server sets.
		if len(from) == 1 && (from[0].NamespaceSelector == nil || from[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring") {
			t.Errorf("hardened: ingress rule %d admits %s pods from namespaces %+v, want only monitoring", i, who, from[0].NamespaceSelector)
		}
	}
	d := find[appsv1.Deployment](t, objs, "Deployment")[0]
	c := d.Spec.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--metrics-auth=kubernetes", "--metrics-tls-cert-file=", "--webhook-tls-cert-file="} {
		if !strings.Contains(args, want) {
			t.Errorf("hardened: args %s lack %s", args, want)
		}
	}
	if c.LivenessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS || c.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
		t.Error("hardened: the probes do not use HTTPS")
	}

	var tlsSecret *corev1.Secret
	for _, s := range find[corev1.Secret](t, objs, "Secret") {
		if s.Type == corev1.SecretTypeTLS {
			tlsSecret = &s
		}
	}
	if tlsSecret == nil {
		t.Fatal("hardened: no TLS Secret generated")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(tlsSecret.Data["ca.crt"]) {
		t.Fatal("hardened: ca.crt holds no certificate")
	}
	block, _ := pem.Decode(tlsSecret.Data["tls.crt"])
	if block == nil {
		t.Fatal("hardened: tls.crt is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rel-reactive-autoscaler-webhook.ops.svc", "rel-reactive-autoscaler-metrics.ops.svc", "rel-reactive-autoscaler-metrics.ops.svc.cluster.local"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("hardened: the certificate does not serve %s: %v", name, err)
		}
	}
	if _, err := tls.X509KeyPair(tlsSecret.Data["tls.crt"], tlsSecret.Data["tls.key"]); err != nil {
		t.Errorf("hardened: tls.key does not match tls.crt: %v", err)
	}

	delegates := false
	for _, b := range find[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding") {
		delegates = delegates || b.RoleRef.Name == "system:auth-delegator"
	}
	if !delegates {
		t.Error("hardened: the ServiceAccount may not ask for token and access reviews")
	}
	readers := find[rbacv1.ClusterRole](t, objs, "ClusterRole")
	if !slices.ContainsFunc(readers, func(r rbacv1.ClusterRole) bool {
		return len(r.Rules) == 1 && slices.Equal(r.Rules[0].NonResourceURLs, []string{"/metrics"}) && slices.Equal(r.Rules[0].Verbs, []string{"get"})
	}) {
		t.Error("hardened: no metrics-reader ClusterRole")
	}
	sm := findUnstructured(objs, "ServiceMonitor")
	ep, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if e, _ := ep[0].(map[string]any); e["scheme"] != "https" || e["bearerTokenFile"] == nil {
		t.Errorf("hardened: the ServiceMonitor endpoint %v does not scrape over HTTPS with a token", e)
	}

	// A certificate of the user's (cert-manager) replaces the generated one.
	own := render(t, "--set", "hardened=true,webhook.tls.secretName=from-cert-manager")
	for _, s := range find[corev1.Secret](t, own, "Secret") {
		if s.Type == corev1.SecretTypeTLS {
			t.Errorf("hardened with webhook.tls.secretName still generates %s", s.Name)
		}
	}
	if v := find[appsv1.Deployment](t, own, "Deployment")[0].Spec.Template.Spec.Volumes; !slices.ContainsFunc(v, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == "from-cert-manager"
	}) {
		t.Errorf("hardened with webhook.tls.secretName: volumes %v do not mount it", v)
	}
}

func findUnstructured(objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind {
			return o
		}
	}
	return &unstructured.Unstructured{Object: map[string]any{}}
}

// TestPrometheusAuthBecomesPrometheusClientBlock: prometheus.auth (and
// predictor.auth) render the config file's prometheusHTTPConfig (and
// predictorHTTPConfig), which Prometheus' own parser accepts, with every
// credential a file of the mounted existing Secret.
func TestPrometheusAuthBecomesPrometheusClientBlock(t *testing.T) {
	objs := render(t, "--set", "prometheus.auth.existingSecret=prom-creds,prometheus.auth.basicAuthUsername=autoscaler,"+
		"prometheus.auth.basicAuthPasswordKey=password,prometheus.auth.tls.caKey=ca.crt,prometheus.auth.tls.certKey=tls.crt,"+
		"prometheus.auth.tls.keyKey=tls.key,prometheus.auth.tls.serverName=prometheus.monitoring.svc,"+
		"prometheus.auth.headers.X-Scope-OrgID=tenant-a,prometheus.auth.proxyURL=http://proxy:3128")
	var file map[string]any
	if err := yaml.Unmarshal([]byte(find[corev1.ConfigMap](t, objs, "ConfigMap")[0].Data["config.yaml"]), &file); err != nil {
		t.Fatal(err)
	}
	block, err := yaml.Marshal(file["prometheusHTTPConfig"])
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := promconfig.LoadHTTPConfig(string(block))
	if err != nil {
		t.Fatalf("Prometheus' parser refuses the rendered block: %v\n%s", err, block)
	}
	const dir = "/etc/reactive-autoscaler/prometheus/"
	if cfg.BasicAuth == nil || cfg.BasicAuth.Username != "autoscaler" || cfg.BasicAuth.PasswordFile != dir+"password" ||
		cfg.TLSConfig.CAFile != dir+"ca.crt" || cfg.TLSConfig.CertFile != dir+"tls.crt" || cfg.TLSConfig.KeyFile != dir+"tls.key" ||
		cfg.TLSConfig.ServerName != "prometheus.monitoring.svc" || cfg.ProxyURL.String() != "http://proxy:3128" ||
		cfg.HTTPHeaders == nil || !slices.Equal(cfg.HTTPHeaders.Headers["X-Scope-OrgID"].Values, []string{"tenant-a"}) {
		t.Errorf("rendered block:\n%s", block)
	}
	d := find[appsv1.Deployment](t, objs, "Deployment")[0]
	mounted := slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.MountPath+"/" == dir && m.ReadOnly
	}) && slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == "prom-creds"
	})
	if !mounted {
		t.Error("the existing Secret is not mounted read-only at " + dir)
	}
	// The predictor's client takes the same values.
	objs = render(t, "--set", "predictor.url=https://model:9400,predictor.auth.existingSecret=model-creds,predictor.auth.bearerTokenKey=token,"+
		"predictor.auth.tls.caKey=ca.crt")
	if err := yaml.Unmarshal([]byte(find[corev1.ConfigMap](t, objs, "ConfigMap")[0].Data["config.yaml"]), &file); err != nil {
		t.Fatal(err)
	}
	block, _ = yaml.Marshal(file["predictorHTTPConfig"])
	cfg, err = promconfig.LoadHTTPConfig(string(block))
	if err != nil || cfg.Authorization == nil || cfg.Authorization.CredentialsFile != "/etc/reactive-autoscaler/predictor/token" ||
		cfg.TLSConfig.CAFile != "/etc/reactive-autoscaler/predictor/ca.crt" {
		t.Errorf("predictor block %v:\n%s", err, block)
	}
	if !slices.ContainsFunc(find[appsv1.Deployment](t, objs, "Deployment")[0].Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == "model-creds"
	}) {
		t.Error("the predictor's Secret is not mounted")
	}
	if def := find[corev1.ConfigMap](t, render(t), "ConfigMap")[0].Data["config.yaml"]; def == "" || strings.Contains(def, "prometheusHTTPConfig") {
		t.Errorf("the defaults' config file:\n%s\nwant one without prometheusHTTPConfig", def)
	}
}

// TestMetricsAuthAloneServesTLSAndTheRestIsExplicit: metricsAuth
// kubernetes without hardened still serves /metrics over TLS (tokens never
// in the clear) and leaves the webhook as it was; without the admission
// policy the chart refuses to render unless the unbounded patch is
// accepted; an image digest pins the image.
func TestMetricsAuthAloneServesTLSAndTheRestIsExplicit(t *testing.T) {
	objs := render(t, "--set", "metricsAuth=kubernetes")
	args := strings.Join(find[appsv1.Deployment](t, objs, "Deployment")[0].Spec.Template.Spec.Containers[0].Args, " ")
	if !strings.Contains(args, "--metrics-auth=kubernetes") || !strings.Contains(args, "--metrics-tls-cert-file=") || strings.Contains(args, "--webhook-tls-cert-file") {
		t.Errorf("metricsAuth=kubernetes: args %s, want metrics over TLS and the webhook unchanged", args)
	}
	if findUnstructured(objs, "Secret") == nil {
		t.Error("metricsAuth=kubernetes: no TLS Secret generated")
	}
	out, err := helm(t, "template", "t", "../../charts/reactive-autoscaler", "--set", "admissionPolicy.enabled=false")
	if err == nil || !strings.Contains(out, "acceptUnboundedPatch") {
		t.Errorf("admissionPolicy.enabled=false rendered (%v): %s", err, out)
	}
	objs = render(t, "--set", "admissionPolicy.enabled=false,admissionPolicy.acceptUnboundedPatch=true")
	if n := len(find[appsv1.Deployment](t, objs, "Deployment")); n != 1 {
		t.Errorf("with the unbounded patch accepted: %d Deployments", n)
	}
	digest := "sha256:" + strings.Repeat("ab", 32)
	objs = render(t, "--set", "image.repository=registry.example/ra,image.digest="+digest)
	if img := find[appsv1.Deployment](t, objs, "Deployment")[0].Spec.Template.Spec.Containers[0].Image; img != "registry.example/ra@"+digest {
		t.Errorf("image %q, want pulled by digest", img)
	}
}

// TestMakeImageTagsWhatTheChartPulls: the tag make image gives the tarball
// is the image the chart's defaults ask for.
func TestMakeImageTagsWhatTheChartPulls(t *testing.T) {
	out, err := exec.Command("make", "-s", "-n", "-C", "../..", "image").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n image: %v\n%s", err, out)
	}
	img := find[appsv1.Deployment](t, render(t), "Deployment")[0].Spec.Template.Spec.Containers[0].Image
	if !strings.Contains(string(out), "--tag "+img+" ") {
		t.Errorf("make image tags other than the chart's image %q:\n%s", img, out)
	}
}

// TestTheSpikeRuleFiresOneScrapeAfterAStepAtItsScrapeInterval renders the
// PrometheusRule for a 15 s and a 30 s scrape (and a counter with another
// service label) and runs Prometheus' own rule unit test on it: quiet at a
// steady 5 RPS, firing at the first sample after a step to 150 RPS, with
// the alert's service label the webhook matches.
func TestTheSpikeRuleFiresOneScrapeAfterAStepAtItsScrapeInterval(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: run `make deps` (Debian package prometheus)")
	}
	for _, c := range []struct {
		scrape        int // seconds
		metric, label string
		// set are more values; series the input's labels and alert the
		// alert's, when not the plain namespace and service label's.
		set, series, alert string
	}{
		{scrape: 15, metric: "http_requests_total", label: "service"},
		{scrape: 30, metric: "http_requests_total", label: "service"},
		{scrape: 15, metric: "istio_requests_total", label: "destination_service_name"},
		// A gateway's counter names the target in labels of its own: the
		// alert must still carry namespace shop, not the exporter's.
		{scrape: 15, metric: "nginx_ingress_controller_requests", label: "exported_service",
			set:    ",prometheusRule.namespaceLabel=exported_namespace,prometheusRule.exporterNamespace=ingress-nginx",
			series: `namespace="ingress-nginx",exported_namespace="shop",exported_service="web"`,
			alert:  "{exported_namespace: shop, exported_service: web, namespace: shop, service: web, severity: warning}"},
		{scrape: 15, metric: "traefik_service_requests_total", label: "service",
			set:    `,prometheusRule.nameLabel=exported_service,prometheusRule.nameRegex=([a-z0-9]+)-([a-z0-9]+)-[a-z0-9]+@kubernetescrd,prometheusRule.exporterNamespace=traefik`,
			series: `namespace="traefik",exported_service="shop-web-80@kubernetescrd"`,
			alert:  "{exported_service: shop-web-80@kubernetescrd, namespace: shop, service: web, severity: warning}"},
	} {
		t.Run(fmt.Sprintf("%ds %s", c.scrape, c.metric), func(t *testing.T) {
			objs := render(t, "--set", fmt.Sprintf("prometheusRule.enabled=true,prometheusRule.scrapeInterval=%ds,prometheusRule.metric=%s,prometheusRule.serviceLabel=%s",
				c.scrape, c.metric, c.label)+c.set)
			var rule *unstructured.Unstructured
			for _, o := range objs {
				if o.GetKind() == "PrometheusRule" {
					rule = o
				}
			}
			if rule == nil {
				t.Fatal("no PrometheusRule rendered")
			}
			// make bench-quality models this rule (simulate.ChartAlerting):
			// the same windows, or the model is of another rule.
			a := simulate.ChartAlerting(time.Duration(c.scrape) * time.Second)
			expr := fmt.Sprint(rule.Object["spec"])
			for _, w := range []string{fmt.Sprintf("irate(%s[%gs])", c.metric, a.Short.Seconds()), fmt.Sprintf("rate(%s[%gs] offset %gs)", c.metric, a.Long.Seconds(), a.Short.Seconds())} {
				if !strings.Contains(expr, w) && c.set == "" {
					t.Errorf("the rule has no %s, which simulate.ChartAlerting models:\n%s", w, expr)
				}
			}
			dir := t.TempDir()
			groups, err := yaml.Marshal(rule.Object["spec"])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), groups, 0o644); err != nil {
				t.Fatal(err)
			}
			// 20 scrapes at 5 RPS, then 150 RPS from the 21st on.
			step := 20 * c.scrape
			unit := fmt.Sprintf(`rule_files: [rules.yaml]
evaluation_interval: 5s
tests:
  - interval: %[1]ds
    input_series:
      - series: '%[2]s{namespace="shop",%[3]s="web"}'
        values: '0+%[4]dx20 %[5]d+%[6]dx10'
    alert_rule_test:
      - eval_time: %[7]ds
        alertname: RequestRateSpike
        exp_alerts: []
      - eval_time: %[8]ds
        alertname: RequestRateSpike
        exp_alerts:
          - exp_labels: {namespace: shop, %[3]s: web, service: web, severity: warning}
            exp_annotations: {summary: "Request rate of web more than doubled within %[1]ds"}
`, c.scrape, c.metric, c.label, 5*c.scrape, 5*step+150*c.scrape, 150*c.scrape, step, step+c.scrape)
			if c.label == "service" {
				unit = strings.Replace(unit, "service: web, service: web", "service: web", 1)
			}
			if c.series != "" {
				unit = strings.Replace(unit, fmt.Sprintf(`%s{namespace="shop",%s="web"}`, c.metric, c.label), c.metric+"{"+c.series+"}", 1)
				unit = strings.Replace(unit, fmt.Sprintf("{namespace: shop, %s: web, service: web, severity: warning}", c.label), c.alert, 1)
				unit = strings.Replace(unit, "{namespace: shop, service: web, severity: warning}", c.alert, 1)
			}
			if err := os.WriteFile(filepath.Join(dir, "unit.yaml"), []byte(unit), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(promtool, "test", "rules", "unit.yaml")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool test rules: %v\n%s\nrules:\n%s", err, out, groups)
			}
		})
	}
}

// TestKindsGetTheirRightsAndTheAdmissionPolicy: each kinds entry becomes
// the controller's --kinds (config file), get/list/watch/patch on its
// resource and get/update on its /scale, and a rule of the admission policy
// that bounds the patch to the status annotation; nothing else is granted.
func TestKindsGetTheirRightsAndTheAdmissionPolicy(t *testing.T) {
	objs := render(t, "--set", "kinds={rollouts.argoproj.io}")
	var got []string
	for _, r := range find[rbacv1.ClusterRole](t, objs, "ClusterRole") {
		for _, rule := range r.Rules {
			if slices.Contains(rule.APIGroups, "argoproj.io") {
				got = append(got, strings.Join(rule.Resources, ",")+":"+strings.Join(rule.Verbs, ","))
			}
		}
	}
	if want := []string{"rollouts:get,list,watch,patch", "rollouts/scale:get,update"}; !slices.Equal(got, want) {
		t.Errorf("rights on argoproj.io %v, want %v", got, want)
	}
	var config, policy bool
	for _, o := range objs {
		switch o.GetKind() {
		case "ConfigMap":
			data, _, _ := unstructured.NestedString(o.Object, "data", "config.yaml")
			config = config || strings.Contains(data, "kinds:\n  - \"rollouts.argoproj.io\"")
		case "ValidatingAdmissionPolicy":
			rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "matchConstraints", "resourceRules")
			for _, r := range rules {
				m := r.(map[string]any)
				policy = policy || (fmt.Sprint(m["apiGroups"]) == "[argoproj.io]" && fmt.Sprint(m["resources"]) == "[rollouts]")
			}
		}
	}
	if !config || !policy {
		t.Errorf("rollouts.argoproj.io in the config file %t, in the admission policy %t; want both", config, policy)
	}
	if _, err := helm(t, "template", "rel", chartDir, "--set", "kinds={Rollouts}"); err == nil {
		t.Error("kinds={Rollouts} (no group) rendered; the schema must refuse it")
	}
}
