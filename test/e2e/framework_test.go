//go:build e2e

// Package e2e runs the real reactive-autoscaler binary against a real
// kube-apiserver, etcd, kube-controller-manager, kwok, Prometheus and
// Alertmanager (pkg/localenv), with real HTTP traffic from demo-app.
package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

var (
	env    *localenv.Env
	client kubernetes.Interface
	binDir string
	// The webhook every test's autoscaler may serve (one at a time), which
	// the environment's Alertmanager calls with the token in tokenFile.
	webhookAddr, tokenFile string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	binDir, err = filepath.Abs("../../bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rules, err := filepath.Abs("../../deploy/prometheus/reactive-autoscaler-rules.yaml")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	secrets, err := os.MkdirTemp("", "e2e-webhook-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(secrets)
	tokenFile = filepath.Join(secrets, "token")
	if err := os.WriteFile(tokenFile, []byte(fmt.Sprintf("e2e-%d", rand.Int64())), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	port, err := localenv.FreePort()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	webhookAddr = fmt.Sprintf("127.0.0.1:%d", port)
	opts := localenv.SpikeStack(binDir, rules, "http://"+webhookAddr+"/webhook/alertmanager", tokenFile)
	opts.Log, opts.KeepDir = os.Stderr, os.Getenv("E2E_KEEP") != ""
	env, err = localenv.Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the environment:", err)
		return 1
	}
	defer env.Stop()
	if client, err = env.Client(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// fast are the annotations the e2e tests use so that a scenario takes
// seconds: a 2 s interval, a 4 s cooldown and a 5 s rate window.
func fast(extra ...string) map[string]string {
	a := map[string]string{
		"autoscale.io/reactive": "true",
		"autoscale.io/interval": "2s",
		"autoscale.io/cooldown": "4s",
		"autoscale.io/query":    `sum(rate(http_requests_total{service="{{.Service}}"}[5s]))`,
	}
	for i := 0; i+1 < len(extra); i += 2 {
		a["autoscale.io/"+extra[i]] = extra[i+1]
	}
	return a
}

// scenario is one test's namespace, autoscaler and demo services.
type scenario struct {
	t          testing.TB
	ctx        context.Context
	ns         string
	metricsURL string
	scaler     *localenv.Proc
	// promURL is the store the autoscaler reads: the environment's
	// Prometheus unless a test sets another.
	promURL string
}

func newScenario(t testing.TB) *scenario {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ns := fmt.Sprintf("e2e-%s-%04d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))[:min(20, len(t.Name()))], rand.IntN(10000))
	ns = strings.TrimRight(ns, "-")
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return &scenario{t: t, ctx: ctx, ns: ns}
}

// startAutoscaler runs the real binary, managing only this namespace.
func (s *scenario) startAutoscaler(extra ...string) {
	s.t.Helper()
	port, err := localenv.FreePort()
	if err != nil {
		s.t.Fatal(err)
	}
	s.metricsURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	promURL := env.PrometheusURL
	if s.promURL != "" {
		promURL = s.promURL
	}
	args := append([]string{"run", "--kubeconfig", env.Kubeconfig, "--namespace", s.ns,
		"--prometheus-url", promURL, "--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port),
		"--leader-elect=false", "-v=2"}, extra...)
	s.scaler = s.runBinary("autoscaler-"+s.ns, nil, s.metricsURL, args...)
}

// runBinary starts the reactive-autoscaler binary as name, stops it at the
// end of the test (printing its log's tail if the test failed), and waits
// until its /readyz at metricsURL answers 200.
func (s *scenario) runBinary(name string, environ []string, metricsURL string, args ...string) *localenv.Proc {
	s.t.Helper()
	p, err := env.StartProcess(name, filepath.Join(binDir, "reactive-autoscaler"), environ, args...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if s.t.Failed() {
			s.t.Logf("%s log (tail):\n%s", name, env.Logs(name, 40))
		}
	})
	// The probes are open even when /metrics is guarded; a test serving
	// them over TLS checks the certificate itself.
	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	s.poll(name+" ready", 30*time.Second, func() (bool, error) {
		resp, err := probe.Get(metricsURL + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	return p
}

// demoService starts a demo-app exporting http_requests_total{service=name}
// and returns its base URL once Prometheus scrapes it.
func (s *scenario) demoService(name string) string {
	s.t.Helper()
	port, err := localenv.FreePort()
	if err != nil {
		s.t.Fatal(err)
	}
	hostport := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := env.StartProcess("demo-"+name, filepath.Join(binDir, "demo-app"), nil, "serve", "--listen", hostport, "--service", name)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { p.Stop(5 * time.Second) })
	// The namespace label a ServiceMonitor attaches, which the default query selects on.
	if err := env.AddScrapeTarget("demo", hostport, "namespace", s.ns); err != nil {
		s.t.Fatal(err)
	}
	// Cleanups run last first: the target goes before the process, so its
	// port, handed to a later test's process, is never scraped as this one.
	s.t.Cleanup(func() { _ = env.RemoveScrapeTarget(hostport) })
	s.poll("Prometheus scraping "+name, time.Minute, func() (bool, error) {
		v, err := promQuery(fmt.Sprintf(`http_requests_total{service=%q}`, name))
		return err == nil && v >= 0, nil
	})
	return "http://" + hostport
}

// load sets a demo service's load profile.
func (s *scenario) load(base, profile string, rps float64) {
	s.t.Helper()
	resp, err := http.PostForm(base+"/load", url.Values{"profile": {profile}, "rps": {strconv.FormatFloat(rps, 'f', -1, 64)}, "duration": {"10s"}})
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("setting load: %s", resp.Status)
	}
}

// deployment creates a Deployment whose pods are bound to the kwok node.
func (s *scenario) deployment(name string, replicas int32, annotations map[string]string) {
	s.t.Helper()
	if _, err := client.AppsV1().Deployments(s.ns).Create(s.ctx, localenv.Deployment(s.ns, name, replicas, annotations), metav1.CreateOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) get(name string) *appsv1.Deployment {
	s.t.Helper()
	d, err := client.AppsV1().Deployments(s.ns).Get(s.ctx, name, metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	return d
}

func (s *scenario) replicas(name string) int32 { return *s.get(name).Spec.Replicas }

// waitReplicas waits until spec.replicas of name satisfies ok.
func (s *scenario) waitReplicas(name, what string, timeout time.Duration, ok func(int32) bool) int32 {
	s.t.Helper()
	var last int32
	s.poll(name+" "+what, timeout, func() (bool, error) {
		last = s.replicas(name)
		return ok(last), nil
	})
	return last
}

// poll waits for cond with a deadline, failing the test with what.
func (s *scenario) poll(what string, timeout time.Duration, cond func() (bool, error)) {
	s.t.Helper()
	err := wait.PollUntilContextTimeout(s.ctx, 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) { return cond() })
	if err != nil {
		s.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// events returns the Events of a Deployment by reason.
func (s *scenario) events(name, reason string) []corev1.Event {
	return s.eventsOf("Deployment", name, reason)
}

// eventsOf returns the Events of an object of kind by reason.
func (s *scenario) eventsOf(kind, name, reason string) []corev1.Event {
	s.t.Helper()
	list, err := client.CoreV1().Events(s.ns).List(s.ctx, metav1.ListOptions{FieldSelector: fields.Set{
		"involvedObject.name": name, "involvedObject.kind": kind, "reason": reason,
	}.String()})
	if err != nil {
		s.t.Fatal(err)
	}
	return list.Items
}

// evaluations returns reactive_autoscaler_evaluations_total summed over results.
func (s *scenario) evaluations() float64 {
	s.t.Helper()
	return scrape(s.t, s.metricsURL, "reactive_autoscaler_evaluations_total")
}

// scrape reads a controller's /metrics and sums the counter or gauge name
// over the series whose labels include every name/value pair in match.
func scrape(t testing.TB, metricsURL, name string, match ...string) float64 {
	t.Helper()
	v, err := scrapeErr(metricsURL, name, match...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// metricFamilies reads and parses metricsURL/metrics.
func metricFamilies(metricsURL string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(metricsURL + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

// scrapeHistogram reads the sum and count of a histogram from a
// controller's /metrics.
func scrapeHistogram(t testing.TB, metricsURL, name string) (sum, count float64) {
	t.Helper()
	mfs, err := metricFamilies(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mfs[name].GetMetric() {
		sum += m.GetHistogram().GetSampleSum()
		count += float64(m.GetHistogram().GetSampleCount())
	}
	return sum, count
}

// scrapeErr is scrape returning its error.
func scrapeErr(metricsURL, name string, match ...string) (float64, error) {
	mfs, err := metricFamilies(metricsURL)
	if err != nil {
		return 0, err
	}
	total := 0.0
	for _, m := range mfs[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(match); i += 2 {
			ok = ok && labels[match[i]] == match[i+1]
		}
		if ok {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total, nil
}

// afterEvaluations returns once the controller has run n more evaluations:
// the bound for asserting that something did not happen.
func (s *scenario) afterEvaluations(n float64) {
	s.t.Helper()
	start := s.evaluations()
	s.poll(fmt.Sprintf("%v more evaluations", n), time.Minute, func() (bool, error) { return s.evaluations() >= start+n, nil })
}

// replicaChanges watches name and records when spec.replicas changes.
type replicaChange struct {
	at       time.Time
	replicas int32
}

func (c replicaChange) String() string {
	return fmt.Sprintf("%d@%s", c.replicas, c.at.Format("15:04:05.000"))
}

func (s *scenario) recordReplicaChanges(name string) func() []replicaChange {
	s.t.Helper()
	w, err := client.AppsV1().Deployments(s.ns).Watch(s.ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		s.t.Fatal(err)
	}
	ch := make(chan []replicaChange, 1)
	ch <- nil
	go func() {
		var last int32 = -1
		for ev := range w.ResultChan() {
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			d := ev.Object.(*appsv1.Deployment)
			if r := *d.Spec.Replicas; r != last {
				changes := <-ch
				ch <- append(changes, replicaChange{time.Now(), r})
				last = r
			}
		}
	}()
	s.t.Cleanup(w.Stop)
	return func() []replicaChange {
		c := <-ch
		ch <- c
		return append([]replicaChange(nil), c...)
	}
}

// promQuery returns the single value of an instant query.
func promQuery(q string) (float64, error) {
	return localenv.Query(context.Background(), env.PrometheusURL, q)
}
