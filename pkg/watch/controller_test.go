package watch

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
	"github.com/autoscale-io/reactive-autoscaler/pkg/watch/watchtest"
)

const interval = 30 * time.Second

func TestOnlyAnnotatedDeploymentsAreQueued(t *testing.T) {
	plain := deployment("plain", 1, nil)
	optedOut := deployment("opted-out", 1, map[string]string{})
	optedOut.Annotations["autoscale.io/reactive"] = "false"
	h := newHarness(t, managed("frontend", 1), plain, optedOut)

	if n := h.ctrl.queue.Len(); n != 1 {
		t.Fatalf("queue holds %d keys, want only the annotated one", n)
	}
	if k, _ := h.ctrl.queue.Get(); k != "shop/frontend" {
		t.Fatalf("queued %q, want shop/frontend", k)
	}
	// Evaluating an unmanaged key (as a stale queue item would) does nothing.
	h.clock.Step(interval)
	if after, err := h.ctrl.sync(h.ctx, "shop/plain"); err != nil || after != 0 {
		t.Fatalf("sync(plain) = %v, %v; want no requeue", after, err)
	}
	if q := h.prom.Queries(); q != 0 {
		t.Errorf("Prometheus was queried %d times for unmanaged Deployments", q)
	}
	if w := h.writes(); len(w) != 0 {
		t.Errorf("wrote to unmanaged Deployments: %v", w)
	}
}

func TestScalesUpThroughTheScaleSubresource(t *testing.T) {
	h := newHarness(t, managed("frontend", 1))
	h.prom.Set(promtest.Value(45)) // seed table: 45 RPS at 1 replica -> 3
	if after := h.evaluate("frontend", interval); after != interval {
		t.Errorf("requeue after %v, want the interval %v", after, interval)
	}
	if got := h.replicas("frontend"); got != 3 {
		t.Fatalf("replicas = %d, want 3", got)
	}
	if !slices.Contains(h.writes(), "update/deployments/scale") {
		t.Errorf("replicas not written through deployments/scale: %v", h.writes())
	}
	if ev := h.drainEvents(); !hasEvent(ev, "Normal SuccessfulRescale New size: 3; reason: smoothed RPS 45 above 10") {
		t.Errorf("events %q lack SuccessfulRescale with the reason", ev)
	}
	if q := h.prom.LastQuery(); q != `sum(rate(http_requests_total{namespace="shop",service="frontend"}[1m]))` {
		t.Errorf("query = %s", q)
	}
	st := h.status("frontend")
	if st.LastDecision == nil || st.LastDecision.To != 3 || st.LastDecision.From != 1 || st.LastDecision.Action != "up" || st.LastDecision.Code != "AboveThreshold" ||
		st.LastScaleTime == nil || !st.LastScaleTime.Time.Equal(h.clock.Now()) || st.DataHealth != "ok" || st.LastDecision.SmoothedRPS != 45 {
		t.Errorf("status annotation = %+v", st)
	}
	if got := h.gauge("reactive_autoscaler_target_desired_replicas", "frontend"); got != 3 {
		t.Errorf("desired replicas gauge = %v, want 3", got)
	}
}

func TestRemovingTheAnnotationOrDeletingStopsEvaluation(t *testing.T) {
	for _, how := range []string{"annotation removed", "deleted"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t, managed("frontend", 1))
			h.prom.Set(promtest.Value(5))
			h.evaluate("frontend", interval)
			if n := h.seriesFor("frontend"); n != 4 {
				t.Fatalf("want 4 per-target series after an evaluation (smoothed, desired, current, last evaluation), got %d", n)
			}
			if how == "deleted" {
				if err := h.client.AppsV1().Deployments("shop").Delete(h.ctx, "frontend", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
				h.sees("frontend", func(d *appsv1.Deployment) bool { return d == nil })
			} else {
				d, _ := h.client.AppsV1().Deployments("shop").Get(h.ctx, "frontend", metav1.GetOptions{})
				delete(d.Annotations, "autoscale.io/reactive")
				if _, err := h.client.AppsV1().Deployments("shop").Update(h.ctx, d, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
				h.sees("frontend", func(d *appsv1.Deployment) bool { return d != nil && d.Annotations["autoscale.io/reactive"] == "" })
			}
			if n := h.seriesFor("frontend"); n != 0 {
				t.Errorf("%d per-target metric series left after the target went away", n)
			}
			queries := h.prom.Queries()
			// The periodic item still in the queue finds nothing to do.
			if after := h.evaluate("frontend", interval); after != 0 {
				t.Errorf("requeued after %v; want no further evaluation", after)
			}
			if q := h.prom.Queries(); q != queries {
				t.Errorf("Prometheus queried again for an unmanaged target")
			}
			h.ctrl.mu.Lock()
			n := len(h.ctrl.targets)
			h.ctrl.mu.Unlock()
			if n != 0 {
				t.Errorf("%d targets still in memory", n)
			}
		})
	}
}

