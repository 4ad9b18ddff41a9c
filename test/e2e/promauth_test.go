//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPrometheusBehindTLSAndBasicAuth: the real Prometheus started with a
// web config requiring TLS (a CA this test generates) and basic auth.
// Without credentials the controller reports FailedGetMetrics and holds the
// Deployment where it is (no scale-down on data it does not have); given
// the CA and a password file in prometheusHTTPConfig it scales the
// Deployment up; the password file rewritten with a wrong password turns
// into no data within two intervals, without a restart.
func TestPrometheusBehindTLSAndBasicAuth(t *testing.T) {
	s := newScenario(t)
	const password = "correct horse battery staple"
	sp, err := env.StartSecurePrometheus(s.ctx, "prometheus-"+s.ns, "autoscaler", password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Proc.Stop(10 * time.Second) })
	svc := s.demoService("guarded")
	s.deployment("guarded", 2, fast("service", "guarded"))
	s.load(svc, "steady", 45) // the seed table wants 3 replicas

	// No credentials: every query fails, nothing is written but the status.
	s.startAutoscaler("--prometheus-url", sp.URL)
	s.poll("FailedGetMetrics without credentials", time.Minute, func() (bool, error) {
		return len(s.events("guarded", "FailedGetMetrics")) > 0, nil
	})
	s.afterEvaluations(5)
	if r := s.replicas("guarded"); r != 2 {
		t.Fatalf("without credentials the controller moved the Deployment to %d replicas", r)
	}
	if st := s.get("guarded").Annotations["autoscale.io/status"]; !strings.Contains(st, `"dataHealth":"no data`) {
		t.Errorf("status without credentials: %s, want no data", st)
	}
	s.scaler.Stop(10 * time.Second)

	// The CA and a password file: it reads the rate and scales up.
	dir := t.TempDir()
	passwordFile := filepath.Join(dir, "password")
	if err := os.WriteFile(passwordFile, []byte(password), 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`prometheusHTTPConfig:
  basic_auth:
    username: autoscaler
    password_file: password
  tls_config:
    ca_file: %s
`, sp.CAFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.startAutoscaler("--prometheus-url", sp.URL, "--config", config)
	s.waitReplicas("guarded", "scaled up through TLS and basic auth", 90*time.Second, func(r int32) bool { return r == 3 })
	s.poll("data health ok", 30*time.Second, func() (bool, error) {
		return strings.Contains(s.get("guarded").Annotations["autoscale.io/status"], `"dataHealth":"ok"`), nil
	})

	// A wrong password, written while it runs: no data within two
	// intervals (2 s each), and still no scale-down.
	if err := os.WriteFile(passwordFile, []byte("wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	rotated := time.Now()
	s.poll("no data after the password changed", 2*2*time.Second+time.Second, func() (bool, error) {
		return strings.Contains(s.get("guarded").Annotations["autoscale.io/status"], `"dataHealth":"no data`), nil
	})
	t.Logf("the wrong password showed as no data %v after it was written", time.Since(rotated).Round(10*time.Millisecond))
	s.afterEvaluations(3)
	if r := s.replicas("guarded"); r != 3 {
		t.Errorf("after the password broke, replicas %d, want 3 held", r)
	}
}
