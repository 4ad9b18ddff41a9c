// Package watchtest makes a fake clientset serve the scale subresource of
// the Deployments and StatefulSets it tracks, as the API server does, for
// tests of code that scales through it.
package watchtest

import (
	"fmt"
	"strconv"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// NextResourceVersion is the resourceVersion after rv ("" and
// non-numbers count as 0): tests that change an object behind the
// controller's back give it a new one, as the API server does.
func NextResourceVersion(rv string) string {
	n, _ := strconv.ParseUint(rv, 10, 64)
	return strconv.FormatUint(n+1, 10)
}

// replicas points at spec.replicas of a Deployment or a StatefulSet.
func replicas(obj runtime.Object) **int32 {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Replicas
	case *appsv1.StatefulSet:
		return &o.Spec.Replicas
	}
	return nil
}

// Scale serves deployments/scale on a fake clientset. Its fields let a test
// interfere with the writes.
type Scale struct {
	mu           sync.Mutex
	conflicts    int
	beforeGet    func()
	beforeUpdate func()
}

// Conflicts makes the next n scale updates fail with 409.
func (s *Scale) Conflicts(n int) {
	s.mu.Lock()
	s.conflicts = n
	s.mu.Unlock()
}

// BeforeNextGet runs f once, before the next scale read: a change made there
// lands between a decision and its write.
func (s *Scale) BeforeNextGet(f func()) {
	s.mu.Lock()
	s.beforeGet = f
	s.mu.Unlock()
}

// BeforeNextUpdate runs f once, before the next scale write is checked and
// applied: a change made there (with a new resourceVersion, as the API
// server would give it) makes a write conditioned on the old one conflict.
func (s *Scale) BeforeNextUpdate(f func()) {
	s.mu.Lock()
	s.beforeUpdate = f
	s.mu.Unlock()
}

// take returns and clears *hook under the lock.
func (s *Scale) take(hook *func()) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := *hook
	*hook = nil
	return f
}

// InstallScale makes client serve get and update of deployments/scale and
// statefulsets/scale.
func InstallScale(client *fake.Clientset) *Scale {
	s := &Scale{}
	for _, resource := range []string{"deployments", "statefulsets"} {
		s.install(client, schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: resource})
	}
	return s
}

func (s *Scale) install(client *fake.Clientset, gvr schema.GroupVersionResource) {
	tracker := client.Tracker()
	client.PrependReactor("get", gvr.Resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
		ga := a.(k8stesting.GetAction)
		if ga.GetSubresource() != "scale" {
			return false, nil, nil
		}
		if hook := s.take(&s.beforeGet); hook != nil {
			hook()
		}
		obj, err := tracker.Get(gvr, ga.GetNamespace(), ga.GetName())
		if err != nil {
			return true, nil, err
		}
		m := obj.(metav1.Object)
		return true, &autoscalingv1.Scale{
			// The API server's scale carries its object's UID.
			ObjectMeta: metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), ResourceVersion: m.GetResourceVersion(), UID: m.GetUID()},
			Spec:       autoscalingv1.ScaleSpec{Replicas: **replicas(obj)},
		}, nil
	})
	client.PrependReactor("update", gvr.Resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
		ua := a.(k8stesting.UpdateAction)
		if ua.GetSubresource() != "scale" {
			return false, nil, nil
		}
		sc := ua.GetObject().(*autoscalingv1.Scale)
		if hook := s.take(&s.beforeUpdate); hook != nil {
			hook()
		}
		s.mu.Lock()
		conflict := s.conflicts > 0
		if conflict {
			s.conflicts--
		}
		s.mu.Unlock()
		if conflict {
			return true, nil, apierrors.NewConflict(gvr.GroupResource(), sc.Name, fmt.Errorf("the object has been modified"))
		}
		obj, err := tracker.Get(gvr, sc.Namespace, sc.Name)
		if err != nil {
			return true, nil, err
		}
		m := obj.(metav1.Object)
		if sc.ResourceVersion != "" && sc.ResourceVersion != m.GetResourceVersion() {
			return true, nil, apierrors.NewConflict(gvr.GroupResource(), sc.Name, fmt.Errorf("the object has been modified"))
		}
		obj = obj.DeepCopyObject()
		n := sc.Spec.Replicas
		*replicas(obj) = &n
		m = obj.(metav1.Object)
		m.SetResourceVersion(NextResourceVersion(m.GetResourceVersion()))
		out := sc.DeepCopy()
		out.ResourceVersion = m.GetResourceVersion()
		return true, out, tracker.Update(gvr, obj, sc.Namespace)
	})
}
