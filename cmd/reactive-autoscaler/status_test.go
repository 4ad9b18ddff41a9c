package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	three, one := int32(3), int32(1)
	managed := func(kv ...string) map[string]string {
		m := map[string]string{"autoscale.io/reactive": "true"}
		for i := 0; i+1 < len(kv); i += 2 {
			m["autoscale.io/"+kv[i]] = kv[i+1]
		}
		return m
	}
	long := strings.Repeat("n", 63)
	deps := []workloadRow{
		{"Deployment", metav1.ObjectMeta{Namespace: "shop", Name: "plain"}, &one, 1},
		{"Deployment", metav1.ObjectMeta{Namespace: "shop", Name: "frontend", Annotations: managed(
			"status", `{"lastScaleTime":"2026-11-27T11:58:00Z","lastDecision":{"fromReplicas":1,"toReplicas":3,"action":"up",`+
				`"reason":"smoothed RPS 45 above 10","smoothedRPS":45},"dataHealth":"ok","rate":{"rps":45,"at":"2026-11-27T11:57:00Z"},`+
				`"predictor":{"predictor":"builtin","horizon":"5m0s","mapePercent":12,"scored":60}}`)}, &three, 2},
		{"Deployment", metav1.ObjectMeta{Namespace: "shop", Name: "broken", Annotations: managed("status", "{not json")}, nil, 0},
		{"Deployment", metav1.ObjectMeta{Namespace: "shop", Name: "forged", Annotations: managed(
			"status", `{"dataHealth":"ok\nshop  payments  Deployment  9  9  ok\u001b[2J","lastDecision":{"reason":"x\ty\u009b31m"}}`)}, &one, 1},
		{"StatefulSet", metav1.ObjectMeta{Namespace: "shop", Name: "ledger", Annotations: managed()}, &three, 3},
		{"Deployment", metav1.ObjectMeta{Namespace: "shop", Name: "typo", Annotations: managed("min-replicas", "zero")}, &one, 1},
		{"Deployment", metav1.ObjectMeta{Namespace: "shop", Name: "held", Annotations: managed("paused", "true")}, &one, 1},
		{"Deployment", metav1.ObjectMeta{Namespace: "shop", Name: "twice", Annotations: managed("status", `{"dataHealth":"ok","conflict":"HPA shop/twice"}`)}, &one, 1},
		{"Deployment", metav1.ObjectMeta{Namespace: "shop", Name: "blind", Annotations: managed(
			"status", `{"dataHealth":"no data: empty result","noDataSince":"2026-11-27T11:50:00Z"}`)}, &three, 3},
		{"Deployment", metav1.ObjectMeta{Namespace: "shop", Name: "rehearsal", Annotations: managed("dry-run", "true", "status", `{"dataHealth":"ok"}`)}, &one, 1},
		{"Deployment", metav1.ObjectMeta{Namespace: "shop", Name: "capped", Annotations: managed("max-replicas", "20", "status", `{"dataHealth":"ok"}`)}, &one, 1},
		{"Deployment", metav1.ObjectMeta{Namespace: long, Name: strings.Repeat("d", 253), Annotations: managed(
			"target-rps-per-replica", "12345", "max-replicas", "10000",
			"status", `{"lastScaleTime":"2026-11-20T12:00:00Z","dataHealth":"ok","rate":{"rps":123456789,"at":"2026-11-20T12:00:00Z"}}`)}, &three, 3},
	}
	var out bytes.Buffer
	if err := printStatus(&out, deps, "", now); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	want := map[string][]string{ // name: the row's fields from STATE on
		"frontend":  {"ok", "45", "(3m)", "<25", ">60", "2m", "ago"},
		"ledger":    {"quiet", "-", "<25", ">60", "never"},
		"broken":    {"warning", "-", "<0", ">10", "never"},
		"typo":      {"invalid", "-", "-", "never"},
		"held":      {"paused", "-", "<0", ">10", "never"},
		"twice":     {"conflict", "-", "<0", ">10", "never"},
		"blind":     {"no", "data", "-", "<25", ">60", "never"},
		"rehearsal": {"dry", "run", "-", "<0", ">10", "never"},
		"capped":    {"warning", "-", "<0", ">10", "never"},
	}
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	for _, line := range lines {
		if n := utf8.RuneCountInString(line); n > statusWidth {
			t.Errorf("a line of %d columns, want at most %d: %q", n, statusWidth, line)
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		if w, ok := want[f[1]]; ok {
			if diff := cmp.Diff(w, f[4:]); diff != "" {
				t.Errorf("%s row %q (-want +got):\n%s", f[1], line, diff)
			}
			delete(want, f[1])
		}
		if f[1] == "frontend" && (f[2] != "Deployment" || f[3] != "2/3") {
			t.Errorf("frontend row %q, want a Deployment with 2 of 3 ready", line)
		}
		if f[1] == "ledger" && f[2] != "StatefulSet" {
			t.Errorf("ledger row %q, want a StatefulSet", line)
		}
	}
	if len(want) > 0 {
		t.Errorf("rows missing for %v:\n%s", maps.Keys(want), got)
	}
	if !strings.Contains(got, "123456789 (7d)") || !strings.Contains(got, "<19752 >37035") {
		t.Errorf("large rates not printed whole:\n%s", got)
	}
	// A forged status prints as one row, escaped: no line of its own, no
	// terminal control.
	if strings.Contains(got, "\x1b") || strings.Contains(got, "\u009b") || len(lines) != 12 {
		t.Errorf("forged status text printed raw (%d lines):\n%q", len(lines), got)
	}
	if strings.Contains(got, "plain") {
		t.Errorf("an unmanaged Deployment is listed:\n%s", got)
	}

	out.Reset()
	if err := printStatus(&out, deps, "wide", now); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"1->3 smoothed RPS 45 above 10", "12% (builtin, 60 scored)", "unreadable status", "HPA shop/twice",
		"no data: empty result (since 2026-11-27T11:50:00Z)", "never asks for more than 5 replicas", `ok\nshop  payments`, long} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("-o wide lacks %q:\n%s", w, out.String())
		}
	}

	out.Reset()
	if err := printStatus(&out, deps, "json", now); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out.String())
	}
	if len(doc.Items) != 11 {
		t.Fatalf("-o json has %d items, want 11", len(doc.Items))
	}
	for _, item := range doc.Items {
		if item["name"] != "frontend" {
			continue
		}
		for k, v := range map[string]any{"namespace": "shop", "kind": "Deployment", "replicas": 3.0, "readyReplicas": 2.0, "state": "ok",
			"rps": 45.0, "rpsObservedAt": "2026-11-27T11:57:00Z", "scaleDownBelowRPS": 25.0, "scaleUpAboveRPS": 60.0} {
			if item[k] != v {
				t.Errorf("-o json frontend %s = %v, want %v", k, item[k], v)
			}
		}
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

func TestStatusRefusesAnUnknownOutputBeforeAnyRequest(t *testing.T) {
	cmd := newStatusCommand()
	cmd.SetArgs([]string{"-o", "yaml", "--kubeconfig", "/nonexistent"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), `--output "yaml": must be wide or json`) {
		t.Errorf("status -o yaml: %v, want the output refused", err)
	}
}
