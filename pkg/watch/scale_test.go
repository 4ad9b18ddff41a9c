package watch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// TestBatchedTargetsShareOneQueryPerTick: 200 targets on the default query
// are answered by one grouped query per tick (and one grouped range query
// for their warm-up), each from its own service's series; a service
// missing from the answer is no data for that target only; a target with
// its own query keeps its own.
func TestBatchedTargetsShareOneQueryPerTick(t *testing.T) {
	var objs []runtime.Object
	grouped := map[string]string{}
	for i := range 200 {
		name := fmt.Sprintf("svc-%03d", i)
		objs = append(objs, managed(name, 1, "predictor", "none"))
		if i%2 == 0 {
			grouped["shop/"+name] = "45" // seed table: 3 replicas
		} else {
			grouped["shop/"+name] = "5"
		}
	}
	delete(grouped, "shop/svc-007") // its series is missing
	objs = append(objs, managed("custom", 1, "query", `sum(rate(my_requests_total{app="custom"}[1m]))`))
	h := newHarnessWith(t, harnessOptions{batch: true}, objs...)
	h.prom.Set(promtest.Answer{Grouped: grouped})
	h.prom.SetFor(`sum(rate(my_requests_total{app="custom"}[1m]))`, promtest.Value(45))

	cycle := func() int64 {
		before := h.prom.Queries()
		// Mid-tick, as a real controller's evaluations are.
		h.clock.SetTime(h.clock.Now().Truncate(interval).Add(interval + 3*time.Second))
		for i := range 200 {
			name := fmt.Sprintf("svc-%03d", i)
			after, err := h.ctrl.sync(h.ctx, "shop/"+name)
			if err != nil {
				t.Fatal(err)
			}
			if want := interval - 3*time.Second; after != want {
				t.Fatalf("%s is requeued after %v, want %v (the next tick of its interval)", name, after, want)
			}
		}
		if _, err := h.ctrl.sync(h.ctx, "shop/custom"); err != nil {
			t.Fatal(err)
		}
		return h.prom.Queries() - before
	}
	start := h.prom.Queries()
	cycle()
	// The custom target's season is read in the background: wait for it.
	h.prom.WaitQueries(start+5, 10*time.Second)
	if q := h.prom.Queries() - start; q != 5 {
		t.Errorf("first cycle: %d Prometheus queries, want 5 (the grouped range query to warm up and the grouped query; the custom target's own three: warm-up, rate, and its built-in forecaster's season)", q)
	}
	if q := cycle(); q != 2 {
		t.Errorf("second cycle: %d Prometheus queries, want 2 (the grouped query and the custom target's own)", q)
	}
	if got, want := h.replicas("svc-000"), int32(3); got != want {
		t.Errorf("svc-000 (45 RPS) has %d replicas, want %d", got, want)
	}
	if got := h.replicas("svc-001"); got != 1 {
		t.Errorf("svc-001 (5 RPS) has %d replicas, want 1", got)
	}
	if got := h.replicas("custom"); got != 3 {
		t.Errorf("custom (own query, 45 RPS) has %d replicas, want 3", got)
	}
	if st := h.status("svc-007"); !strings.Contains(st.DataHealth, `no data: empty: query "sum by (namespace, service) (rate(http_requests_total[1m])){namespace=\"shop\",service=\"svc-007\"}" returned no series`) {
		t.Errorf("svc-007, missing from the grouped answer: data health %q", st.DataHealth)
	}
	// A target whose data is fine and was never scaled has nothing to
	// report: no status written, no Event.
	if d, err := h.client.AppsV1().Deployments("shop").Get(h.ctx, "svc-009", metav1.GetOptions{}); err != nil || d.Annotations[StatusAnnotation] != "" {
		t.Errorf("svc-009: status %q (%v); one missing service must not affect the others, and a quiet start writes nothing", d.Annotations[StatusAnnotation], err)
	}
	for _, ev := range h.drainEvents() {
		if strings.Contains(ev, "svc-009") || (strings.Contains(ev, "FailedGetMetrics") && !strings.Contains(ev, "svc-007")) {
			t.Errorf("event %q: only svc-007 lacks data", ev)
		}
	}
}

