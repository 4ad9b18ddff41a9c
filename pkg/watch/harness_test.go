package watch

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics"
	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
	"github.com/autoscale-io/reactive-autoscaler/pkg/watch/watchtest"
)

var deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

// harness runs a Controller against a fake clientset, a fake clock and an
// httptest Prometheus, as sample-controller's tests do: no informer runs.
// The harness is the informer: observe fills the controller's indexers
// from the fake API and calls its event handlers, at once and in the
// test's goroutine. The queues are fakeQueues: what is added after a delay
// waits until advance steps the fake clock past it. Tests step evaluations
// by calling sync (or a worker's processNext...) directly.
type harness struct {
	t        testing.TB
	ctx      context.Context
	client   *fake.Clientset
	clock    *clocktesting.FakeClock
	prom     *promtest.Server
	events   *record.FakeRecorder
	registry *prometheus.Registry
	ctrl     *Controller
	// scale serves deployments/scale; tests make it refuse writes with 409
	// or change things between a decision and its write.
	scale *watchtest.Scale
	// lostLease, when true, is what the elector's IsLeader would say after
	// a renewal saw another holder: MayWrite answers false.
	lostLease atomic.Bool
	// external is the External predictor (nil: none configured).
	external scaler.Predictor
	kind     Kind
	// The informers the controller is registered on (never started),
	// what they cache objects as, and the controller's queues.
	workloads, hpas cache.SharedIndexInformer
	transform       cache.TransformFunc
	queues          []*fakeQueue
	// evaluated is signalled after every evaluation the monitor records
	// (tests that run the controller's workers wait on it).
	evaluated chan struct{}
}

func deployment(name string, replicas int32, ann map[string]string) *appsv1.Deployment {
	a := map[string]string{"autoscale.io/reactive": "true"}
	for k, v := range ann {
		a[k] = v
	}
	if ann == nil {
		a = nil
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Annotations: a, ResourceVersion: "1",
			Labels: map[string]string{"app": name}},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas},
	}
}

func managed(name string, replicas int32, ann ...string) *appsv1.Deployment {
	m := map[string]string{}
	for i := 0; i+1 < len(ann); i += 2 {
		m["autoscale.io/"+ann[i]] = ann[i+1]
	}
	return deployment(name, replicas, m)
}

func newHarness(t testing.TB, objs ...runtime.Object) *harness {
	return newHarnessWith(t, harnessOptions{}, objs...)
}

// newHarnessWithPredictor also configures an external predictor.
func newHarnessWithPredictor(t testing.TB, external scaler.Predictor, objs ...runtime.Object) *harness {
	return newHarnessWith(t, harnessOptions{external: external}, objs...)
}

type harnessOptions struct {
	external scaler.Predictor // the External predictor
	batch    bool             // answer default-query targets from one grouped query
	start    time.Time        // the fake clock's start (zero: a fixed day)
	kind     Kind             // what the controller scales (zero: Deployments)
	// The controller's query policy and minimum interval.
	queryPolicy    QueryPolicy
	allowedQueries []string
	minInterval    time.Duration
}