func TestInvalidAnnotationWarnsAndScalesNothing(t *testing.T) {
	h := newHarness(t, managed("frontend", 4, "thresholds", "1:10/0,2:30/10", "min-replicas", "0"))
	h.prom.Set(promtest.Value(0))
	if after := h.evaluate("frontend", interval); after != interval {
		t.Errorf("requeue after %v, want the default interval", after)
	}
	ev := h.drainEvents()
	want := `Warning InvalidAnnotation autoscale.io/min-replicas="0": must be an integer >= 1; autoscale.io/thresholds="1:10/0,2:30/10": hysteresis gap: DOWN(2)=10 must be below UP(1)=10; the Deployment is left untouched`
	if diff := cmp.Diff([]string{want}, ev); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	// The status says why, and that is the only write.
	if w := h.writes(); len(w) != 1 || w[0] != "patch/deployments" {
		t.Errorf("writes for an invalid Deployment: %v, want the status patch alone", w)
	}
	if st := h.status("frontend"); len(st.Warnings) != 1 || !strings.HasPrefix(st.Warnings[0], "not managed: autoscale.io/min-replicas") {
		t.Errorf("status warnings %q", st.Warnings)
	}
	if h.prom.Queries() != 0 {
		t.Error("queried Prometheus for an invalid Deployment")
	}
	// The same invalid settings do not repeat the Event every interval.
	h.evaluate("frontend", interval)
	if ev := h.drainEvents(); len(ev) != 0 {
		t.Errorf("repeated events: %v", ev)
	}
	if w := h.writes(); len(w) != 1 {
		t.Errorf("the unchanged invalid settings wrote again: %v", w)
	}
}

// TestUnknownKeysAndABadOptInAreNotSilent: an unknown autoscale.io/ key
// gets an UnknownAnnotation Event and a status warning (the rest is
// managed as set), gone once it is fixed; an opt-in that is neither true
// nor false gets an InvalidAnnotation Event.
func TestUnknownKeysAndABadOptInAreNotSilent(t *testing.T) {
	capital := deployment("capital", 1, map[string]string{})
	capital.Annotations["autoscale.io/reactive"] = "True"
	h := newHarness(t, managed("frontend", 1, "colldown", "5m"), capital)
	h.prom.Set(promtest.Value(45))
	h.evaluate("frontend", interval)
	if h.replicas("frontend") != 3 {
		t.Errorf("replicas %d: a workload with an unknown key is still managed as set", h.replicas("frontend"))
	}
	var optIn, unknown bool
	for _, e := range h.drainEvents() {
		optIn = optIn || strings.HasPrefix(e, `Warning InvalidAnnotation autoscale.io/reactive="True": must be true or false`)
		unknown = unknown || strings.HasPrefix(e, "Warning UnknownAnnotation unknown annotation autoscale.io/colldown (did you mean autoscale.io/cooldown?)")
	}
	if !optIn || !unknown {
		t.Errorf("events: opt-in warned %t, unknown key warned %t", optIn, unknown)
	}
	if st := h.status("frontend"); len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "colldown") {
		t.Errorf("status warnings %q", st.Warnings)
	}
	d, _ := h.client.AppsV1().Deployments("shop").Get(h.ctx, "frontend", metav1.GetOptions{})
	delete(d.Annotations, "autoscale.io/colldown")
	d.Annotations["autoscale.io/cooldown"] = "5m"
	if _, err := h.client.AppsV1().Deployments("shop").Update(h.ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.sees("frontend", func(d *appsv1.Deployment) bool { return d != nil && d.Annotations["autoscale.io/cooldown"] == "5m" })
	h.evaluate("frontend", interval)
	if st := h.status("frontend"); len(st.Warnings) != 0 {
		t.Errorf("status warnings %q after the fix, want none", st.Warnings)
	}
}

