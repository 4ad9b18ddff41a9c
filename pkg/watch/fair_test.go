package watch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
)

const slowQuery = `sum(rate(slow_requests_total{namespace="{{.Namespace}}"}[1m]))`

// TestOneNamespacesSlowQueriesLeaveWorkersForTheOthers: eight targets of
// one tenant whose queries hang (until the 1 s query timeout) and one
// target of another namespace, on two workers: the tenant gets one worker
// at a time, so the other namespace's target is evaluated before any of
// the tenant's evaluations ends. (Without the limit both workers wait on
// the tenant for rounds.)
func TestOneNamespacesSlowQueriesLeaveWorkersForTheOthers(t *testing.T) {
	var objs []runtime.Object
	for i := range 8 {
		d := managed(fmt.Sprintf("noisy-%d", i), 1, "query", slowQuery)
		d.Namespace = "tenant"
		objs = append(objs, d)
	}
	objs = append(objs, managed("victim", 1))
	h := newHarness(t, objs...)
	h.prom.Set(promtest.Value(5))
	h.prom.SetFor(`sum(rate(slow_requests_total{namespace="tenant"}[1m]))`, promtest.Answer{Delay: time.Hour})
	// The tenant's keys ahead of the victim's in the queue.
	for h.ctrl.queue.Len() > 0 {
		k, _ := h.ctrl.queue.Get()
		h.ctrl.queue.Done(k)
	}
	for i := range 8 {
		h.ctrl.queue.Add(fmt.Sprintf("tenant/noisy-%d", i))
	}
	h.ctrl.queue.Add("shop/victim")
	runCtx, stop := context.WithCancel(h.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.ctrl.Run(runCtx, 2)
	}()
	defer func() { stop(); <-done }()
	var slowDone float64
	h.waitEvaluated("the other namespace's target evaluated", func() bool {
		slowDone = h.counter("reactive_autoscaler_evaluations_total", "result", "no_data")
		return h.counter("reactive_autoscaler_evaluations_total", "result", "held") >= 1
	})
	if slowDone > 1 {
		t.Errorf("the other namespace's target waited for %v of the tenant's slow evaluations, want at most 1", slowDone)
	}
}

func TestAParkedKeyIsQueuedWhenItsNamespaceFreesASlot(t *testing.T) {
	h := newHarness(t)
	h.ctrl.periodicSlots.setLimit(1)
	if !h.ctrl.periodicSlots.take("tenant", "tenant/a") {
		t.Fatal("the first key of a namespace was parked")
	}
	for range 2 { // parked once, however often it comes
		if h.ctrl.periodicSlots.take("tenant", "tenant/b") {
			t.Fatal("a second key ran beside the first at a limit of 1")
		}
	}
	if !h.ctrl.periodicSlots.take("shop", "shop/c") {
		t.Fatal("another namespace's key was parked")
	}
	if n := h.ctrl.queue.Len(); n != 0 {
		t.Fatalf("queue holds %d before a slot is freed", n)
	}
	h.ctrl.periodicSlots.free("tenant")
	if k, _ := h.ctrl.queue.Get(); k != "tenant/b" || h.ctrl.queue.Len() != 0 {
		t.Errorf("queued %q (and %d more) when the slot was freed, want tenant/b once", k, h.ctrl.queue.Len())
	}
}

// TestOneNamespacesSpikesLeaveASpikeWorkerForAnother: four targets of one
// tenant spike at once and their queries hang (until the 1 s query
// timeout); another namespace's target spikes right after. The tenant's
// spikes take one spike worker at a time, so the other namespace's spike
// is evaluated before any of the tenant's ends. (Without the spike slots
// it waited behind all four, or two with two spike workers.)
func TestOneNamespacesSpikesLeaveASpikeWorkerForAnother(t *testing.T) {
	var objs []runtime.Object
	for i := range 4 {
		d := managed(fmt.Sprintf("noisy-%d", i), 1, "query", slowQuery)
		d.Namespace = "tenant"
		objs = append(objs, d)
	}
	objs = append(objs, managed("victim", 1))
	h := newHarness(t, objs...)
	h.prom.Set(promtest.Value(5))
	h.prom.SetFor(`sum(rate(slow_requests_total{namespace="tenant"}[1m]))`, promtest.Answer{Delay: time.Hour})
	for h.ctrl.queue.Len() > 0 { // no periodic evaluation: spikes only
		k, _ := h.ctrl.queue.Get()
		h.ctrl.queue.Done(k)
	}
	now := h.clock.Now()
	for i := range 4 {
		if !h.ctrl.Spike("tenant", fmt.Sprintf("noisy-%d", i), now) {
			t.Fatal("Spike refused a managed target")
		}
	}
	h.ctrl.Spike("shop", "victim", now)
	runCtx, stop := context.WithCancel(h.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.ctrl.Run(runCtx, 4) // two spike workers
	}()
	defer func() { stop(); <-done }()
	var slowDone float64
	h.waitEvaluated("the other namespace's spike evaluated", func() bool {
		slowDone = h.counter("reactive_autoscaler_evaluations_total", "result", "no_data")
		return h.counter("reactive_autoscaler_evaluations_total", "result", "held") >= 1
	})
	if slowDone > 1 {
		t.Errorf("the other namespace's spike waited for %v of the tenant's slow spike evaluations, want at most 1", slowDone)
	}
	// The parked spikes are not lost: each of the tenant's is evaluated.
	h.waitEvaluated("every tenant spike evaluated", func() bool {
		return h.counter("reactive_autoscaler_evaluations_total", "result", "no_data") >= 4
	})
}
