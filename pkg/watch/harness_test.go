package watch

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics"
	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
	"github.com/autoscale-io/reactive-autoscaler/pkg/watch/watchtest"
)

var deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

// harness runs a Controller against a fake clientset, a fake clock and an
// httptest Prometheus. Tests call sync directly to step evaluations.
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
	factory := informers.NewSharedInformerFactory(h.client, 0)
	source := metrics.NewSource(promv1.NewAPI(pc), time.Second, rec)
	var batches func(string, ...string) BatchSource
	if opts.batch {
		batches = func(grouped string, labels ...string) BatchSource {
			return metrics.NewBatch(source, grouped, labels...)
		}
	}
	informer := factory.Apps().V1().Deployments().Informer()
	if opts.kind == StatefulSets {
		informer = factory.Apps().V1().StatefulSets().Informer()
	}
	h.ctrl, err = New(Config{
		Client:   h.client,
		Kind:     opts.kind,
		Informer: informer,
		Source:   source,
		Batches:  batches,
		Recorder: h.events,
		Monitor:  rec,
		Clock:    h.clock,
		// As the binary's defaults.
		SpikeWindow:     30 * time.Second,
		SpikeResolution: time.Second,
		MayWrite:        func() bool { return !h.lostLease.Load() },
		Builtin:         predict.DefaultSeasonal(),
		External:        h.external,
		HPAs:            factory.Autoscaling().V2().HorizontalPodAutoscalers(),
		QueryPolicy:     opts.queryPolicy,
		AllowedQueries:  opts.allowedQueries,
		MinInterval:     opts.minInterval,
	})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), h.ctrl.HasSynced) {
		t.Fatal("cache never synced")
	}
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

// waitCache waits until the controller's cache shows name satisfying ok.
func (h *harness) waitCache(name string, ok func(*appsv1.Deployment) bool) {
	h.t.Helper()
	err := wait.PollUntilContextTimeout(h.ctx, 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		d, err := h.ctrl.get("shop", name)
		if err != nil {
			return ok(nil), nil
		}
		return ok(d.(*appsv1.Deployment)), nil
	})
	if err != nil {
		h.t.Fatalf("cache never showed the expected state of %s: %v", name, err)
	}
}

// evaluate steps the clock by step and runs one evaluation of name.
func (h *harness) evaluate(name string, step time.Duration) time.Duration {
	h.t.Helper()
	h.clock.Step(step)
	after, err := h.ctrl.sync(h.ctx, "shop/"+name)
	if err != nil {
		h.t.Fatalf("sync %s: %v", name, err)
	}
	h.flushStatuses()
	h.catchUp(name)
	return after
}

// catchUp waits until the controller's cache holds the object as the API
// has it (its resourceVersion): the next evaluation decides from the
// cache, as the controller does, whose informer catches up in
// milliseconds.
func (h *harness) catchUp(name string) {
	h.t.Helper()
	err := wait.PollUntilContextTimeout(h.ctx, time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var obj metav1.Object
		var err error
		if h.kind == StatefulSets {
			obj, err = h.client.AppsV1().StatefulSets("shop").Get(ctx, name, metav1.GetOptions{})
		} else {
			obj, err = h.client.AppsV1().Deployments("shop").Get(ctx, name, metav1.GetOptions{})
		}
		if err != nil {
			return apierrors.IsNotFound(err), nil
		}
		cached, err := h.ctrl.get("shop", name)
		return err == nil && cached.GetResourceVersion() == obj.GetResourceVersion(), nil
	})
	if err != nil {
		h.t.Fatalf("the cache never caught up with %s", name)
	}
}

// stepAndWait steps the fake clock by step, then waits until cond holds.
// A workqueue's delaying loop arms its timer from the time it read before
// arming it, so a step that falls in between leaves the timer due a step
// late. Adding a far-off item wakes the loop, which reads the clock again
// and releases what is due: each poll does that to the given queues.
func (h *harness) stepAndWait(step time.Duration, what string, cond func() bool, queues ...interface{ AddAfter(string, time.Duration) }) {
	h.t.Helper()
	h.clock.Step(step)
	err := wait.PollUntilContextTimeout(h.ctx, time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		for _, q := range queues {
			q.AddAfter("nudge/never", 24*time.Hour)
		}
		return cond(), nil
	})
	if err != nil {
		h.t.Fatalf("%s: not within 5 s of stepping the clock %v", what, step)
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