// TestATableThatStopsBelowMaxReplicasIsNotSilent: max-replicas 20 on the
// seed table (which ends at 5 with UP=inf) still scales as the table says,
// and gets a TableBelowMax Event and a status warning naming the setting
// that sizes it; with target-rps-per-replica set the warning is gone.
func TestATableThatStopsBelowMaxReplicasIsNotSilent(t *testing.T) {
	h := newHarness(t, managed("frontend", 1, "max-replicas", "20", "cooldown", "0s"))
	h.prom.Set(promtest.Value(400))
	h.evaluate("frontend", interval)
	if h.replicas("frontend") != 5 {
		t.Errorf("replicas %d, want the seed table's 5", h.replicas("frontend"))
	}
	var warned bool
	for _, e := range h.drainEvents() {
		warned = warned || strings.HasPrefix(e, "Warning TableBelowMax no sizing set: the built-in seed table")
	}
	if !warned {
		t.Error("no TableBelowMax Event")
	}
	if st := h.status("frontend"); len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "autoscale.io/target-rps-per-replica") {
		t.Errorf("status warnings %q", st.Warnings)
	}
	d, _ := h.client.AppsV1().Deployments("shop").Get(h.ctx, "frontend", metav1.GetOptions{})
	d.Annotations["autoscale.io/target-rps-per-replica"] = "20"
	if _, err := h.client.AppsV1().Deployments("shop").Update(h.ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.sees("frontend", func(d *appsv1.Deployment) bool {
		return d != nil && d.Annotations["autoscale.io/target-rps-per-replica"] == "20"
	})
	h.evaluate("frontend", interval)
	if r := h.replicas("frontend"); r != 20 {
		t.Errorf("replicas %d at 400 RPS and 20 per replica, want 20", r)
	}
	if st := h.status("frontend"); len(st.Warnings) != 0 {
		t.Errorf("status warnings %q after sizing, want none", st.Warnings)
	}
}

