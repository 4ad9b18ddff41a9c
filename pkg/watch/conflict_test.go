package watch

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
)

func hpaFor(name, target, apiVersion string) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 10,
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: apiVersion, Kind: "Deployment", Name: target}},
	}
}

// TestAnHPAOnTheSameDeploymentWins: a Deployment an HPA targets (as KEDA's
// ScaledObjects make) is not scaled: one ConflictingAutoscaler Event, the
// status names the HPA; when the HPA is deleted the Deployment is queued
// at once and managed again. An HPA on another Deployment changes nothing.
func TestAnHPAOnTheSameDeploymentWins(t *testing.T) {
	h := newHarness(t, managed("frontend", 1), managed("api", 1), hpaFor("keda-hpa-frontend", "frontend", "apps/v1"),
		hpaFor("other", "checkout", "apps/v1"))
	h.prom.Set(promtest.Value(45))
	for range 3 {
		h.evaluate("frontend", interval)
	}
	if r := h.replicas("frontend"); r != 1 {
		t.Errorf("frontend, targeted by an HPA, was scaled to %d", r)
	}
	var n int
	for _, e := range h.drainEvents() {
		if strings.HasPrefix(e, "Warning ConflictingAutoscaler HorizontalPodAutoscaler keda-hpa-frontend also scales") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d ConflictingAutoscaler Events over three evaluations, want 1", n)
	}
	if st := h.status("frontend"); st.Conflict != "keda-hpa-frontend" {
		t.Errorf("status conflict %q", st.Conflict)
	}
	if n := h.counter("reactive_autoscaler_evaluations_total", "result", "conflict"); n != 3 {
		t.Errorf("evaluations_total{result=conflict} = %v, want 3", n)
	}
	h.evaluate("api", 0)
	if r := h.replicas("api"); r == 1 {
		t.Error("api, which no HPA targets, was not scaled")
	}

	// The HPA goes: the Deployment is queued at once, and managed again.
	for h.ctrl.queue.Len() > 0 {
		k, _ := h.ctrl.queue.Get()
		h.ctrl.queue.Done(k)
	}
	if err := h.client.AutoscalingV2().HorizontalPodAutoscalers("shop").Delete(h.ctx, "keda-hpa-frontend", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.observe()
	if h.ctrl.queue.Len() != 1 {
		t.Fatal("the Deployment was not queued when its HPA was deleted")
	}
	h.evaluate("frontend", 0)
	if r := h.replicas("frontend"); r == 1 {
		t.Error("frontend was not scaled once its HPA was gone")
	}
	h.sees("frontend", func(d *appsv1.Deployment) bool { return d != nil && *d.Spec.Replicas > 1 })
	if st := h.status("frontend"); st.Conflict != "" {
		t.Errorf("status still names %q", st.Conflict)
	}
}

func TestIndexHPAByTarget(t *testing.T) {
	for _, c := range []struct {
		apiVersion, kind string
		want             string // "": not indexed
	}{
		{"apps/v1", "Deployment", "apps/Deployment/shop/frontend"}, {"extensions/v1beta1", "Deployment", "apps/Deployment/shop/frontend"},
		{"apps/v1", "StatefulSet", "apps/StatefulSet/shop/frontend"}, {"example.com/v1", "Deployment", "example.com/Deployment/shop/frontend"},
		{"argoproj.io/v1alpha1", "Rollout", "argoproj.io/Rollout/shop/frontend"}, {"a/b/c", "Deployment", ""}, {"apps/v1", "", ""},
	} {
		hpa := hpaFor("h", "frontend", c.apiVersion)
		hpa.Spec.ScaleTargetRef.Kind = c.kind
		keys, _ := indexHPAByTarget(hpa)
		if got := strings.Join(keys, ","); got != c.want {
			t.Errorf("%s %s: indexed %v", c.apiVersion, c.kind, keys)
		}
	}
}

// TestAnHPAOnACustomKindIsAConflict: an HPA (or KEDA's) aimed at an Argo
// Rollout writes the same /scale as the Controller for rollouts, so that
// Controller stands aside; one aimed at a Rollout of another group, or at
// a Deployment of the same name, is not its conflict.
func TestAnHPAOnACustomKindIsAConflict(t *testing.T) {
	hpas := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{hpaTargetIndex: indexHPAByTarget})
	rollout := hpaFor("keda-hpa-web", "web", "argoproj.io/v1alpha1")
	rollout.Spec.ScaleTargetRef.Kind = "Rollout"
	other := hpaFor("other-group", "api", "example.com/v1")
	other.Spec.ScaleTargetRef.Kind = "Rollout"
	for _, h := range []*autoscalingv2.HorizontalPodAutoscaler{rollout, other, hpaFor("deployment-api", "api", "apps/v1")} {
		if err := hpas.Add(h); err != nil {
			t.Fatal(err)
		}
	}
	rollouts := &Controller{kind: "Rollout", group: "argoproj.io", hpas: hpas}
	if got := rollouts.conflictingHPA("shop/web"); got != "keda-hpa-web" {
		t.Errorf("Rollout shop/web: conflicting HPA %q, want keda-hpa-web", got)
	}
	if got := rollouts.conflictingHPA("shop/api"); got != "" {
		t.Errorf("Rollout shop/api: conflicting HPA %q, want none (the HPAs named api aim at another group's Rollout and at a Deployment)", got)
	}
	deployments := &Controller{kind: Deployments, group: "apps", hpas: hpas}
	if got := deployments.conflictingHPA("shop/web"); got != "" {
		t.Errorf("Deployment shop/web: conflicting HPA %q, want none (it aims at a Rollout)", got)
	}
	if got := deployments.conflictingHPA("shop/api"); got != "deployment-api" {
		t.Errorf("Deployment shop/api: conflicting HPA %q, want deployment-api", got)
	}
}
