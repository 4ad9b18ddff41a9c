package watch

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
)

func statefulSet(name string, replicas int32, ann map[string]string) *appsv1.StatefulSet {
	a := map[string]string{"autoscale.io/reactive": "true"}
	for k, v := range ann {
		a[k] = v
	}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Annotations: a, ResourceVersion: "1"},
		Spec:       appsv1.StatefulSetSpec{Replicas: &replicas, ServiceName: name},
	}
}

// TestAStatefulSetIsScaledLikeADeployment: the same annotations scale a
// StatefulSet through statefulsets/scale, with the same Events and status
// annotation; a Deployment of the same name is not this controller's; an
// HPA on the StatefulSet makes it stand aside, one on a Deployment of that
// name does not.
func TestAStatefulSetIsScaledLikeADeployment(t *testing.T) {
	onQueue := hpaFor("queue-hpa", "queue", "apps/v1")
	onQueue.Spec.ScaleTargetRef.Kind = "StatefulSet"
	h := newHarnessWith(t, harnessOptions{kind: StatefulSets},
		statefulSet("cache", 1, nil), statefulSet("queue", 1, nil), managed("cache", 1),
		onQueue, hpaFor("deployment-hpa", "cache", "apps/v1"))
	h.prom.Set(promtest.Value(45)) // the seed table: 3 replicas
	if w, err := h.ctrl.get("shop", "cache"); err != nil {
		t.Fatal(err)
	} else if sts, ok := w.(*appsv1.StatefulSet); !ok || sts.Spec.ServiceName != "" || len(sts.Annotations) != 1 {
		t.Errorf("the cache holds %#v, want a lean StatefulSet", w)
	}
	h.evaluate("cache", 0)
	sts, err := h.client.AppsV1().StatefulSets("shop").Get(h.ctx, "cache", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *sts.Spec.Replicas != 3 {
		t.Fatalf("StatefulSet cache at %d replicas, want 3", *sts.Spec.Replicas)
	}
	var st Status
	if err := json.Unmarshal([]byte(sts.Annotations[StatusAnnotation]), &st); err != nil || st.LastDecision == nil || st.LastDecision.To != 3 {
		t.Errorf("status %q (%v), want a last decision to 3", sts.Annotations[StatusAnnotation], err)
	}
	if d, _ := h.client.AppsV1().Deployments("shop").Get(h.ctx, "cache", metav1.GetOptions{}); *d.Spec.Replicas != 1 {
		t.Errorf("the Deployment of the same name was scaled to %d", *d.Spec.Replicas)
	}
	w := h.writes()
	if !slices.Contains(w, "update/statefulsets/scale") || !slices.Contains(w, "patch/statefulsets") || slices.ContainsFunc(w, func(s string) bool {
		return strings.Contains(s, "deployments")
	}) {
		t.Errorf("writes %v, want the StatefulSet's scale and status only", w)
	}
	if ev := h.drainEvents(); !hasEvent(ev, "Normal SuccessfulRescale New size: 3") {
		t.Errorf("events %v, want SuccessfulRescale", ev)
	}

	h.evaluate("queue", 0)
	q, _ := h.client.AppsV1().StatefulSets("shop").Get(h.ctx, "queue", metav1.GetOptions{})
	if *q.Spec.Replicas != 1 || !strings.Contains(q.Annotations[StatusAnnotation], `"conflict":"queue-hpa"`) {
		t.Errorf("queue, which an HPA scales: %d replicas, status %s; want 1 and the conflict", *q.Spec.Replicas, q.Annotations[StatusAnnotation])
	}
	if ev := h.drainEvents(); !hasEvent(ev, "Warning ConflictingAutoscaler HorizontalPodAutoscaler queue-hpa also scales this StatefulSet") {
		t.Errorf("events %v, want ConflictingAutoscaler naming the StatefulSet", ev)
	}
}
