package watch

import (
	"context"
	"math"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
)

func TestSpikeScalesUpInsideTheCooldownAndSkipsTheQueue(t *testing.T) {
	h := newHarness(t, managed("frontend", 1), managed("other", 1))
	h.prom.Set(promtest.Value(20))
	h.evaluate("frontend", interval) // -> 2; the 60 s cooldown starts
	if got := h.replicas("frontend"); got != 2 {
		t.Fatalf("replicas = %d, want 2", got)
	}
	h.prom.Set(promtest.Value(150))
	// A periodic evaluation inside the cooldown holds...
	h.evaluate("frontend", 10*time.Second)
	if got := h.replicas("frontend"); got != 2 {
		t.Fatalf("periodic evaluation scaled inside the cooldown: %d", got)
	}
	// ...a spike does not, and goes through its own queue.
	received := h.clock.Now()
	if !h.ctrl.Spike("shop", "frontend", received) {
		t.Fatal("Spike refused a managed Deployment")
	}
	if h.ctrl.Spike("shop", "missing", received) {
		t.Error("Spike accepted an unknown Deployment")
	}
	if n := h.ctrl.spikes.Len(); n != 1 {
		t.Fatalf("spike queue holds %d keys, want 1", n)
	}
	key, _ := h.ctrl.spikes.Get()
	h.clock.Step(5 * time.Millisecond)
	if _, err := h.ctrl.sync(h.ctx, key); err != nil {
		t.Fatal(err)
	}
	h.ctrl.spikes.Done(key)
	if got := h.replicas("frontend"); got != 5 {
		t.Fatalf("replicas = %d after the spike, want 5 (raw 150 RPS skips rows)", got)
	}
	if ev := h.drainEvents(); !hasEvent(ev, "Normal SuccessfulRescale New size: 5; reason: spike: raw RPS 150") {
		t.Errorf("events %q lack the spike's reason", ev)
	}
	if got := h.histogramCount("reactive_autoscaler_spike_to_scale_seconds"); got != 1 {
		t.Errorf("spike_to_scale_seconds observed %d times, want 1", got)
	}
	// The next periodic evaluation is an ordinary one again.
	h.prom.Set(promtest.Value(0))
	h.evaluate("frontend", interval)
	if got := h.replicas("frontend"); got != 5 {
		t.Errorf("a scale-down followed the spike inside the cooldown: %d", got)
	}
}

// TestSpikeWindowFollowsUp: the first spike evaluation sees a rate window
// that is still filling; follow-ups every second reach the capacity the
// spike needs inside the cooldown, and stop when the window closes.
func TestSpikeWindowFollowsUp(t *testing.T) {
	h := newHarness(t, managed("frontend", 1))
	h.prom.Set(promtest.Value(20)) // the rate window has caught a part of the spike
	h.ctrl.Spike("shop", "frontend", h.clock.Now())
	if !h.ctrl.processNextSpike(h.ctx) {
		t.Fatal("no spike to process")
	}
	if got := h.replicas("frontend"); got != 2 {
		t.Fatalf("replicas = %d after the first spike evaluation, want 2", got)
	}
	h.flushStatuses()
	h.observe()
	h.prom.Set(promtest.Value(150)) // the window has filled
	h.advance(time.Second)
	if n := h.ctrl.spikes.Len(); n != 1 {
		t.Fatalf("%d follow-ups queued a second after the spike evaluation, want 1", n)
	}
	h.ctrl.processNextSpike(h.ctx)
	if got := h.replicas("frontend"); got != 5 {
		t.Fatalf("the follow-up did not scale up inside the cooldown: %d", got)
	}
	// Within the window, periodic evaluations are spike evaluations too:
	// a dip does not scale down.
	h.prom.Set(promtest.Value(0))
	h.evaluate("frontend", 10*time.Second)
	h.evaluate("frontend", 10*time.Second)
	if got := h.replicas("frontend"); got != 5 {
		t.Errorf("scaled down inside the spike window: %d", got)
	}
	// After the window no follow-up is scheduled.
	h.clock.Step(31 * time.Second)
	for h.ctrl.spikes.Len() > 0 {
		h.ctrl.processNextSpike(h.ctx)
	}
	h.clock.Step(2 * time.Second)
	if n := h.ctrl.spikes.Len(); n != 0 {
		t.Errorf("%d follow-ups after the window closed", n)
	}
}

