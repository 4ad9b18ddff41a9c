package localenv

// The real peers of `make bench-real`: the HorizontalPodAutoscaler
// controller of kube-controller-manager, reading Prometheus through
// prometheus-adapter (the custom metrics API), and KEDA (its operator and
// metrics adapter, the external metrics API). Both APIs are served by
// processes on loopback behind the API server's aggregation layer: an
// APIService whose Service is an ExternalName for localhost, which the
// aggregator dials as it would a cluster IP.

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// frontProxyArgs writes the front-proxy CA and the client certificate
// the aggregator presents to the APIs it proxies, and returns the API
// server's flags for them (the requestheader authentication those APIs
// delegate to, through the extension-apiserver-authentication ConfigMap).
func frontProxyArgs(pki string) ([]string, error) {
	dir := filepath.Join(pki, "front-proxy")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca := filepath.Join(pki, "front-proxy-ca.crt")
	if err := writeCertPair(dir, ca, "localenv-front-proxy-ca", "front-proxy-client", x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	return []string{"--requestheader-client-ca-file", ca, "--requestheader-allowed-names", "front-proxy-client",
		"--requestheader-username-headers", "X-Remote-User", "--requestheader-group-headers", "X-Remote-Group",
		"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
		"--proxy-client-cert-file", filepath.Join(dir, "tls.crt"), "--proxy-client-key-file", filepath.Join(dir, "tls.key")}, nil
}

// Apply runs kubectl apply (server-side) on manifest, a YAML stream.
func (e *Env) Apply(ctx context.Context, manifest string) error {
	return e.kubectl(ctx, manifest, "apply", "--server-side", "--force-conflicts", "-f", "-")
}

func (e *Env) kubectl(ctx context.Context, stdin string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(e.opts.BinDir, "kubectl"), append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// registerAPI points the APIService of group at versions to port on
// loopback, through an ExternalName Service in namespace, and waits until
// the aggregator finds it Available.
func (e *Env) registerAPI(ctx context.Context, namespace, service, group string, port int, versions ...string) error {
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: v1
kind: Service
metadata: {name: %[2]s, namespace: %[1]s}
spec: {type: ExternalName, externalName: localhost}
`, namespace, service)
	for i, v := range versions {
		// The loopback APIs serve self-signed certificates.
		manifest += fmt.Sprintf(`---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: %[3]s.%[4]s}
spec:
  group: %[4]s
  version: %[3]s
  groupPriorityMinimum: 100
  versionPriority: %[6]d
  insecureSkipTLSVerify: true
  service: {name: %[2]s, namespace: %[1]s, port: %[5]d}
`, namespace, service, v, group, port, 200-i)
	}
	if err := e.Apply(ctx, manifest); err != nil {
		return err
	}
	for _, v := range versions {
		if err := e.kubectl(ctx, "", "wait", "--for=condition=Available", "--timeout=90s", "apiservice/"+v+"."+group); err != nil {
			return err
		}
	}
	return nil
}

// StartPrometheusAdapter runs prometheus-adapter on the environment's
// Prometheus with config (its rules), serving custom.metrics.k8s.io to the
// HPA controller; needs Options.Peers.
func (e *Env) StartPrometheusAdapter(ctx context.Context, config string) error {
	if !e.opts.Peers {
		return fmt.Errorf("the custom metrics API needs Options.Peers (the aggregation layer)")
	}
	dir := filepath.Join(e.Dir, "prometheus-adapter")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		return err
	}
	port, err := FreePort()
	if err != nil {
		return err
	}
	e.logf("starting prometheus-adapter on %s", addr(port))
	p, err := e.StartProcess("prometheus-adapter", filepath.Join(e.opts.BinDir, "prometheus-adapter"), nil,
		"--secure-port", fmt.Sprint(port), "--bind-address", "127.0.0.1", "--cert-dir", dir,
		"--lister-kubeconfig", e.Kubeconfig, "--authentication-kubeconfig", e.Kubeconfig, "--authorization-kubeconfig", e.Kubeconfig,
		"--prometheus-url", e.PrometheusURL, "--metrics-relist-interval", "30s", "--config", file, "--v", "2")
	if err != nil {
		return err
	}
	if err := waitHTTPS(ctx, fmt.Sprintf("https://%s/healthz", addr(port)), p); err != nil {
		return fmt.Errorf("prometheus-adapter: %w\n%s", err, e.Logs("prometheus-adapter", 20))
	}
	return e.registerAPI(ctx, "custom-metrics", "prometheus-adapter", "custom.metrics.k8s.io", port, "v1beta2", "v1beta1")
}

// KEDANamespace holds KEDA's own objects (its Service and Events).
const KEDANamespace = "keda"

// StartKEDA installs KEDA's CRDs (bin/keda-crds) and runs its operator
// and metrics adapter, watching every namespace, the adapter serving
// external.metrics.k8s.io; needs Options.Peers. They talk gRPC over TLS
// with a certificate made for them, as KEDA's own rotation would.
func (e *Env) StartKEDA(ctx context.Context) error {
	if !e.opts.Peers {
		return fmt.Errorf("KEDA needs Options.Peers (the aggregation layer)")
	}
	crds, err := filepath.Glob(filepath.Join(e.opts.BinDir, "keda-crds", "*.yaml"))
	if err != nil || len(crds) == 0 {
		return fmt.Errorf("no KEDA CRDs in %s: run hack/tools/build.sh keda", filepath.Join(e.opts.BinDir, "keda-crds"))
	}
	var docs [][]byte
	for _, f := range crds {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		docs = append(docs, b)
	}
	docs = append(docs, fmt.Appendf(nil, "apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", KEDANamespace))
	if err := e.Apply(ctx, joinDocuments(docs)); err != nil {
		return err
	}
	if err := e.kubectl(ctx, "", "wait", "--for=condition=Established", "--timeout=60s", "crd/scaledobjects.keda.sh"); err != nil {
		return err
	}
	certs := filepath.Join(e.Dir, "keda-certs")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		return err
	}
	if err := writeCertPair(certs, filepath.Join(certs, "ca.crt"), "localenv-keda-ca", "localhost",
		x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth); err != nil {
		return err
	}
	ports, err := freePorts(5)
	if err != nil {
		return err
	}
	probe, grpc, secure := ports[1], ports[2], ports[3]
	environ := []string{"KUBECONFIG=" + e.Kubeconfig, "WATCH_NAMESPACE=", "POD_NAMESPACE=" + KEDANamespace,
		"KEDA_CLUSTER_OBJECT_NAMESPACE=" + KEDANamespace}
	e.logf("starting the KEDA operator (gRPC on %s)", addr(grpc))
	op, err := e.StartProcess("keda-operator", filepath.Join(e.opts.BinDir, "keda-operator"), environ,
		"--metrics-bind-address", addr(ports[0]), "--health-probe-bind-address", addr(probe),
		"--metrics-service-bind-address", addr(grpc), "--cert-dir", certs, "--ca-dir", certs,
		"--enable-cert-rotation=false", "--enable-webhook-patching=false", "--enable-apiservice-patching=false",
		"--leader-elect=false", "--zap-log-level", "info")
	if err != nil {
		return err
	}
	if err := WaitReady(ctx, fmt.Sprintf("http://%s/readyz", addr(probe)), op, time.Minute); err != nil {
		return fmt.Errorf("keda-operator: %w\n%s", err, e.Logs("keda-operator", 20))
	}
	e.logf("starting the KEDA metrics adapter on %s", addr(secure))
	ad, err := e.StartProcess("keda-adapter", filepath.Join(e.opts.BinDir, "keda-adapter"), environ,
		"--secure-port", fmt.Sprint(secure), "--bind-address", "127.0.0.1", "--cert-dir", certs,
		"--tls-cert-file", filepath.Join(certs, "tls.crt"), "--tls-private-key-file", filepath.Join(certs, "tls.key"),
		"--lister-kubeconfig", e.Kubeconfig, "--authentication-kubeconfig", e.Kubeconfig, "--authorization-kubeconfig", e.Kubeconfig,
		"--metrics-service-address", addr(grpc), "--metrics-service-grpc-authority", "localhost", "--port", fmt.Sprint(ports[4]))
	if err != nil {
		return err
	}
	if err := waitHTTPS(ctx, fmt.Sprintf("https://%s/healthz", addr(secure)), ad); err != nil {
		return fmt.Errorf("keda-adapter: %w\n%s", err, e.Logs("keda-adapter", 20))
	}
	return e.registerAPI(ctx, KEDANamespace, "keda-metrics-apiserver", "external.metrics.k8s.io", secure, "v1beta1")
}

// waitHTTPS waits for a loopback API's self-signed /healthz.
func waitHTTPS(ctx context.Context, url string, p *Proc) error {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}, Timeout: 2 * time.Second}
	return waitHTTP(ctx, client, url, "", p, time.Minute)
}

// AdapterRequestRate is a prometheus-adapter configuration that serves
// each Service's request rate, http_requests_total summed over its pods
// as an irate over 1m (ours' recommended query), as the object metric
// http_requests_per_second of the Service.
const AdapterRequestRate = `rules:
- seriesQuery: 'http_requests_total{namespace!="",service!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      service: {resource: service}
  name: {matches: "^http_requests_total$", as: "http_requests_per_second"}
  metricsQuery: 'sum(irate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
`

// HPA is an autoscaling/v2 HorizontalPodAutoscaler of the Deployment
// name, on the object metric http_requests_per_second of the Service of
// the same name (AdapterRequestRate) with an AverageValue target per
// replica, and behavior as its spec.behavior (nil: none).
func HPA(namespace, name string, target float64, maxReplicas int, behavior map[string]any) map[string]any {
	spec := map[string]any{
		"scaleTargetRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
		"minReplicas":    1, "maxReplicas": maxReplicas,
		"metrics": []map[string]any{{"type": "Object", "object": map[string]any{
			"describedObject": map[string]any{"apiVersion": "v1", "kind": "Service", "name": name},
			"metric":          map[string]any{"name": "http_requests_per_second"},
			"target":          map[string]any{"type": "AverageValue", "averageValue": fmt.Sprint(target)},
		}}},
	}
	if behavior != nil {
		spec["behavior"] = behavior
	}
	return map[string]any{"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
		"metadata": map[string]any{"name": name, "namespace": namespace}, "spec": spec}
}

// ScaledObject is a KEDA ScaledObject of the Deployment name on its
// Prometheus scaler (query against prometheusURL, threshold target per
// replica: KEDA's AverageValue), from 1 to maxReplicas, with behavior as
// the spec.behavior of the HPA KEDA creates (nil: none). KEDA names that
// HPA keda-hpa-<name>.
func ScaledObject(namespace, name, prometheusURL, query string, target float64, maxReplicas int, behavior map[string]any) map[string]any {
	spec := map[string]any{
		"scaleTargetRef":  map[string]any{"name": name},
		"minReplicaCount": 1, "maxReplicaCount": maxReplicas,
		"triggers": []map[string]any{{"type": "prometheus", "metadata": map[string]any{
			"serverAddress": prometheusURL, "query": query, "threshold": fmt.Sprint(target),
		}}},
	}
	if behavior != nil {
		spec["advanced"] = map[string]any{"horizontalPodAutoscalerConfig": map[string]any{"behavior": behavior}}
	}
	return map[string]any{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"name": name, "namespace": namespace}, "spec": spec}
}

// HPABehavior is an HPA's spec.behavior without stabilization windows:
// up by the larger of upPercent % and upPods pods per 15 s, down by at
// most downPercent % per 15 s, both with tolerance (a share, as 0.05).
func HPABehavior(upPercent float64, upPods int32, downPercent, tolerance float64) map[string]any {
	rules := func(policies []map[string]any) map[string]any {
		return map[string]any{"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": policies,
			"tolerance": fmt.Sprint(tolerance)}
	}
	return map[string]any{
		"scaleUp": rules([]map[string]any{{"type": "Percent", "value": upPercent, "periodSeconds": 15},
			{"type": "Pods", "value": upPods, "periodSeconds": 15}}),
		"scaleDown": rules([]map[string]any{{"type": "Percent", "value": downPercent, "periodSeconds": 15}}),
	}
}

// ApplyObjects applies objects (as HPA and ScaledObject return them).
func (e *Env) ApplyObjects(ctx context.Context, objects ...map[string]any) error {
	var docs [][]byte
	for _, o := range objects {
		b, err := json.Marshal(o)
		if err != nil {
			return err
		}
		docs = append(docs, b)
	}
	return e.Apply(ctx, joinDocuments(docs))
}

// joinDocuments is one YAML stream of docs (JSON is YAML).
func joinDocuments(docs [][]byte) string {
	var b strings.Builder
	for _, d := range docs {
		b.WriteString("---\n")
		b.Write(d)
		b.WriteString("\n")
	}
	return b.String()
}