// blockingPredictor hangs for one Deployment until released (or the
// evaluation's context ends), and answers the others at once.
type blockingPredictor struct {
	slow    string
	release chan struct{}
	hanging chan struct{} // closed when the slow one is first asked
	asked   atomic.Int32
}

func (p *blockingPredictor) Predict(ctx context.Context, req scaler.PredictRequest) (scaler.Prediction, error) {
	if req.Deployment == p.slow {
		if p.asked.Add(1) == 1 {
			close(p.hanging)
		}
		select {
		case <-p.release:
		case <-ctx.Done():
		}
	}
	return scaler.Prediction{Replicas: req.CurrentReplicas, HasReplicas: true}, nil
}

// TestAHangingTargetDoesNotDelayTheOthers: one target's predictor hangs;
// the workers evaluate the other 50 targets while it does.
func TestAHangingTargetDoesNotDelayTheOthers(t *testing.T) {
	p := &blockingPredictor{slow: "slow", release: make(chan struct{}), hanging: make(chan struct{})}
	objs := []runtime.Object{managed("slow", 1, "predictor", "external", "strategy", "max")}
	for i := range 50 {
		objs = append(objs, managed(fmt.Sprintf("fast-%02d", i), 1, "predictor", "external", "strategy", "max"))
	}
	h := newHarnessWithPredictor(t, p, objs...)
	h.prom.Set(promtest.Value(5))
	runCtx, stop := context.WithCancel(h.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.ctrl.Run(runCtx, 4)
	}()
	// The slow target may be dequeued after the others: wait for both.
	h.waitEvaluated("the other targets evaluated while one hangs", func() bool {
		return h.counter("reactive_autoscaler_evaluations_total", "result", "held") >= 50
	})
	select {
	case <-p.hanging:
	case <-time.After(20 * time.Second):
		t.Fatal("the slow target was never evaluated")
	}
	if p.asked.Load() != 1 {
		t.Fatalf("the slow target was asked %d times, want 1 (still hanging)", p.asked.Load())
	}
	close(p.release)
	h.waitEvaluated("the slow target's evaluation finished", func() bool {
		return h.counter("reactive_autoscaler_evaluations_total", "result", "held") >= 51
	})
	if n := h.histogramCount("reactive_autoscaler_evaluation_lag_seconds"); n < 51 {
		t.Errorf("evaluation lag observed %d times, want one per evaluation (51)", n)
	}
	stop()
	<-done
}

// TestRecommendedTargetsShareTheirGroupedFastQuery: targets on the
// recommended profile (an irate query) are batched too, by their own
// grouped query, beside the default-query targets.
func TestRecommendedTargetsShareTheirGroupedFastQuery(t *testing.T) {
	var objs []runtime.Object
	for i := range 20 {
		objs = append(objs, managed(fmt.Sprintf("fast-%02d", i), 1, "profile", "recommended", "target-rps-per-replica", "10", "predictor", "none"))
		objs = append(objs, managed(fmt.Sprintf("slow-%02d", i), 1, "target-rps-per-replica", "10", "predictor", "none"))
	}
	h := newHarnessWith(t, harnessOptions{batch: true}, objs...)
	fast, slow := map[string]string{}, map[string]string{}
	for i := range 20 {
		fast[fmt.Sprintf("shop/fast-%02d", i)] = "35"
		slow[fmt.Sprintf("shop/slow-%02d", i)] = "15"
	}
	h.prom.SetFor(scaler.GroupedFastQuery, promtest.Answer{Grouped: fast})
	h.prom.SetFor(scaler.GroupedDefaultQuery, promtest.Answer{Grouped: slow})
	h.prom.Set(promtest.Answer{Status: 500}) // any query per target fails
	for range 2 {
		before := h.prom.Queries()
		h.clock.SetTime(h.clock.Now().Truncate(time.Minute).Add(time.Minute + 3*time.Second))
		for i := range 20 {
			for _, name := range []string{fmt.Sprintf("fast-%02d", i), fmt.Sprintf("slow-%02d", i)} {
				if _, err := h.ctrl.sync(h.ctx, "shop/"+name); err != nil {
					t.Fatal(err)
				}
			}
		}
		if q := h.prom.Queries() - before; q > 4 {
			t.Errorf("%d Prometheus queries for 40 targets, want at most 4 (two grouped queries and two grouped warm-ups)", q)
		}
	}
	if got := h.replicas("fast-00"); got != 4 {
		t.Errorf("fast-00 (35 RPS by the grouped irate) has %d replicas, want 4", got)
	}
	if got := h.replicas("slow-00"); got != 2 {
		t.Errorf("slow-00 (15 RPS by the grouped rate) has %d replicas, want 2", got)
	}
}

