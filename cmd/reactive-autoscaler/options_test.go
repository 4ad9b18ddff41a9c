package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

func parse(t *testing.T, config string, args ...string) (*Options, error) {
	t.Helper()
	o := newOptions()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	o.AddFlags(fs)
	if config != "" {
		p := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(p, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", p)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := o.Complete(fs); err != nil {
		return nil, err
	}
	return o, o.Validate()
}

func TestHelpListsEveryFlagWithItsDefault(t *testing.T) {
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"run", "--help"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	run, _, _ := cmd.Find([]string{"run"})
	run.Flags().VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(help, "--"+f.Name) {
			t.Errorf("--help lacks --%s", f.Name)
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" && f.DefValue != "0" && !strings.Contains(help, f.DefValue) && !strings.Contains(help, strconv.Quote(f.DefValue)) {
			t.Errorf("--help lacks the default %q of --%s", f.DefValue, f.Name)
		}
	})
	for _, s := range scaler.Settings() {
		if !strings.Contains(help, "--default-"+s.Key) {
			t.Errorf("--help lacks --default-%s", s.Key)
		}
	}
}

func TestConfigUnknownKeyIsNamed(t *testing.T) {
	_, err := parse(t, "prometheusURL: http://p:9090\nworkerz: 3\n")
	if err == nil || !strings.Contains(err.Error(), `unknown field "workerz"`) {
		t.Fatalf("error = %v, want it to name workerz", err)
	}
	_, err = parse(t, "defaults:\n  min-replica: \"2\"\n")
	if err == nil || !strings.Contains(err.Error(), `unknown key "min-replica"`) {
		t.Fatalf("error = %v, want it to name min-replica", err)
	}
}

func TestFlagsWinOverTheConfigFile(t *testing.T) {
	o, err := parse(t, "prometheusURL: http://file:9090\nworkers: 7\nprometheusTimeout: 3s\ndefaults:\n  cooldown: 2m\n  max-replicas: \"20\"\n",
		"--workers", "2", "--default-max-replicas", "30")
	if err != nil {
		t.Fatal(err)
	}
	if o.Workers != 2 || o.PrometheusURL != "http://file:9090" || o.PrometheusTimeout.Duration != 3*time.Second {
		t.Errorf("flag > file > built-in broken: workers %d url %s timeout %s", o.Workers, o.PrometheusURL, o.PrometheusTimeout.Duration)
	}
	if o.Defaults["cooldown"] != "2m" || o.Defaults["max-replicas"] != "30" || o.Defaults["min-replicas"] != "" {
		t.Errorf("defaults = %v", o.Defaults)
	}
	if o.MetricsBindAddress != ":8080" {
		t.Errorf("built-in default lost: %q", o.MetricsBindAddress)
	}
}

func TestInvalidDefaultsAndLeaderElectionAreRejected(t *testing.T) {
	if _, err := parse(t, "", "--default-ema-alpha", "3"); err == nil || !strings.Contains(err.Error(), `default ema-alpha="3"`) {
		t.Errorf("error = %v", err)
	}
	if _, err := parse(t, "", "--leader-elect-renew-deadline", "20s"); err == nil || !strings.Contains(err.Error(), "lease-duration > renew-deadline") {
		t.Errorf("error = %v", err)
	}
	for args, want := range map[string]string{
		"--query-policy=some":                    "must be allowed, off or allowlist",
		"--query-policy=allowlist":               "needs --allowed-queries",
		"--min-interval=0s":                      "must be at least 1s",
		"--metrics-auth=kubernetes":              "needs --metrics-tls-cert-file",
		"--prometheus-url=notaurl":               "must be an http or https URL",
		"--prometheus-url=":                      "must be an http or https URL",
		"--namespace-workers=9":                  "must be 0 to --workers",
		"--kinds=rollouts":                       "must be resource.group",
		"--kinds=Rollouts.argoproj.io":           "must be resource.group",
		"--kinds=deployments.apps":               "Deployments are always scaled",
		"--metric-source-namespace=haproxy=x":    "no metric source",
		"--metric-source-namespace=traefik=":     "name the namespace it runs in",
		"--metric-source-namespace=istio=Bad_NS": "not a DNS label",
		"--default-metric-source=otel":           "--metric-source-namespace otel=",
	} {
		if _, err := parse(t, "", args); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
	if _, err := parse(t, "", "--metrics-auth=kubernetes", "--metrics-auth-plaintext"); err != nil {
		t.Errorf("--metrics-auth=kubernetes, plaintext allowed: %v", err)
	}
	if o, err := parse(t, "", "--kinds=rollouts.argoproj.io,widgets.e2e.example.com"); err != nil || len(o.Kinds) != 2 {
		t.Errorf("--kinds with two kinds: %v, %v", o, err)
	}
	otel, _ := scaler.MetricSourceNamed("otel")
	t.Cleanup(func() { otel.ExporterNamespace = "" }) // the flag sets it process-wide
	if _, err := parse(t, "", "--metric-source-namespace=otel=observability", "--default-metric-source=otel"); err != nil {
		t.Errorf("otel with its collector's namespace: %v", err)
	}
	if _, err := parse(t, "", "--query-policy=allowlist", "--allowed-queries", "sum(rate(x[1m]))"); err != nil {
		t.Errorf("an allowlist with a query: %v", err)
	}
	for _, v := range []string{"0s", "-1s"} {
		if _, err := parse(t, "", "--prometheus-timeout", v); err == nil || !strings.Contains(err.Error(), "must be positive") {
			t.Errorf("--prometheus-timeout=%s: %v", v, err)
		}
	}
	if _, err := parse(t, ""); err != nil {
		t.Errorf("built-in defaults rejected: %v", err)
	}
}
