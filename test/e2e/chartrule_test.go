//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

// TestTheChartsSpikeRuleFiresAtA15sScrapeThroughTheRouteItsNotesPrint: the
// spike rule as the chart renders it for a 15 s scrape, loaded into a real
// Prometheus scraping every 15 s, fires on a load step; the real
// Alertmanager, configured with the route and receiver the chart's NOTES
// print (their Service URL and token path pointed at this machine), calls
// the webhook; and the spike evaluation scales the Deployment, whose
// interval (10 min) rules the periodic path out.
func TestTheChartsSpikeRuleFiresAtA15sScrapeThroughTheRouteItsNotesPrint(t *testing.T) {
	s := newScenario(t)
	s.applyCRD("testdata/prometheusrule-crd.yaml", "prometheusrules.monitoring.coreos.com")
	manifest, notes := s.helmDryRun("spike", "prometheusRule.enabled=true", "prometheusRule.scrapeInterval=15s")

	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, ruleGroups(t, manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	port, err := localenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	hook := fmt.Sprintf("127.0.0.1:%d", port)
	mon, err := localenv.Start(s.ctx, localenv.Options{
		NoCluster: true, Dir: filepath.Join(dir, "monitoring"), Log: testWriter{t},
		Prometheus:         &localenv.PrometheusOptions{ScrapeInterval: 15 * time.Second, RuleFiles: []string{rules}},
		AlertmanagerConfig: notesRoute(t, notes, "http://"+hook+"/webhook/alertmanager", tokenFile),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mon.Stop)

	demoPort, err := localenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	demo := fmt.Sprintf("127.0.0.1:%d", demoPort)
	p, err := env.StartProcess("demo-rule-"+s.ns, filepath.Join(binDir, "demo-app"), nil, "serve", "--listen", demo, "--service", "shop")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	if err := mon.AddScrapeTarget("demo", demo, "namespace", s.ns); err != nil {
		t.Fatal(err)
	}
	s.poll("the demo service answering", 30*time.Second, func() (bool, error) {
		resp, err := http.Get("http://" + demo + "/metrics")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	s.load("http://"+demo, "steady", 5)
	// The rule compares the last two samples with a minute ending 45 s
	// before: it can fire once a minute of steady samples is in.
	s.poll("a minute of 15 s samples", 3*time.Minute, func() (bool, error) {
		v, err := localenv.Query(s.ctx, mon.PrometheusURL, `count_over_time(http_requests_total{service="shop"}[2m])`)
		return err == nil && v >= 6, nil
	})
	s.deployment("shop", 1, map[string]string{"autoscale.io/reactive": "true", "autoscale.io/interval": "10m"})
	s.startAutoscaler("--prometheus-url", mon.PrometheusURL, "--webhook-bind-address", hook, "--webhook-token-file", tokenFile)
	// Periodic evaluations come at the ticks of the 10-minute interval; at
	// 5 RPS the seed table holds 1 replica, and any scale-up below must be
	// a spike evaluation's (its reason says so).

	step := time.Now()
	s.load("http://"+demo, "steady", 150)
	s.poll("a spike evaluation's SuccessfulRescale", 2*time.Minute, func() (bool, error) {
		for _, ev := range s.events("shop", "SuccessfulRescale") {
			if strings.Contains(ev.Message, "spike: ") {
				return true, nil
			}
		}
		return false, nil
	})
	t.Logf("load step -> spike scale-up through the chart's rule at a 15 s scrape and the NOTES route: %.1fs", time.Since(step).Seconds())
	if q := scrape(t, s.metricsURL, "reactive_autoscaler_webhook_alerts_total", `outcome="queued"`); q < 1 {
		t.Errorf("webhook alerts queued = %v, want the alert delivered by Alertmanager", q)
	}
}

// kubectl runs the real kubectl against the e2e cluster.
func (s *scenario) kubectl(args ...string) {
	s.t.Helper()
	out, err := exec.Command(filepath.Join(binDir, "kubectl"), append([]string{"--kubeconfig", env.Kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("kubectl %v: %v\n%s", args, err, out)
	}
}

// applyCRD applies a CustomResourceDefinition (cluster-wide, so kept for
// the other tests) and waits until the API server serves it.
func (s *scenario) applyCRD(file, name string) {
	s.t.Helper()
	s.kubectl("apply", "-f", file)
	s.poll(name+" established", time.Minute, func() (bool, error) {
		out, err := exec.Command(filepath.Join(binDir, "kubectl"), "--kubeconfig", env.Kubeconfig, "get", "crd", name,
			"-o", `jsonpath={.status.conditions[?(@.type=="Established")].status}`).Output()
		return err == nil && string(out) == "True", nil
	})
}

// helmDryRun renders the chart as helm install would into the scenario's
// namespace, with --set values, and returns its manifest and its NOTES.
func (s *scenario) helmDryRun(release string, values ...string) (manifest, notes string) {
	s.t.Helper()
	args := []string{"install", release, "../../charts/reactive-autoscaler", "--dry-run=client", "--kubeconfig", env.Kubeconfig, "--namespace", s.ns}
	for _, v := range values {
		args = append(args, "--set", v)
	}
	var stderr strings.Builder
	cmd := exec.Command(filepath.Join(binDir, "helm"), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("helm install --dry-run %v: %v\n%s%s", values, err, out, stderr.String())
	}
	_, rest, ok := strings.Cut(string(out), "\nMANIFEST:\n")
	manifest, notes, ok2 := strings.Cut(rest, "\nNOTES:\n")
	if !ok || !ok2 {
		s.t.Fatalf("helm install --dry-run printed no MANIFEST or NOTES:\n%s", out)
	}
	return manifest, notes
}

// ruleGroups returns the rule file of the manifest's PrometheusRule: its
// spec, which is a Prometheus rule file.
func ruleGroups(t *testing.T, manifest string) []byte {
	t.Helper()
	for _, doc := range strings.Split(manifest, "\n---\n") {
		var obj struct {
			Kind string         `json:"kind"`
			Spec map[string]any `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil || obj.Kind != "PrometheusRule" {
			continue
		}
		b, err := yaml.Marshal(obj.Spec)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("the chart's rule file:\n%s", b)
		return b
	}
	t.Fatalf("no PrometheusRule in the manifest")
	return nil
}

// notesRoute returns an Alertmanager configuration made of the route and
// receiver the NOTES print (between "--- alertmanager.yml ---" and "---"),
// under a root route with a default receiver, as they would be added to
// an existing configuration; the receiver's URL and token file become url
// and tokenFile, since the Service's name does not resolve here.
func notesRoute(t *testing.T, notes, url, tokenFile string) string {
	t.Helper()
	_, block, ok := strings.Cut(notes, "--- alertmanager.yml ---\n")
	block, _, ok2 := strings.Cut(block, "\n---\n")
	if !ok || !ok2 {
		t.Fatalf("the NOTES print no alertmanager.yml block:\n%s", notes)
	}
	var cfg struct {
		Route struct {
			Routes []map[string]any `json:"routes"`
		} `json:"route"`
		Receivers []struct {
			Name           string           `json:"name"`
			WebhookConfigs []map[string]any `json:"webhook_configs"`
		} `json:"receivers"`
	}
	if err := yaml.UnmarshalStrict([]byte(block), &cfg); err != nil {
		t.Fatalf("the NOTES' alertmanager.yml: %v\n%s", err, block)
	}
	if len(cfg.Receivers) != 1 || len(cfg.Receivers[0].WebhookConfigs) != 1 || len(cfg.Route.Routes) != 1 {
		t.Fatalf("the NOTES' alertmanager.yml has not one route and one webhook receiver:\n%s", block)
	}
	wh := cfg.Receivers[0].WebhookConfigs[0]
	printed, _ := wh["url"].(string)
	if !strings.HasPrefix(printed, "http://spike-reactive-autoscaler-webhook.") || !strings.HasSuffix(printed, "/webhook/alertmanager") {
		t.Errorf("the NOTES' webhook URL %q is not the release's webhook Service", printed)
	}
	wh["url"] = url
	wh["http_config"].(map[string]any)["authorization"].(map[string]any)["credentials_file"] = tokenFile
	out, err := yaml.Marshal(map[string]any{
		"route":     map[string]any{"receiver": "default", "routes": cfg.Route.Routes},
		"receivers": []any{map[string]any{"name": "default"}, cfg.Receivers[0]},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// testWriter logs an environment's steps through t.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
