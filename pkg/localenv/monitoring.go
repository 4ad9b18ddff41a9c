package localenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"
)

// WebhookRoute is an Alertmanager config that sends RequestRateSpike to the
// autoscaler's webhook at url with the bearer token in tokenFile, after a
// group_wait of 1 s, as deploy/alertmanager/alertmanager.yaml does.
func WebhookRoute(url, tokenFile string) string {
	return fmt.Sprintf(`route:
  receiver: default
  routes:
    - receiver: reactive-autoscaler
      matchers: [alertname = RequestRateSpike]
      group_by: [alertname, namespace, service, deployment]
      group_wait: 1s
      group_interval: 2s
      repeat_interval: 5m
receivers:
  - name: default
  - name: reactive-autoscaler
    webhook_configs:
      - url: %q
        send_resolved: false
        http_config:
          authorization:
            type: Bearer
            credentials_file: %q
`, url, tokenFile)
}

// AddScrapeTarget makes Prometheus scrape host:port (metrics at /metrics)
// with the given job label and any more label pairs (such as "namespace",
// "shop": what a ServiceMonitor attaches). Prometheus picks the change up
// from its file service discovery within a second or two. A host:port is
// one process at a time: an earlier target at the same address (a process
// gone, its port handed to this one) is replaced, or Prometheus would
// scrape the new process under both label sets and every sum over it would
// double.
func (e *Env) AddScrapeTarget(job, hostport string, labels ...string) error {
	l := map[string]string{"job": job}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	return e.editTargets(func(groups []targetGroup) []targetGroup {
		return append(withoutTarget(groups, hostport), targetGroup{Targets: []string{hostport}, Labels: l})
	})
}

// RemoveScrapeTarget stops Prometheus scraping host:port: for a process
// that stopped, so that its port, handed to another, is not scraped under
// its labels.
func (e *Env) RemoveScrapeTarget(hostport string) error {
	return e.editTargets(func(groups []targetGroup) []targetGroup { return withoutTarget(groups, hostport) })
}

// targetGroup is one entry of Prometheus' file service discovery.
type targetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// editTargets rewrites the targets file with edit's answer to its groups.
func (e *Env) editTargets(edit func([]targetGroup) []targetGroup) error {
	e.targetsMu.Lock()
	defer e.targetsMu.Unlock()
	path := filepath.Join(e.Dir, "prometheus", "targets.json")
	var groups []targetGroup
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		if err := yaml.Unmarshal(b, &groups); err != nil {
			return err
		}
	}
	return writeJSON(path, edit(groups))
}

// withoutTarget is groups less hostport, and less any group left empty.
func withoutTarget(groups []targetGroup, hostport string) []targetGroup {
	out := make([]targetGroup, 0, len(groups))
	for _, g := range groups {
		g.Targets = slices.DeleteFunc(slices.Clone(g.Targets), func(t string) bool { return t == hostport })
		if len(g.Targets) > 0 {
			out = append(out, g)
		}
	}
	return out
}

func findBinary(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found: run `make deps` (Debian packages prometheus and prometheus-alertmanager)", strings.Join(names, " or "))
}

func (e *Env) startAlertmanager(ctx context.Context) error {
	bin, err := findBinary("prometheus-alertmanager", "alertmanager")
	if err != nil {
		return err
	}
	port, err := FreePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(e.Dir, "alertmanager")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(e.opts.AlertmanagerConfig), 0o644); err != nil {
		return err
	}
	e.AlertmanagerURL = "http://" + addr(port)
	e.logf("starting Alertmanager on %s", e.AlertmanagerURL)
	p, err := e.start("alertmanager", bin, "--config.file", cfg, "--storage.path", dir,
		"--web.listen-address", e.listenAddr(port), "--cluster.listen-address", "")
	if err != nil {
		return err
	}
	return waitHTTP(ctx, &http.Client{Timeout: 2 * time.Second}, e.AlertmanagerURL+"/-/ready", "", p, time.Minute)
}

// listenAddr is where a server the pods of a real node call (Prometheus,
// Alertmanager) listens: every address with a node (they come from the
// pods' bridge to HostIP), loopback otherwise.
func (e *Env) listenAddr(port int) string {
	if e.opts.Node != nil {
		return fmt.Sprintf("0.0.0.0:%d", port)
	}
	return addr(port)
}

// ReloadAlertmanager replaces Alertmanager's configuration and has it
// reload: a receiver whose address is known only once it runs (a webhook
// Service's cluster IP).
func (e *Env) ReloadAlertmanager(ctx context.Context, config string) error {
	if err := os.WriteFile(filepath.Join(e.Dir, "alertmanager", "alertmanager.yml"), []byte(config), 0o644); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.AlertmanagerURL+"/-/reload", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("reloading Alertmanager: %s: %s", resp.Status, b)
	}
	return nil
}

func (e *Env) startPrometheus(ctx context.Context) error {
	bin, err := findBinary("prometheus")
	if err != nil {
		return err
	}
	port, err := FreePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(e.Dir, "prometheus")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "targets.json"), []any{}); err != nil {
		return err
	}
	cfg := e.scrapeConfig()
	cfg["rule_files"] = e.opts.Prometheus.RuleFiles
	if e.AlertmanagerURL != "" {
		cfg["alerting"] = map[string]any{"alertmanagers": []any{map[string]any{
			"static_configs": []any{map[string]any{"targets": []string{strings.TrimPrefix(e.AlertmanagerURL, "http://")}}},
		}}}
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return err
	}
	if e.opts.Node != nil {
		bg, cancel := context.WithCancel(context.Background())
		e.stopBackground = append(e.stopBackground, cancel)
		if err := e.discoverPods(bg, filepath.Join(dir, "pods.json")); err != nil {
			return err
		}
	}
	e.PrometheusURL = "http://" + addr(port)
	e.promArgs = []string{bin, "--config.file", cfgPath, "--storage.tsdb.path", filepath.Join(dir, "data"),
		"--web.listen-address", e.listenAddr(port), "--web.enable-lifecycle", "--log.level", "warn"}
	return e.StartPrometheus(ctx)
}

