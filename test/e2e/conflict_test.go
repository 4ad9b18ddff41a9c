//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestAnHPAOnTheDeploymentMakesItStandAside: a real HPA (served and run by
// the real kube-controller-manager) targets an annotated Deployment under
// load: the controller writes nothing to it and says so once; when the
// HPA is deleted, it scales the Deployment.
func TestAnHPAOnTheDeploymentMakesItStandAside(t *testing.T) {
	s := newScenario(t)
	svc := s.demoService("contested")
	s.deployment("contested", 1, fast())
	one := int32(1)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "contested-hpa", Namespace: s.ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "contested"},
			MinReplicas:    &one, MaxReplicas: 10,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &[]int32{80}[0]}}}},
		},
	}
	if _, err := client.AutoscalingV2().HorizontalPodAutoscalers(s.ns).Create(s.ctx, hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.startAutoscaler()
	s.load(svc, "steady", 80) // 4 replicas, were it managed
	s.poll("the ConflictingAutoscaler Event", time.Minute, func() (bool, error) {
		ev := s.events("contested", "ConflictingAutoscaler")
		return len(ev) == 1 && strings.Contains(ev[0].Message, "contested-hpa"), nil
	})
	s.afterEvaluations(5)
	if r := s.replicas("contested"); r != 1 {
		t.Errorf("the controller scaled a Deployment an HPA targets to %d", r)
	}
	if ev := s.events("contested", "ConflictingAutoscaler"); len(ev) != 1 || ev[0].Count > 1 {
		t.Errorf("ConflictingAutoscaler reported %d times (count %d), want once", len(ev), ev[0].Count)
	}
	if st := s.get("contested").Annotations["autoscale.io/status"]; !strings.Contains(st, `"conflict":"contested-hpa"`) {
		t.Errorf("status = %s", st)
	}
	if err := client.AutoscalingV2().HorizontalPodAutoscalers(s.ns).Delete(s.ctx, "contested-hpa", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	s.waitReplicas("contested", "scaled up once the HPA is gone", 90*time.Second, func(r int32) bool { return r > 1 })
}