// TestAnotherNamespacesTrafficIsNotOurs: a Deployment named like ours in
// another namespace, under heavy load, adds nothing to our rate: the
// default query and its grouped form are scoped by namespace.
func TestAnotherNamespacesTrafficIsNotOurs(t *testing.T) {
	other := managed("frontend", 1)
	other.Namespace = "other"
	h := newHarnessWith(t, harnessOptions{batch: true}, managed("frontend", 1, "predictor", "none"), other)
	h.prom.Set(promtest.Answer{Grouped: map[string]string{"shop/frontend": "5", "other/frontend": "500"}})
	h.evaluate("frontend", interval)
	if r := h.replicas("frontend"); r != 1 {
		t.Errorf("shop/frontend at 5 RPS went to %d replicas: another namespace's 500 RPS counted", r)
	}
}

// TestTheIntervalRunsFromTheEvaluationsStart: an evaluation that takes
// long (here its scale write, 1.5 s on the fake clock) does not push the
// next one back: it is due one interval after this one started. (Scheduled
// from its end, a slow API server stretched every period and the lag
// metric could not show it.)
func TestTheIntervalRunsFromTheEvaluationsStart(t *testing.T) {
	h := newHarness(t, managed("frontend", 1, "interval", "10s"))
	h.prom.Set(promtest.Value(45)) // scale to 3: a scale write
	h.scale.BeforeNextUpdate(func() { h.clock.Step(1500 * time.Millisecond) })
	start := h.clock.Now()
	h.ctrl.schedule("shop/frontend", 0)
	if !h.ctrl.processNextWorkItem(h.ctx) {
		t.Fatal("the queue shut down")
	}
	if r := h.replicas("frontend"); r != 3 {
		t.Fatalf("replicas %d, want 3", r)
	}
	h.ctrl.mu.Lock()
	due := h.ctrl.due["shop/frontend"]
	h.ctrl.mu.Unlock()
	if want := start.Add(10 * time.Second); !due.Equal(want) {
		t.Errorf("next evaluation due %v after the start, want %v (one interval)", due.Sub(start), want.Sub(start))
	}
}

// TestALateStartShowsInTheLagMetric: an evaluation slower than the
// interval (its scale write, 12 s on the fake clock, against 10 s) makes the
// next one start 2 s after it was due, and the lag metric says so.
func TestALateStartShowsInTheLagMetric(t *testing.T) {
	h := newHarness(t, managed("frontend", 1, "interval", "10s"))
	h.prom.Set(promtest.Value(45))
	h.scale.BeforeNextUpdate(func() { h.clock.Step(12 * time.Second) })
	const lagMetric = "reactive_autoscaler_evaluation_lag_seconds"
	h.ctrl.schedule("shop/frontend", 0)
	h.ctrl.processNextWorkItem(h.ctx)
	n0, sum0 := h.histogram(lagMetric)
	h.advance(0) // the next evaluation was due 10 s after the first started: 2 s ago
	if n := h.ctrl.queue.Len(); n != 1 {
		t.Fatalf("the late evaluation is not queued (%d)", n)
	}
	h.ctrl.processNextWorkItem(h.ctx)
	n, sum := h.histogram(lagMetric)
	if n != n0+1 || sum-sum0 != 2 {
		t.Errorf("the late evaluation recorded %d lag samples summing to %vs, want one of 2s", n-n0, sum-sum0)
	}
}

