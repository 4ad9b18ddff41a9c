package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	three, one := int32(3), int32(1)
	deps := []workloadRow{
		{"Deployment", metav1.ObjectMeta{Namespace: "shop", Name: "plain"}, &one, 1},
		{"Deployment", metav1.ObjectMeta{Namespace: "shop", Name: "frontend", Annotations: map[string]string{
			"autoscale.io/reactive": "true",
			"autoscale.io/status": `{"lastScaleTime":"2026-11-27T11:58:00Z","lastDecision":{"fromReplicas":1,"toReplicas":3,"action":"up",` +
				`"reason":"smoothed RPS 45 above 10","smoothedRPS":45},"dataHealth":"ok","predictor":{"predictor":"builtin","horizon":"5m0s","mapePercent":12,"scored":60}}`,
		}}, &three, 2},
		{"Deployment", metav1.ObjectMeta{Namespace: "shop", Name: "broken", Annotations: map[string]string{
			"autoscale.io/reactive": "true", "autoscale.io/status": "{not json",
		}}, nil, 0},
		{"Deployment", metav1.ObjectMeta{Namespace: "shop", Name: "forged", Annotations: map[string]string{
			"autoscale.io/reactive": "true",
			"autoscale.io/status":   `{"dataHealth":"ok\nshop  payments  Deployment  9  9  ok\u001b[2J","lastDecision":{"reason":"x\ty\u009b31m"}}`,
		}}, &one, 1},
		{"StatefulSet", metav1.ObjectMeta{Namespace: "shop", Name: "ledger", Annotations: map[string]string{"autoscale.io/reactive": "true"}}, &three, 3},
	}
	var out bytes.Buffer
	if err := printStatus(&out, deps, now); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, line := range strings.Split(got, "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[1] == "frontend" && (f[2] != "Deployment" || f[3] != "3" || f[4] != "2" || f[5] != "ok") {
			t.Errorf("frontend row %q, want a Deployment, 3 replicas, 2 ready, data ok", line)
		}
		if f := strings.Fields(line); len(f) > 4 && f[1] == "ledger" && (f[2] != "StatefulSet" || f[3] != "3") {
			t.Errorf("ledger row %q, want a StatefulSet at 3 replicas", line)
		}
	}
	for _, want := range []string{"frontend", "2m0s ago", "1->3 smoothed RPS 45 above 10", "12% (builtin, 60 scored)", "unreadable status"} {
		if !strings.Contains(got, want) {
			t.Errorf("status output lacks %q:\n%s", want, got)
		}
	}
	// A forged status prints as one row, escaped: no line of its own, no
	// terminal control.
	if strings.Contains(got, "\x1b") || strings.Contains(got, "\u009b") || strings.Count(got, "\n") != 5 || !strings.Contains(got, `ok\nshop  payments`) {
		t.Errorf("forged status text printed raw:\n%q", got)
	}
	if strings.Contains(got, "plain") {
		t.Errorf("an unmanaged Deployment is listed:\n%s", got)
	}
}

// TestTheClusterIsFoundAsKubectlFindsIt: without --kubeconfig, $KUBECONFIG
// names the cluster; the flag wins over it.
func TestTheClusterIsFoundAsKubectlFindsIt(t *testing.T) {
	dir := t.TempDir()
	write := func(name, server string) string {
		path := filepath.Join(dir, name)
		cfg := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: %q}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {token: t}\n", server)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Setenv("KUBECONFIG", write("env", "https://from-env.example:6443"))
	t.Setenv("HOME", dir) // no ~/.kube/config of the machine running the test
	cfg, err := restConfig("")
	if err != nil || cfg.Host != "https://from-env.example:6443" {
		t.Errorf("without --kubeconfig: %v, %v; want $KUBECONFIG's cluster", cfg, err)
	}
	cfg, err = restConfig(write("flag", "https://from-flag.example:6443"))
	if err != nil || cfg.Host != "https://from-flag.example:6443" {
		t.Errorf("with --kubeconfig: %v, %v; want the flag's cluster", cfg, err)
	}
}