func TestConflictOnScaleWriteIsRetried(t *testing.T) {
	h := newHarness(t, managed("frontend", 1))
	h.prom.Set(promtest.Value(20))
	h.scale.Conflicts(2)
	h.evaluate("frontend", interval)
	if got := h.replicas("frontend"); got != 2 {
		t.Fatalf("replicas = %d after two conflicts, want 2", got)
	}
	n := 0
	for _, w := range h.writes() {
		if w == "update/deployments/scale" {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d scale updates, want 3 (two conflicts, one success)", n)
	}
}

func TestReplicasChangedByAPersonAreRespected(t *testing.T) {
	h := newHarness(t, managed("frontend", 1))
	h.prom.Set(promtest.Value(20))
	h.evaluate("frontend", interval) // -> 2
	// A person scales to 5; at 20 RPS the table says 2, but the cooldown
	// (60 s) holds, and the next decision starts from 5, not from 2.
	h.scaleByHand("frontend", 5)
	h.prom.Set(promtest.Value(150)) // EMA 111, within row 5 [90, inf]: hold at 5
	h.evaluate("frontend", interval)
	h.evaluate("frontend", interval)
	if got := h.replicas("frontend"); got != 5 {
		t.Fatalf("replicas = %d, want the person's 5 kept", got)
	}

	// A change between the decision (from the cache: 5) and the write (the
	// API says 4 by then) is respected too.
	h.prom.Set(promtest.Value(0)) // EMA 33: the decision is 5 -> 3
	h.scale.BeforeNextUpdate(func() {
		// Runs inside a reactor: use the tracker, not the clientset.
		obj, err := h.client.Tracker().Get(deploymentsGVR, "shop", "frontend")
		if err != nil {
			t.Error(err)
			return
		}
		d := obj.(*appsv1.Deployment).DeepCopy()
		four := int32(4)
		d.Spec.Replicas = &four
		d.ResourceVersion = watchtest.NextResourceVersion(d.ResourceVersion)
		if err := h.client.Tracker().Update(deploymentsGVR, d, "shop"); err != nil {
			t.Error(err)
		}
	})
	before := h.status("frontend").LastScaleTime
	h.clock.Step(interval)
	h.ctrl.sync(h.ctx, "shop/frontend") //nolint:errcheck // the outcome is checked below
	if got := h.replicas("frontend"); got != 4 {
		t.Errorf("replicas = %d; the write overrode a concurrent change to 4", got)
	}
	if after := h.status("frontend").LastScaleTime; !after.Equal(before) {
		t.Errorf("an unwritten decision started a cooldown: last scale %v, was %v", after, before)
	}
}

func TestDryRunReportsButWritesNoReplicas(t *testing.T) {
	h := newHarness(t, managed("frontend", 1, "dry-run", "true"))
	h.prom.Set(promtest.Value(45))
	h.evaluate("frontend", interval)
	if got := h.replicas("frontend"); got != 1 {
		t.Fatalf("dry-run wrote replicas: %d", got)
	}
	for _, w := range h.writes() {
		if strings.Contains(w, "scale") {
			t.Errorf("dry-run wrote %s", w)
		}
	}
	if ev := h.drainEvents(); !hasEvent(ev, "Normal DryRunRescale Would set new size: 3") {
		t.Errorf("events %q lack DryRunRescale", ev)
	}
	if st := h.status("frontend"); st.LastDecision == nil || !st.LastDecision.DryRun || st.LastDecision.To != 3 {
		t.Errorf("status does not report the dry-run decision: %+v", st)
	}
	if st := h.status("frontend"); st.LastScaleTime != nil {
		t.Errorf("a dry run recorded lastScaleTime %v: a restart would read it back as a real cooldown", st.LastScaleTime)
	}
}

func TestPausedNeitherEvaluatesNorScales(t *testing.T) {
	h := newHarness(t, managed("frontend", 1, "paused", "true"))
	h.prom.Set(promtest.Value(500))
	h.evaluate("frontend", interval)
	if h.prom.Queries() != 0 || len(h.writes()) != 0 {
		t.Errorf("paused target evaluated: %d queries, writes %v", h.prom.Queries(), h.writes())
	}
}

func TestOwnStatusWriteDoesNotTriggerAnEvaluation(t *testing.T) {
	h := newHarness(t, managed("frontend", 1))
	if k, _ := h.ctrl.queue.Get(); k != "shop/frontend" { // the initial add
		t.Fatalf("got %q", k)
	}
	h.ctrl.queue.Done("shop/frontend")
	h.prom.Set(promtest.Value(45))
	h.evaluate("frontend", interval)
	h.sees("frontend", func(d *appsv1.Deployment) bool {
		return d != nil && d.Annotations[StatusAnnotation] != "" && *d.Spec.Replicas == 3
	})
	if n := h.ctrl.queue.Len(); n != 0 {
		t.Errorf("the controller's own writes queued %d evaluations", n)
	}
	// A change of settings, by contrast, is evaluated at once (once the
	// minimum interval, 1 s here, has passed since the last evaluation).
	h.clock.Step(time.Second)
	d, _ := h.client.AppsV1().Deployments("shop").Get(h.ctx, "frontend", metav1.GetOptions{})
	d.Annotations["autoscale.io/max-replicas"] = "4"
	if _, err := h.client.AppsV1().Deployments("shop").Update(h.ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.sees("frontend", func(d *appsv1.Deployment) bool { return d != nil && d.Annotations["autoscale.io/max-replicas"] == "4" })
	if h.ctrl.queue.Len() != 1 {
		t.Errorf("a settings change queued %d evaluations, want 1", h.ctrl.queue.Len())
	}
}

func TestCooldownSurvivesARestart(t *testing.T) {
	h := newHarness(t, managed("frontend", 1))
	h.prom.Set(promtest.Value(20))
	h.evaluate("frontend", interval) // -> 2 at T
	d, _ := h.client.AppsV1().Deployments("shop").Get(h.ctx, "frontend", metav1.GetOptions{})

	// A new process (or leader) starts from what the API server holds.
	h2 := newHarness(t, d)
	h2.clock.SetTime(h.clock.Now().Add(20 * time.Second))
	h2.prom.Set(promtest.Value(50)) // above UP(2)=30
	h2.evaluate("frontend", 0)
	if got := h2.replicas("frontend"); got != 2 {
		t.Fatalf("a new process scaled inside the old cooldown: %d replicas", got)
	}
	h2.evaluate("frontend", 40*time.Second) // 60 s after the old action
	if got := h2.replicas("frontend"); got != 3 {
		t.Fatalf("replicas = %d after the cooldown, want 3", got)
	}
}

func TestLeanCacheDropsWhatTheDecisionDoesNotRead(t *testing.T) {
	d := managed("frontend", 2)
	d.Annotations["kubectl.kubernetes.io/last-applied-configuration"] = strings.Repeat("x", 10000)
	d.Spec.Template.Spec.Containers = nil
	d.Spec.Template.Annotations = map[string]string{"big": strings.Repeat("y", 1000)}
	h := newHarness(t, d)
	w, err := h.ctrl.get("shop", "frontend")
	if err != nil {
		t.Fatal(err)
	}
	got := w.(*appsv1.Deployment)
	if len(got.Annotations) != 1 || got.Spec.Template.Annotations != nil || *got.Spec.Replicas != 2 {
		t.Errorf("cached object keeps more than needed: annotations %v, template %v", got.Annotations, got.Spec.Template.Annotations)
	}
}

// TestLeanCacheKeepsNothingOfAWorkloadNotOptedIn: a workload that is not
// managed keeps only its opt-in in the cache, not the junk anyone may put
// in other autoscale.io/* annotations.
func TestLeanCacheKeepsNothingOfAWorkloadNotOptedIn(t *testing.T) {
	d := deployment("junk", 1, map[string]string{"autoscale.io/notes": strings.Repeat("z", 256<<10), "autoscale.io/max-replicas": "5"})
	d.Annotations["autoscale.io/reactive"] = "maybe"
	h := newHarness(t, d)
	w, err := h.ctrl.get("shop", "junk")
	if err != nil {
		t.Fatal(err)
	}
	if ann := w.GetAnnotations(); len(ann) != 1 || ann["autoscale.io/reactive"] != "maybe" {
		t.Errorf("cached annotations of a workload not opted in: %d of them, want only autoscale.io/reactive", len(ann))
	}
}

// TestAForgedFutureLastScaleTimeDoesNotFreezeTheTarget: a status whose
// lastScaleTime is a year ahead (no write of ours can be) starts the
// cooldown now, not in a year.
func TestAForgedFutureLastScaleTimeDoesNotFreezeTheTarget(t *testing.T) {
	future := time.Date(2027, 11, 26, 12, 0, 0, 0, time.UTC).Format(time.RFC3339)
	h := newHarness(t, managed("frontend", 1, "status", `{"lastScaleTime":"`+future+`","dataHealth":"ok"}`))
	h.prom.Set(promtest.Value(45))
	h.evaluate("frontend", 0) // inside the cooldown the forged time started now
	h.evaluate("frontend", 61*time.Second)
	if got := h.replicas("frontend"); got != 3 {
		t.Errorf("replicas = %d a cooldown after a forged future lastScaleTime, want 3", got)
	}
}

func (h *harness) status(name string) Status {
	h.t.Helper()
	h.flushStatuses()
	d, err := h.client.AppsV1().Deployments("shop").Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var st Status
	if err := json.Unmarshal([]byte(d.Annotations[StatusAnnotation]), &st); err != nil {
		h.t.Fatalf("status annotation %q: %v", d.Annotations[StatusAnnotation], err)
	}
	return st
}

func (h *harness) scaleByHand(name string, replicas int32) {
	h.t.Helper()
	if err := h.client.Tracker().Update(deploymentsGVR, withReplicas(h, name, replicas), "shop"); err != nil {
		h.t.Fatal(err)
	}
	h.sees(name, func(d *appsv1.Deployment) bool { return d != nil && *d.Spec.Replicas == replicas })
}

func withReplicas(h *harness, name string, replicas int32) *appsv1.Deployment {
	d, err := h.client.AppsV1().Deployments("shop").Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	d = d.DeepCopy()
	d.Spec.Replicas = &replicas
	return d
}

// seriesFor counts the per-target series of deployment name.
func (h *harness) seriesFor(name string) int {
	mfs, err := h.registry.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "deployment" && l.GetValue() == name {
					n++
				}
			}
		}
	}
	return n
}

