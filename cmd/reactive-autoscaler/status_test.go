package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	three, one := int32(3), int32(1)
	deps := []appsv1.Deployment{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "plain"}, Spec: appsv1.DeploymentSpec{Replicas: &one}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "frontend", Annotations: map[string]string{
			"autoscale.io/reactive": "true",
			"autoscale.io/status": `{"lastScaleTime":"2026-11-27T11:58:00Z","lastDecision":{"fromReplicas":1,"toReplicas":3,"action":"up",` +
				`"reason":"smoothed RPS 45 above 10","smoothedRPS":45},"dataHealth":"ok","predictor":{"predictor":"builtin","horizon":"5m0s","mapePercent":12,"scored":60}}`,
		}}, Spec: appsv1.DeploymentSpec{Replicas: &three}, Status: appsv1.DeploymentStatus{ReadyReplicas: 2}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "broken", Annotations: map[string]string{
			"autoscale.io/reactive": "true", "autoscale.io/status": "{not json",
		}}},
	}
	var out bytes.Buffer
	if err := printStatus(&out, deps, now); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, line := range strings.Split(got, "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[1] == "frontend" && (f[2] != "3" || f[3] != "2" || f[4] != "ok") {
			t.Errorf("frontend row %q, want 3 replicas, 2 ready, data ok", line)
		}
	}
	for _, want := range []string{"frontend", "2m0s ago", "1->3 smoothed RPS 45 above 10", "12% (builtin, 60 scored)", "unreadable status"} {
		if !strings.Contains(got, want) {
			t.Errorf("status output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "plain") {
		t.Errorf("an unmanaged Deployment is listed:\n%s", got)
	}
}