// TestAFailedEvaluationIsRetriedThroughTheQueue drives the worker as it
// runs: a scale write that keeps conflicting fails the evaluation, which
// goes back on the queue after the rate limiter's backoff (1 s, then 2 s on
// the fake clock), and is forgotten once an evaluation succeeds.
func TestAFailedEvaluationIsRetriedThroughTheQueue(t *testing.T) {
	h := newHarness(t, managed("frontend", 1, "interval", "10s"))
	h.prom.Set(promtest.Value(45))
	h.scale.Conflicts(1000)
	const key = "shop/frontend"
	h.ctrl.schedule(key, 0)
	for failures, backoff := 1, time.Second; failures <= 2; failures, backoff = failures+1, 2*backoff {
		h.ctrl.processNextWorkItem(h.ctx)
		if n := h.ctrl.queue.NumRequeues(key); n != failures {
			t.Fatalf("after %d failed evaluations, %d requeues", failures, n)
		}
		if h.ctrl.queue.Len() != 0 {
			t.Fatal("the failed evaluation was queued again at once, without backoff")
		}
		if failures == 2 {
			h.scale.Conflicts(0)
		}
		// The rate limiter's backoff: 1 s, then 2 s.
		h.advance(backoff - time.Millisecond)
		if h.ctrl.queue.Len() != 0 {
			t.Fatalf("the retry after failure %d came before its backoff (%v)", failures, backoff)
		}
		h.advance(time.Millisecond)
		if h.ctrl.queue.Len() != 1 {
			t.Fatalf("the retry after failure %d was not queued after its backoff (%v)", failures, backoff)
		}
	}
	h.ctrl.processNextWorkItem(h.ctx)
	if r := h.replicas("frontend"); r != 3 {
		t.Errorf("replicas %d after the successful retry, want 3", r)
	}
	if n := h.ctrl.queue.NumRequeues(key); n != 0 {
		t.Errorf("%d requeues remembered after a success, want the backoff forgotten", n)
	}
	h.ctrl.mu.Lock()
	_, periodic := h.ctrl.due[key]
	h.ctrl.mu.Unlock()
	if !periodic {
		t.Error("no periodic evaluation scheduled after the successful retry")
	}
}