func newHarnessWith(t testing.TB, opts harnessOptions, objs ...runtime.Object) *harness {
	if opts.start.IsZero() {
		opts.start = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	}
	h := &harness{
		external: opts.external,
		kind:     opts.kind,
		t:        t,
		client:   fake.NewClientset(objs...),
		clock:    clocktesting.NewFakeClock(opts.start),
		prom:     promtest.New(),
		events:   record.NewFakeRecorder(1000),
		registry: prometheus.NewPedanticRegistry(),
	}
	t.Cleanup(h.prom.Close)
	h.scale = watchtest.InstallScale(h.client)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h.ctx = ctx
	pc, err := api.NewClient(api.Config{Address: h.prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	rec := metrics.NewRecorder(h.registry)
	h.evaluated = make(chan struct{}, 1)
	factory := informers.NewSharedInformerFactory(h.client, 0)
	source := metrics.NewSource(promv1.NewAPI(pc), time.Second, rec)
	var batches func(string, func() map[string]bool, ...string) BatchSource
	if opts.batch {
		batches = func(grouped string, keys func() map[string]bool, labels ...string) BatchSource {
			b := metrics.NewBatch(source, grouped, labels...)
			b.Keys = keys
			return b
		}
	}
	h.workloads = factory.Apps().V1().Deployments().Informer()
	if opts.kind == StatefulSets {
		h.workloads = factory.Apps().V1().StatefulSets().Informer()
	}
	hpas := factory.Autoscaling().V2().HorizontalPodAutoscalers()
	h.hpas = hpas.Informer()
	cfg := Config{
		Client:   h.client,
		Kind:     opts.kind,
		Informer: h.workloads,
		Source:   source,
		Batches:  batches,
		Recorder: h.events,
		Monitor:  signalling{Recorder: rec, evaluated: h.evaluated},
		Clock:    h.clock,
		// As the binary's defaults.
		SpikeWindow:     30 * time.Second,
		SpikeResolution: time.Second,
		MayWrite:        func() bool { return !h.lostLease.Load() },
		Builtin:         predict.DefaultSeasonal(),
		External:        h.external,
		HPAs:            hpas,
		QueryPolicy:     opts.queryPolicy,
		AllowedQueries:  opts.allowedQueries,
		MinInterval:     opts.minInterval,
	}
	h.transform = transformFor(cfg)
	h.ctrl, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The same queues and backoffs, driven by the fake clock in the test's
	// goroutine; the indexers are filled by observe: synced.
	h.ctrl.queue = h.fakeQueue(evaluationBackoff())
	h.ctrl.spikes = h.fakeQueue(nil)
	h.ctrl.statuses = h.fakeQueue(statusBackoff())
	h.ctrl.synced = func() bool { return true }
	h.observe()
	return h
}

// replicas reads spec.replicas from the API (not the cache).
func (h *harness) replicas(name string) int32 {
	h.t.Helper()
	d, err := h.client.AppsV1().Deployments("shop").Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return *d.Spec.Replicas
}

// sees observes the API (see observe) and fails the test unless the
// controller's cache then shows name satisfying ok (nil: not cached).
func (h *harness) sees(name string, ok func(*appsv1.Deployment) bool) {
	h.t.Helper()
	h.observe()
	var cached *appsv1.Deployment
	if d, err := h.ctrl.get("shop", name); err == nil {
		cached = d.(*appsv1.Deployment)
	}
	if !ok(cached) {
		h.t.Fatalf("the cache does not show the expected state of %s: %+v", name, cached)
	}
}

// evaluate steps the clock by step and runs one evaluation of name, then
// writes its status and lets the cache see what it wrote, as the
// controller's informer does within milliseconds.
func (h *harness) evaluate(name string, step time.Duration) time.Duration {
	h.t.Helper()
	h.clock.Step(step)
	after, err := h.ctrl.sync(h.ctx, "shop/"+name)
	if err != nil {
		h.t.Fatalf("sync %s: %v", name, err)
	}
	h.flushStatuses()
	h.observe()
	return after
}

// observe does what the controller's informers do when the API changes:
// it brings their indexers up to the fake API's objects (the workload
// kind through the controller's transform, and HPAs) and calls the
// controller's handlers for what was added, changed or deleted, in key
// order. (The fake API does not always move resourceVersions: a change is
// any difference.)
func (h *harness) observe() {
	h.t.Helper()
	gvr, kind := deploymentsGVR, "Deployment"
	if h.kind == StatefulSets {
		gvr, kind = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}, "StatefulSet"
	}
	h.mirror(gvr, kind, h.workloads, h.transform, h.ctrl.onAdd, h.ctrl.onUpdate, h.ctrl.onDelete)
	hpaGVR := schema.GroupVersionResource{Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"}
	h.mirror(hpaGVR, "HorizontalPodAutoscaler", h.hpas, nil, h.ctrl.onHPA, func(old, cur any) { h.ctrl.onHPA(old); h.ctrl.onHPA(cur) }, h.ctrl.onHPA)
}

func (h *harness) mirror(gvr schema.GroupVersionResource, kind string, inf cache.SharedIndexInformer, transform cache.TransformFunc,
	onAdd func(any), onUpdate func(any, any), onDelete func(any)) {
	h.t.Helper()
	list, err := h.client.Tracker().List(gvr, gvr.GroupVersion().WithKind(kind), "")
	if err != nil {
		h.t.Fatal(err)
	}
	objs, err := meta.ExtractList(list)
	if err != nil {
		h.t.Fatal(err)
	}
	indexer := inf.GetIndexer()
	seen := map[string]bool{}
	slices.SortFunc(objs, func(a, b runtime.Object) int {
		return strings.Compare(a.(metav1.Object).GetNamespace()+"/"+a.(metav1.Object).GetName(), b.(metav1.Object).GetNamespace()+"/"+b.(metav1.Object).GetName())
	})
	for _, o := range objs {
		var obj any = o.DeepCopyObject()
		if transform != nil {
			if obj, err = transform(obj); err != nil {
				h.t.Fatal(err)
			}
		}
		k, _ := cache.MetaNamespaceKeyFunc(obj)
		seen[k] = true
		old, exists, _ := indexer.GetByKey(k)
		switch {
		case !exists:
			_ = indexer.Add(obj)
			onAdd(obj)
		case !equality.Semantic.DeepEqual(old, obj):
			_ = indexer.Update(obj)
			onUpdate(old, obj)
		}
	}
	for _, old := range indexer.List() {
		if k, _ := cache.MetaNamespaceKeyFunc(old); !seen[k] {
			_ = indexer.Delete(old)
			onDelete(old)
		}
	}
}

// advance steps the fake clock by step and puts on their queues the
// items whose delay has passed, as the queues' delaying loops do.
func (h *harness) advance(step time.Duration) {
	h.clock.Step(step)
	for _, q := range h.queues {
		q.release()
	}
}

// waitEvaluated waits, while the controller's workers run, until cond
// holds after an evaluation, for at most 20 s of real time.
func (h *harness) waitEvaluated(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-h.evaluated:
		case <-deadline:
			h.t.Fatalf("%s: not within 20 s", what)
		}
	}
}

