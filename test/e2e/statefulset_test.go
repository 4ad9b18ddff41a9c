//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

// TestStatefulSetScalesUpUnderLoadAndDownAfter: an annotated StatefulSet
// (the StatefulSet controller on, its pods on kwok) is scaled through
// statefulsets/scale as a Deployment is: up under load, with its pods
// becoming Ready, down after, with SuccessfulRescale Events on the
// StatefulSet and its status annotation.
func TestStatefulSetScalesUpUnderLoadAndDownAfter(t *testing.T) {
	s := newScenario(t)
	svc := s.demoService("ledger")
	if _, err := client.AppsV1().StatefulSets(s.ns).Create(s.ctx, localenv.StatefulSet(s.ns, "ledger", 1, fast()), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	get := func() *appsv1.StatefulSet {
		sts, err := client.AppsV1().StatefulSets(s.ns).Get(s.ctx, "ledger", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return sts
	}
	s.startAutoscaler()
	s.load(svc, "steady", 80) // seed table: 80 RPS needs 4 replicas
	s.poll("the StatefulSet scaled up to 4", 90*time.Second, func() (bool, error) { return *get().Spec.Replicas == 4, nil })
	s.poll("its pods Ready", time.Minute, func() (bool, error) { return get().Status.ReadyReplicas == 4, nil })

	s.load(svc, "stop", 0)
	s.poll("the StatefulSet scaled down to 1", 90*time.Second, func() (bool, error) { return *get().Spec.Replicas == 1, nil })
	s.poll("SuccessfulRescale Events on the StatefulSet", 30*time.Second, func() (bool, error) {
		ev := s.eventsOf("StatefulSet", "ledger", "SuccessfulRescale")
		return len(ev) > 0 && strings.Contains(ev[0].Message, "New size: "), nil
	})
	st := get().Annotations["autoscale.io/status"]
	if !strings.Contains(st, `"dataHealth":"ok"`) || !strings.Contains(st, `"toReplicas":1`) {
		t.Errorf("status annotation = %s", st)
	}
}
