//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPrometheusBehindTLSAndBasicAuth: the real Prometheus started with a
// web config requiring TLS (a CA this test generates) and basic auth.
// Without credentials the controller reports FailedGetMetrics and holds the
// Deployment where it is (no scale-down on data it does not have); given
// the CA and a password file in prometheusHTTPConfig it scales the
// Deployment up; the password file rewritten with a wrong password turns
// into no data within two intervals, without a restart. The credentials
// reach the controller as a user of the chart gives them: prometheus.auth
// naming an existing Secret.
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

	// The chart's prometheus.auth: an existing Secret with the password and
	// the CA. The controller runs on the config file the chart rendered,
	// with the Secret projected into a directory as the kubelet would.
	ca, err := os.ReadFile(sp.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "prom-creds"},
		Data: map[string][]byte{"password": []byte(password), "ca.crt": ca}}
	if _, err := client.CoreV1().Secrets(s.ns).Create(s.ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const release = "guard"
	s.helmInstall(release, "prometheus.url="+sp.URL, "prometheus.auth.existingSecret=prom-creds,prometheus.auth.basicAuthUsername=autoscaler",
		"prometheus.auth.basicAuthPasswordKey=password,prometheus.auth.tls.caKey=ca.crt")
	cm, err := client.CoreV1().ConfigMaps(s.ns).Get(s.ctx, release+"-reactive-autoscaler", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for key, value := range secret.Data {
		if err := os.WriteFile(filepath.Join(dir, key), value, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	passwordFile := filepath.Join(dir, "password")
	config := filepath.Join(dir, "config.yaml")
	rendered := strings.ReplaceAll(cm.Data["config.yaml"], "/etc/reactive-autoscaler/prometheus/", dir+"/")
	if !strings.Contains(rendered, "password_file: \""+passwordFile) {
		t.Fatalf("the chart's config file names no password file:\n%s", rendered)
	}
	if err := os.WriteFile(config, []byte(rendered), 0o600); err != nil {
		t.Fatal(err)
	}
	s.startAutoscaler("--prometheus-url", sp.URL, "--config", config)
	s.waitReplicas("guarded", "scaled up through TLS and basic auth", 90*time.Second, func(r int32) bool { return r == 3 })
	s.poll("data health ok", 30*time.Second, func() (bool, error) {
		return strings.Contains(s.get("guarded").Annotations["autoscale.io/status"], `"dataHealth":"ok"`), nil
	})

	// A wrong password, written while it runs: FailedGetMetrics and no
	// data within two intervals (2 s each), and still no scale-down.
	failed := func() int32 {
		n := int32(0)
		for _, ev := range s.events("guarded", "FailedGetMetrics") {
			n += max(ev.Count, 1)
		}
		return n
	}
	before := failed()
	if err := os.WriteFile(passwordFile, []byte("wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	rotated := time.Now()
	s.poll("FailedGetMetrics and no data after the password changed", 2*2*time.Second+time.Second, func() (bool, error) {
		return failed() > before && strings.Contains(s.get("guarded").Annotations["autoscale.io/status"], `"dataHealth":"no data`), nil
	})
	t.Logf("the wrong password showed as FailedGetMetrics and no data %v after it was written", time.Since(rotated).Round(10*time.Millisecond))
	s.afterEvaluations(3)
	if r := s.replicas("guarded"); r != 3 {
		t.Errorf("after the password broke, replicas %d, want 3 held", r)
	}
}