func TestByServiceFindsManagedDeployments(t *testing.T) {
	a := managed("web-a", 1, "service", "web")
	b := managed("web-b", 1, "service", "web")
	plain := managed("web-c", 1, "service", "web", "reactive", "false") // not opted in
	h := newHarness(t, a, b, plain, managed("api", 1))
	got := h.ctrl.ByService("shop", "web")
	if len(got) != 2 {
		t.Errorf("ByService(shop, web) = %v, want the two managed ones", got)
	}
	if got := h.ctrl.ByService("", "api"); len(got) != 1 || got[0] != "shop/api" {
		t.Errorf("ByService(all, api) = %v (the Deployment name is the default service)", got)
	}
	if got := h.ctrl.ByService("elsewhere", "web"); len(got) != 0 {
		t.Errorf("ByService(elsewhere, web) = %v", got)
	}
}

func (h *harness) histogramCount(name string) uint64 {
	n, _ := h.histogram(name)
	return n
}

// histogram returns the sample count and sum of a histogram.
func (h *harness) histogram(name string) (uint64, float64) {
	mfs, err := h.registry.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			hist := mf.GetMetric()[0].GetHistogram()
			return hist.GetSampleCount(), hist.GetSampleSum()
		}
	}
	return 0, 0
}

// TestANewProcessWarmsTheEMAFromHistory: a takeover at 5 replicas under a
// load that has just dropped decides from the rate the old leader saw, and
// still does not scale down on its first evaluation.
func TestANewProcessWarmsTheEMAFromHistory(t *testing.T) {
	h := newHarness(t, managed("frontend", 5))
	h.prom.Set(promtest.Answer{Values: []string{"0"}, History: []string{"150", "150", "150", "150", "150"}})
	h.evaluate("frontend", interval)
	if got := h.gauge("reactive_autoscaler_target_smoothed_rps", "frontend"); math.Abs(got-45) > 1e-9 {
		t.Errorf("smoothed RPS = %v, want 45 (warmed from 150, then one sample of 0)", got)
	}
	if got := h.replicas("frontend"); got != 5 {
		t.Errorf("the first evaluation after a takeover scaled down to %d", got)
	}
	// One warm-up per target and process, and one read of the built-in
	// forecaster's season per refresh (predict.SeasonRefresh). The season
	// is read in the background, so its query may land after the
	// evaluation that started it: wait for it, then evaluate again within
	// the refresh, which adopts the read and starts none.
	err := wait.PollUntilContextTimeout(h.ctx, time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return h.prom.RangeQueries() >= 2, nil
	})
	if err != nil {
		t.Fatalf("%d range queries after 10 s, want the warm-up and the season read", h.prom.RangeQueries())
	}
	h.evaluate("frontend", interval)
	h.evaluate("frontend", interval)
	if n := h.prom.RangeQueries(); n != 2 {
		t.Errorf("%d range queries, want one warm-up and one season read per target and process", n)
	}
}

// TestAFencedReplicaTakesNoTrigger: between a renewal that saw another
// holder and the exit, the controller is not ready, so the webhook answers
// 503 (Alertmanager retries) instead of 200 for an evaluation it would drop.
func TestAFencedReplicaTakesNoTrigger(t *testing.T) {
	h := newHarness(t, managed("frontend", 1))
	h.ctrl.running.Store(true)
	if !h.ctrl.Ready() {
		t.Fatal("a running leader is not ready")
	}
	h.lostLease.Store(true)
	if h.ctrl.Ready() {
		t.Error("a replica that saw another holder still takes triggers")
	}
}