// scrapeConfig is a Prometheus configuration that scrapes the targets
// added with AddScrapeTarget at the environment's interval.
func (e *Env) scrapeConfig() map[string]any {
	interval := e.opts.Prometheus.ScrapeInterval
	if interval == 0 {
		interval = time.Second
	}
	jobs := []any{map[string]any{
		"job_name":        "demo",
		"file_sd_configs": []any{map[string]any{"files": []string{filepath.Join(e.Dir, "prometheus", "targets.json")}, "refresh_interval": "1s"}},
	}}
	if e.opts.Node != nil {
		jobs = append(jobs, podsJob(filepath.Join(e.Dir, "prometheus", "pods.json")))
	}
	return map[string]any{
		"global":         map[string]any{"scrape_interval": interval.String(), "evaluation_interval": interval.String()},
		"scrape_configs": jobs,
	}
}

// podsJob scrapes the real node's pods that discoverPods lists, as a
// cluster's Prometheus scrapes pods it discovers through the API server
// (Debian's Prometheus is built without kubernetes_sd_configs).
func podsJob(file string) map[string]any {
	return map[string]any{
		"job_name":        "pods",
		"file_sd_configs": []any{map[string]any{"files": []string{file}, "refresh_interval": "1s"}},
	}
}

// Query returns the single value of an instant query against Prometheus at
// base (the demo's timeline and the e2e tests read rates with it).
func Query(ctx context.Context, base, q string) (float64, error) {
	c, err := promapi.NewClient(promapi.Config{Address: base})
	if err != nil {
		return 0, err
	}
	val, _, _, err := promv1.NewAPI(c).Query(ctx, q, time.Now())
	if err != nil {
		return 0, err
	}
	vec, ok := val.(model.Vector)
	if !ok || len(vec) != 1 {
		return 0, fmt.Errorf("query %s returned %v, want one series", q, val)
	}
	return float64(vec[0].Value), nil
}

// StopPrometheus stops Prometheus (to test an outage); StartPrometheus
// brings it back on the same address with the same data.
func (e *Env) StopPrometheus() {
	if p := e.Proc("prometheus"); p != nil {
		p.Stop(10 * time.Second)
	}
}

// StartPrometheus (re)starts Prometheus and waits until it is ready.
func (e *Env) StartPrometheus(ctx context.Context) error {
	e.logf("starting Prometheus on %s", e.PrometheusURL)
	p, err := e.StartProcess("prometheus", e.promArgs[0], nil, e.promArgs[1:]...)
	if err != nil {
		return err
	}
	return waitHTTP(ctx, &http.Client{Timeout: 2 * time.Second}, e.PrometheusURL+"/-/ready", "", p, 2*time.Minute)
}

// insecureTLS is used only to poll /readyz of components with self-signed
// certificates on loopback before their CA is known.
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} } //nolint:gosec // loopback readiness probe

// AlertmanagerPeer is one Alertmanager of a highly available cluster.
type AlertmanagerPeer struct {
	URL  string
	Proc *Proc
}

// StartAlertmanagerCluster starts n Alertmanagers named name-0... that
// gossip with each other on loopback (--cluster.*), each with config, as
// an HA pair runs: every alert is sent to all of them, the first in the
// cluster's order notifies, the others wait peerTimeout per position and
// notify only what the first did not. It waits until each sees n members.
func (e *Env) StartAlertmanagerCluster(ctx context.Context, name string, n int, config string, peerTimeout time.Duration) ([]AlertmanagerPeer, error) {
	bin, err := findBinary("prometheus-alertmanager", "alertmanager")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	var peers []string
	for i := range n {
		peers = append(peers, "--cluster.peer="+addr(ports[n+i]))
	}
	var out []AlertmanagerPeer
	for i := range n {
		dir := filepath.Join(e.Dir, fmt.Sprintf("%s-%d", name, i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		cfg := filepath.Join(dir, "alertmanager.yml")
		if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
			return nil, err
		}
		args := append([]string{"--config.file", cfg, "--storage.path", dir, "--web.listen-address", addr(ports[i]),
			"--cluster.listen-address", addr(ports[n+i]), "--cluster.advertise-address", addr(ports[n+i]),
			"--cluster.peer-timeout", peerTimeout.String(), "--cluster.gossip-interval", "50ms", "--cluster.pushpull-interval", "1s"}, peers...)
		p, err := e.StartProcess(fmt.Sprintf("%s-%d", name, i), bin, nil, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, AlertmanagerPeer{URL: "http://" + addr(ports[i]), Proc: p})
	}
	for _, am := range out {
		if err := waitHTTP(ctx, &http.Client{Timeout: 2 * time.Second}, am.URL+"/-/ready", "", am.Proc, time.Minute); err != nil {
			return nil, err
		}
	}
	e.logf("started an Alertmanager cluster of %d (%s)", n, name)
	return out, nil
}