// signalling is the controller's monitor, telling the harness of every
// evaluation it records.
type signalling struct {
	*metrics.Recorder
	evaluated chan struct{}
}

func (s signalling) Evaluated(target types.NamespacedName, e metrics.Evaluation) {
	s.Recorder.Evaluated(target, e)
	select {
	case s.evaluated <- struct{}{}:
	default:
	}
}

// fakeQueue is a workqueue whose delays run on the harness's fake clock
// and end only when the test advances it: AddAfter keeps the item (its
// earliest due time wins, as in client-go's delaying queue) until release.
// Get, Done, Len and ShutDown are a real queue's; the backoff of
// AddRateLimited is the controller's rate limiter.
type fakeQueue struct {
	workqueue.TypedInterface[string]
	clock   *clocktesting.FakeClock
	limiter workqueue.TypedRateLimiter[string]
	mu      sync.Mutex
	waiting map[string]time.Time
}

func (h *harness) fakeQueue(limiter workqueue.TypedRateLimiter[string]) *fakeQueue {
	q := &fakeQueue{TypedInterface: workqueue.NewTyped[string](), clock: h.clock, limiter: limiter, waiting: map[string]time.Time{}}
	h.queues = append(h.queues, q)
	h.t.Cleanup(q.ShutDown)
	return q
}

func (q *fakeQueue) AddAfter(item string, d time.Duration) {
	if d <= 0 {
		q.Add(item)
		return
	}
	at := q.clock.Now().Add(d)
	q.mu.Lock()
	defer q.mu.Unlock()
	if prev, ok := q.waiting[item]; !ok || at.Before(prev) {
		q.waiting[item] = at
	}
}

func (q *fakeQueue) AddRateLimited(item string)  { q.AddAfter(item, q.limiter.When(item)) }
func (q *fakeQueue) Forget(item string)          { q.limiter.Forget(item) }
func (q *fakeQueue) NumRequeues(item string) int { return q.limiter.NumRequeues(item) }

// release queues the waiting items that are due.
func (q *fakeQueue) release() {
	now := q.clock.Now()
	q.mu.Lock()
	var due []string
	for item, at := range q.waiting {
		if !at.After(now) {
			due = append(due, item)
			delete(q.waiting, item)
		}
	}
	q.mu.Unlock()
	slices.Sort(due)
	for _, item := range due {
		q.Add(item)
	}
}

// flushStatuses runs the status worker until no status waits to be
// written (a failed write, waiting out its backoff, stays queued).
func (h *harness) flushStatuses() {
	for h.ctrl.statuses.Len() > 0 {
		h.ctrl.processNextStatus(h.ctx)
	}
}

// drainEvents returns the events recorded so far.
func (h *harness) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-h.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func hasEvent(events []string, prefix string) bool {
	for _, e := range events {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

// writes lists the write actions (verb/resource/subresource) the client saw.
func (h *harness) writes() []string {
	h.flushStatuses()
	var out []string
	for _, a := range h.client.Actions() {
		switch a.GetVerb() {
		case "get", "list", "watch":
			continue
		}
		s := a.GetVerb() + "/" + a.GetResource().Resource
		if sub := a.GetSubresource(); sub != "" {
			s += "/" + sub
		}
		out = append(out, s)
	}
	return out
}
