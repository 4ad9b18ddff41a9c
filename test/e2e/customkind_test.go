//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestACustomResourceWithAScaleSubresourceIsScaled: a CustomResourceDefinition
// with a /scale subresource on the real API server, one of its objects
// annotated like a Deployment, and the controller run with --kinds: load
// scales it up through /scale, the Event and the status annotation land on
// it, and stopping the load scales it back down.
func TestACustomResourceWithAScaleSubresourceIsScaled(t *testing.T) {
	s := newScenario(t)
	s.applyCRD("testdata/widget-crd.yaml", "widgets.e2e.example.com")
	svc := s.demoService("gadget")
	var ann []string
	for k, v := range fast("service", "gadget") {
		ann = append(ann, fmt.Sprintf("    %s: %q", k, v))
	}
	manifest := filepath.Join(t.TempDir(), "widget.yaml")
	if err := os.WriteFile(manifest, []byte(fmt.Sprintf(`apiVersion: e2e.example.com/v1
kind: Widget
metadata:
  name: gadget
  namespace: %s
  annotations:
%s
spec:
  replicas: 1
`, s.ns, strings.Join(ann, "\n"))), 0o644); err != nil {
		t.Fatal(err)
	}
	s.kubectl("apply", "-f", manifest)
	s.startAutoscaler("--kinds", "widgets.e2e.example.com")

	replicas := func() int32 {
		out, err := exec.Command(filepath.Join(binDir, "kubectl"), "--kubeconfig", env.Kubeconfig, "-n", s.ns, "get", "widget", "gadget",
			"-o", "jsonpath={.spec.replicas}").Output()
		if err != nil {
			return -1
		}
		n, _ := strconv.Atoi(string(out))
		return int32(n)
	}
	s.load(svc, "steady", 80) // seed table: 80 RPS needs 4 replicas
	s.poll("the Widget scaled up to 4 through /scale", 90*time.Second, func() (bool, error) { return replicas() == 4, nil })
	s.poll("the Widget's SuccessfulRescale event", 30*time.Second, func() (bool, error) {
		ev := s.eventsOf("Widget", "gadget", "SuccessfulRescale")
		return len(ev) > 0 && strings.Contains(ev[0].Message, "New size: "), nil
	})
	s.poll("the Widget's status annotation", 30*time.Second, func() (bool, error) {
		out, err := exec.Command(filepath.Join(binDir, "kubectl"), "--kubeconfig", env.Kubeconfig, "-n", s.ns, "get", "widget", "gadget",
			"-o", `jsonpath={.metadata.annotations.autoscale\.io/status}`).Output()
		return err == nil && strings.Contains(string(out), `"lastScaleTime"`), nil
	})
	out, err := exec.Command(filepath.Join(binDir, "reactive-autoscaler"), "status", "--kubeconfig", env.Kubeconfig, "-n", s.ns,
		"--kinds", "widgets.e2e.example.com", "-o", "json").Output()
	if err != nil {
		t.Fatalf("status --kinds: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"kind": "Widget"`) || !strings.Contains(string(out), `"replicas": 4`) || !strings.Contains(string(out), `"state": "ok"`) {
		t.Errorf("status --kinds does not show the Widget at 4 replicas, state ok:\n%s", out)
	}
	s.load(svc, "stop", 0)
	s.poll("the Widget scaled back down to 1", 90*time.Second, func() (bool, error) { return replicas() == 1, nil })
}