// TestMetricSourceTargetsShareTheirSourcesGroupedQuery: targets on a
// built-in metric source (Istio's labels, Contour's composite cluster
// name) read their rates from their source's grouped query, one per tick,
// keyed as the source keys a target; a custom query is never run for them.
func TestMetricSourceTargetsShareTheirSourcesGroupedQuery(t *testing.T) {
	var objs []runtime.Object
	for i := range 10 {
		objs = append(objs, managed(fmt.Sprintf("mesh-%02d", i), 1, "metric-source", "istio", "target-rps-per-replica", "10", "predictor", "none"))
		objs = append(objs, managed(fmt.Sprintf("edge-%02d", i), 1, "metric-source", "contour", "profile", "recommended",
			"target-rps-per-replica", "10", "predictor", "none"))
	}
	h := newHarnessWith(t, harnessOptions{batch: true}, objs...)
	istio, _ := scaler.MetricSourceNamed("istio")
	contour, _ := scaler.MetricSourceNamed("contour")
	mesh, edge := map[string]string{}, map[string]string{}
	for i := range 10 {
		// Istio's key begins with the scrape's namespace: its sidecar's.
		k, err := istio.Key(scaler.QueryFields{Namespace: "shop", Service: fmt.Sprintf("mesh-%02d", i)})
		if err != nil {
			t.Fatal(err)
		}
		mesh[k] = "35"
		edge[fmt.Sprintf("shop/edge-%02d", i)] = "15"
	}
	meshQuery, meshLabels := istio.Grouped(false)
	edgeQuery, edgeLabels := contour.Grouped(true) // the recommended profile's irate form
	h.prom.SetFor(meshQuery, promtest.Answer{Grouped: mesh, GroupLabels: meshLabels})
	h.prom.SetFor(edgeQuery, promtest.Answer{Grouped: edge, GroupLabels: edgeLabels})
	h.prom.Set(promtest.Answer{Status: 500}) // any query per target fails
	for range 2 {
		before := h.prom.Queries()
		h.clock.SetTime(h.clock.Now().Truncate(time.Minute).Add(time.Minute + 3*time.Second))
		for i := range 10 {
			for _, name := range []string{fmt.Sprintf("mesh-%02d", i), fmt.Sprintf("edge-%02d", i)} {
				if _, err := h.ctrl.sync(h.ctx, "shop/"+name); err != nil {
					t.Fatal(err)
				}
			}
		}
		if q := h.prom.Queries() - before; q > 4 {
			t.Errorf("%d Prometheus queries for 20 targets, want at most 4 (two grouped queries and two grouped warm-ups)", q)
		}
	}
	if got := h.replicas("mesh-00"); got != 4 {
		t.Errorf("mesh-00 (35 RPS by Istio's grouped rate) has %d replicas, want 4", got)
	}
	if got := h.replicas("edge-00"); got != 2 {
		t.Errorf("edge-00 (15 RPS by Contour's grouped irate) has %d replicas, want 2", got)
	}
}

// TestAFailedScaleReadIsRetriedNotACrash: a custom kind's replicas come
// from its /scale subresource; when that read fails the evaluation has no
// decision, and the sync returns an error to be retried with backoff, and
// records the evaluation as an error, instead of dereferencing the missing
// decision (which took the process down: HandleCrash re-panics).
func TestAFailedScaleReadIsRetriedNotACrash(t *testing.T) {
	h := newHarness(t, managed("web", 2, "predictor", "none"))
	h.prom.Set(promtest.Value(45))
	h.ctrl.custom = true
	h.ctrl.api.getScale = func(context.Context, string, string) (*autoscalingv1.Scale, error) {
		return nil, errors.New("the aggregated API is unavailable")
	}
	h.clock.Step(interval)
	_, err := h.ctrl.sync(h.ctx, "shop/web")
	if err == nil || !strings.Contains(err.Error(), "the aggregated API is unavailable") {
		t.Fatalf("sync = %v, want the /scale read's error, to be retried", err)
	}
	if got := h.replicas("web"); got != 2 {
		t.Errorf("web has %d replicas after a failed /scale read, want 2 (untouched)", got)
	}
	if n := h.counter("reactive_autoscaler_evaluations_total", "result", "error"); n != 1 {
		t.Errorf("evaluations_total{result=error} = %v, want 1", n)
	}
}

// TestAGroupedHistoryKeepsTheManagedTargetsKeys: the keys a grouped
// query's range answer is kept for are those of the managed workloads on
// that query, read from the cache (one not evaluated yet among them), each
// as its source keys it; not a workload that is not opted in, nor one on
// another source.
func TestAGroupedHistoryKeepsTheManagedTargetsKeys(t *testing.T) {
	other := managed("mesh", 1, "metric-source", "istio", "service", "mesh-svc")
	h := newHarnessWith(t, harnessOptions{batch: true},
		managed("web", 1), managed("api", 1, "service", "api-svc"), deployment("plain", 1, nil), other)
	spec, err := scaler.Parse("web", managed("web", 1).Annotations, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := h.ctrl.batchKeys(batchKey{spec.Source.Name, spec.Instant})
	if want := map[string]bool{"shop/web": true, "shop/api-svc": true}; !maps.Equal(keys, want) {
		t.Errorf("keys of the %s source's grouped query = %v, want %v", spec.Source.Name, keys, want)
	}
}