// gauge reads the value of metric name for deployment target.
func (h *harness) gauge(name, target string) float64 {
	h.t.Helper()
	v, ok := h.metric(name, "deployment", target)
	if !ok {
		h.t.Fatalf("no series %s{deployment=%q}", name, target)
	}
	return v
}

// counter reads the counter name's series whose label is value (0 if none).
func (h *harness) counter(name, label, value string) float64 {
	h.t.Helper()
	v, _ := h.metric(name, label, value)
	return v
}

// metric finds the series of name whose label is value: its counter or
// gauge value.
func (h *harness) metric(name, label, value string) (float64, bool) {
	h.t.Helper()
	mfs, err := h.registry.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

func TestAReplicaThatLostTheLeaseWritesNothing(t *testing.T) {
	for _, when := range []string{"before the evaluation", "between the decision and the write"} {
		t.Run(when, func(t *testing.T) {
			// Its settings would be warned about (an unknown key, a table
			// below max-replicas): not by a replica that lost the lease.
			h := newHarness(t, managed("frontend", 1, "max-replicas", "20", "colldown", "1m"))
			h.prom.Set(promtest.Value(45)) // would scale 1 -> 3
			if when == "before the evaluation" {
				h.lostLease.Store(true)
			} else {
				// The first scale write meets a 409; while it is retried, a
				// renewal sees another holder.
				h.scale.Conflicts(1)
				h.scale.BeforeNextGet(func() { h.lostLease.Store(true) })
			}
			h.clock.Step(interval)
			after, err := h.ctrl.sync(h.ctx, "shop/frontend")
			if err != nil || after != interval {
				t.Errorf("sync = %v, %v; want no error and the next evaluation after the interval (%v)", after, err, interval)
			}
			if got := h.replicas("frontend"); got != 1 {
				t.Errorf("replicas = %d, want 1 (untouched)", got)
			}
			for _, w := range h.writes() {
				if w != "update/deployments/scale" || when == "before the evaluation" {
					t.Errorf("wrote %s after losing the lease", w)
				}
			}
			for _, ev := range h.drainEvents() {
				// Lost between the decision and the write, it still led
				// when it read the settings.
				if when == "before the evaluation" || !hasEvent([]string{ev}, "Warning UnknownAnnotation") && !hasEvent([]string{ev}, "Warning TableBelowMax") {
					t.Errorf("recorded event %q after losing the lease", ev)
				}
			}
		})
	}
}

// TestAFencedEvaluationKeepsItsTargetScheduled: the fence closes (no
// renewal landed within the renew deadline), the evaluation writes
// nothing, and a late renewal opens it again: the target is still on the
// schedule and its next evaluation scales.
func TestAFencedEvaluationKeepsItsTargetScheduled(t *testing.T) {
	h := newHarness(t, managed("frontend", 1))
	h.prom.Set(promtest.Value(45))
	h.lostLease.Store(true)
	h.clock.Step(interval)
	h.ctrl.processNextWorkItem(h.ctx) // the item queued when it appeared
	if w := h.writes(); len(w) != 0 {
		t.Fatalf("wrote %v while fenced", w)
	}
	h.ctrl.mu.Lock()
	due, ok := h.ctrl.due["shop/frontend"]
	h.ctrl.mu.Unlock()
	if !ok {
		t.Fatal("the fenced evaluation dropped its target from the schedule")
	}
	h.lostLease.Store(false) // a late renewal landed
	h.advance(due.Sub(h.clock.Now()))
	if n := h.ctrl.queue.Len(); n != 1 {
		t.Fatalf("%d evaluations queued when the next was due, want 1", n)
	}
	h.ctrl.processNextWorkItem(h.ctx)
	if got := h.replicas("frontend"); got != 3 {
		t.Errorf("replicas = %d after the lease came back, want 3", got)
	}
}

// TestAWorkloadReCreatedBeforeTheWriteIsNotScaled: the decision was made
// for one object; between it and the write, the Deployment is deleted and
// created again under its name, at the same replica count. The write
// conflicts (a new resourceVersion), and the retry reads a scale of
// another UID: the re-created workload is not scaled by a decision made
// for the one that was deleted.
func TestAWorkloadReCreatedBeforeTheWriteIsNotScaled(t *testing.T) {
	d := managed("frontend", 1)
	d.UID = "first"
	h := newHarness(t, d)
	h.prom.Set(promtest.Value(45)) // 3 replicas
	h.scale.BeforeNextUpdate(func() {
		again := d.DeepCopy()
		again.UID = "second"
		again.ResourceVersion = "100"
		again.Annotations = nil
		if err := h.client.Tracker().Delete(deploymentsGVR, "shop", "frontend"); err != nil {
			t.Error(err)
		}
		if err := h.client.Tracker().Create(deploymentsGVR, again, "shop"); err != nil {
			t.Error(err)
		}
	})
	h.clock.Step(interval)
	h.ctrl.sync(h.ctx, "shop/frontend") //nolint:errcheck // the outcome is checked below
	if got := h.replicas("frontend"); got != 1 {
		t.Errorf("the re-created Deployment has %d replicas, want 1: a decision for the deleted one was written to it", got)
	}
}
