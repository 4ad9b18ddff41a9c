package watch

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
)

// TestAScaleActionIsOneAPICall: the decision is written with the cached
// object's resourceVersion, so a scale action costs one call (no read
// first); the status annotation is patched afterwards by the status
// worker, not inside the evaluation.
func TestAScaleActionIsOneAPICall(t *testing.T) {
	h := newHarness(t, managed("frontend", 1))
	h.prom.Set(promtest.Value(45))
	h.client.ClearActions()
	h.clock.Step(interval)
	if _, err := h.ctrl.sync(h.ctx, "shop/frontend"); err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, a := range h.client.Actions() {
		if a.GetVerb() != "list" && a.GetVerb() != "watch" {
			calls = append(calls, a.GetVerb()+"/"+a.GetResource().Resource+"/"+a.GetSubresource())
		}
	}
	if len(calls) != 1 || calls[0] != "update/deployments/scale" {
		t.Errorf("the evaluation made the API calls %v, want only update/deployments/scale", calls)
	}
	if h.ctrl.statuses.Len() != 1 {
		t.Errorf("%d status writes queued, want 1", h.ctrl.statuses.Len())
	}
	if st := h.status("frontend"); st.LastDecision == nil || st.LastDecision.To != 3 {
		t.Errorf("status after the worker ran: %+v, want the decision to 3", st)
	}
}

// TestAFailedStatusWriteIsRetriedUntilItLands: a status patch the API
// server refuses is retried with backoff; a newer status queued meanwhile
// replaces it, so the newest is what lands; a replica that stops leading
// drops what it had queued.
func TestAFailedStatusWriteIsRetriedUntilItLands(t *testing.T) {
	h := newHarness(t, managed("frontend", 1))
	var failing atomic.Int32
	failing.Store(2)
	h.client.PrependReactor("patch", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failing.Add(-1) >= 0 {
			return true, nil, apierrors.NewInternalError(fmt.Errorf("etcd is away"))
		}
		return false, nil, nil
	})
	h.prom.Set(promtest.Value(20))
	h.evaluate("frontend", interval) // 1 -> 2; its status write fails
	if n := h.ctrl.statuses.NumRequeues("shop/frontend"); n != 1 {
		t.Fatalf("%d requeues after a failed status write, want 1", n)
	}
	h.sees("frontend", func(d *appsv1.Deployment) bool { return d != nil && *d.Spec.Replicas == 2 })
	h.prom.Set(promtest.Value(150))
	h.evaluate("frontend", time.Minute) // 2 -> 5 after the cooldown; the newer status replaces the failed one
	if r := h.replicas("frontend"); r != 5 {
		t.Fatalf("replicas %d, want 5", r)
	}
	h.advance(2 * time.Second) // the second failure's backoff
	if n := h.ctrl.statuses.Len(); n != 1 {
		t.Fatalf("the retry of the failed status write is not queued (%d)", n)
	}
	h.flushStatuses()
	if st := h.status("frontend"); st.LastDecision == nil || st.LastDecision.To != 5 {
		t.Errorf("status %+v, want the newest decision (to 5)", st.LastDecision)
	}
	if n := h.ctrl.statuses.NumRequeues("shop/frontend"); n != 0 {
		t.Errorf("%d requeues remembered after the write landed", n)
	}

	// A target no longer managed: its failing status write is not retried.
	failing.Store(1)
	h.ctrl.queueStatus("shop/frontend", Status{DataHealth: "ok"})
	h.ctrl.forget("shop/frontend")
	h.ctrl.queueStatus("shop/frontend", Status{DataHealth: "ok"})
	h.flushStatuses()
	h.clock.Step(time.Minute)
	if n := h.ctrl.statuses.Len() + h.ctrl.statuses.NumRequeues("shop/frontend"); n != 0 {
		t.Errorf("the status of a forgotten target is still retried (%d)", n)
	}

	// Fenced: the queued status is dropped, not retried.
	h.ctrl.queueStatus("shop/frontend", Status{DataHealth: "ok"})
	h.lostLease.Store(true)
	h.flushStatuses()
	h.clock.Step(time.Minute)
	if n := h.ctrl.statuses.Len() + h.ctrl.statuses.NumRequeues("shop/frontend"); n != 0 {
		t.Errorf("a fenced replica kept its status write queued (%d)", n)
	}
}
