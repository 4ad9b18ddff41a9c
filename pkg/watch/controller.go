// Package watch is the Kubernetes side of reactive-autoscaler: one
// Controller per kind (Deployments, StatefulSets, and any kind with a /scale
// subresource through a metadata-only informer) discovers opted-in
// workloads, schedules an evaluation of each on a rate-limited workqueue
// every interval, runs the target's pkg/cycle evaluation on Prometheus and
// its predictor, and writes replicas through the kind's scale subresource,
// reporting with Events, the autoscale.io/status annotation, logs and
// metrics.
package watch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	autoscalinginformers "k8s.io/client-go/informers/autoscaling/v2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// RateSource reads a target's request rate. An error means no data.
type RateSource interface {
	Rate(ctx context.Context, query string, now time.Time, maxAge time.Duration) (float64, error)
	// History returns the query's values at n steps ending at end,
	// oldest first, to warm the smoothed rate on a start or takeover.
	History(ctx context.Context, query string, end time.Time, step time.Duration, n int) ([]scaler.Sample, error)
}

// TracerName names the controller's spans' instrumentation scope.
const TracerName = "github.com/autoscale-io/reactive-autoscaler/pkg/watch"

// Monitor records the controller's own metrics (metrics.Recorder).
type Monitor interface {
	// Evaluated records one evaluation of target.
	Evaluated(target types.NamespacedName, e metrics.Evaluation)
	// Forget drops what was recorded of a target no longer managed.
	Forget(target types.NamespacedName)
	// SetManagedCount sets how many targets of a kind are managed (Controller.Managed
	// asks whether one is).
	SetManagedCount(kind string, n int)
}

// Config wires a Controller.
type Config struct {
	// Client reads and writes the scale subresource: the spike path's one
	// call per scale action. StatusClient patches the status annotation
	// (nil: Client); give it its own rate limiter so that status writes
	// never delay a scale write.
	Client, StatusClient kubernetes.Interface
	// Kind is what this Controller scales (zero: Deployments), Informer
	// that kind's shared informer. Custom, when set, makes Kind a kind
	// with a /scale subresource beyond apps/v1's, its Informer a
	// metadata-only one.
	Kind     Kind
	Informer cache.SharedIndexInformer
	Custom   *CustomKind
	Source   RateSource
	Recorder record.EventRecorder
	Monitor  Monitor           // optional
	Clock    clock.WithTicker  // optional, the real clock by default
	Defaults map[string]string // controller-wide defaults, keys as scaler.Settings
	// SpikeWindow is how long after a spike trigger the target keeps getting
	// spike evaluations (scale up inside the cooldown, never down), every
	// SpikeResolution: the first one sees a rate window that is still
	// filling, the follow-ups reach the capacity the spike needs.
	SpikeWindow     time.Duration
	SpikeResolution time.Duration
	// MayWrite, when set, is asked before every write: with leader
	// election it is the elector's IsLeader, which turns false as soon as a
	// renewal sees another holder, before the renew deadline ends the
	// process. A replica that has seen another leader writes nothing more.
	MayWrite func() bool
	// Builtin and External are the predictors of targets whose predictor
	// setting is builtin or external; nil External: not configured.
	Builtin, External scaler.Predictor
	// Tracer traces evaluations; nil = the global OpenTelemetry provider's
	// (a no-op unless the binary configured an exporter).
	Tracer trace.Tracer
	// Batches, when set, makes the grouped query of a built-in metric
	// source (metrics.NewBatch): targets whose query is a source's are
	// answered from one query per evaluation tick, keyed by labels, and
	// are evaluated on ticks aligned to their interval. nil = a query each.
	// keys returns the keys of the targets the grouped query answers
	// (metrics.Batch.Keys): a history read keeps only their series.
	Batches func(grouped string, keys func() map[string]bool, labels ...string) BatchSource
	// QueryPolicy says whether autoscale.io/query is honoured ("":
	// allowed); AllowedQueries are the templates QueryAllowList accepts.
	// A custom query runs with the controller's Prometheus access and its
	// result shows in Events, the status and /metrics.
	QueryPolicy    QueryPolicy
	AllowedQueries []string
	// MinInterval is the shortest interval a target may set (0: 1 s).
	MinInterval time.Duration
	// NamespaceWorkers is how many periodic evaluations of one namespace
	// run at once (0: half the workers, at least 1): a tenant whose
	// queries are slow keeps the rest of the workers free for the others.
	NamespaceWorkers int
	// HPAs, when set, is watched for HorizontalPodAutoscalers (KEDA's
	// ScaledObjects make one) aimed at a managed Deployment: such a
	// Deployment is left alone, with a ConflictingAutoscaler Event.
	HPAs autoscalinginformers.HorizontalPodAutoscalerInformer
	// FullCache keeps whole Deployments in the informer cache instead of
	// the lean copy (identity, autoscale.io/* annotations, replicas): only
	// to measure what the lean cache saves.
	FullCache bool
}

// BatchSource answers a metric source's query for many targets at once
// (metrics.Batch).
type BatchSource interface {
	// Rate is the rate of key (a target's scaler.MetricSource.Key, such as
	// "namespace/service") at tick, from the grouped query.
	Rate(ctx context.Context, key string, tick time.Time, maxAge time.Duration) (float64, error)
	// History is key's rates at n steps ending at end, from one grouped
	// range query shared by the targets warming up together.
	History(ctx context.Context, key string, end time.Time, step time.Duration, n int) ([]scaler.Sample, error)
}

// Controller evaluates every opted-in Deployment on its interval.
type Controller struct {
	api  kindAPI
	kind Kind
	// custom: the kind's replicas are not in the cache (a metadata-only
	// informer): each evaluation reads them from the scale subresource.
	custom bool
	// group is the kind's API group ("apps" for Deployments and
	// StatefulSets): an HPA aimed at Kind in another group is not ours.
	group  string
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
	// spikes holds targets to evaluate at once, and their follow-ups.
	spikes          workqueue.TypedDelayingInterface[string]
	spikeWindow     time.Duration
	spikeResolution time.Duration
	indexer         cache.Indexer
	running         atomic.Bool
	source          RateSource
	recorder        record.EventRecorder
	monitor         Monitor
	clock           clock.WithTicker
	defaults        map[string]string
	mayWrite        func() bool
	newBatch        func(grouped string, keys func() map[string]bool, labels ...string) BatchSource
	batchesMu       sync.Mutex
	batches         map[batchKey]BatchSource
	builtin         scaler.Predictor
	external        scaler.Predictor
	tracer          trace.Tracer

	hpas           cache.Indexer // HPAs by target; nil: not watched
	queryPolicy    QueryPolicy
	allowedQueries []string
	minInterval    time.Duration
	nsWorkers      int

	mu      sync.Mutex
	targets map[string]*target // by namespace/name
	// due is when each queued periodic evaluation was scheduled for; the
	// difference to when it starts is the evaluation lag.
	due map[string]time.Time
	// started is when each target's last evaluation started (kept a
	// while after the target is forgotten): an evaluation asked for by a
	// settings change waits until minInterval after it.
	started map[string]time.Time
	// periodicSlots and spikeSlots count each namespace's evaluations in
	// progress and park the keys of a namespace at its limit, put back on
	// their queue as its evaluations end (fair.go).
	periodicSlots, spikeSlots *nsSlots
	// pendingStatus is each target's newest status not yet written; the
	// statuses queue holds their keys (status.go).
	pendingStatus map[string]Status
	statuses      workqueue.TypedRateLimitingInterface[string]
}

// New builds a Controller and registers its event handlers on the informer.
func New(cfg Config) (*Controller, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Kind == "" {
		cfg.Kind = Deployments
	}
	if cfg.Monitor == nil {
		cfg.Monitor = nopMonitor{}
	}
	if cfg.Tracer == nil {
		cfg.Tracer = otel.Tracer(TracerName)
	}
	if cfg.SpikeWindow < 0 {
		cfg.SpikeWindow = 0
	}
	if cfg.SpikeResolution <= 0 {
		cfg.SpikeResolution = time.Second
	}
	if cfg.StatusClient == nil {
		cfg.StatusClient = cfg.Client
	}
	api, group := newKindAPI(cfg.Kind, cfg.Client, cfg.StatusClient), "apps"
	if cfg.Custom != nil {
		api, group = customKindAPI(cfg.Custom), cfg.Custom.Resource.Group
	}
	c := &Controller{
		api:             api,
		custom:          cfg.Custom != nil,
		group:           group,
		kind:            cfg.Kind,
		source:          cfg.Source,
		recorder:        cfg.Recorder,
		monitor:         cfg.Monitor,
		clock:           cfg.Clock,
		defaults:        cfg.Defaults,
		mayWrite:        cfg.MayWrite,
		builtin:         cfg.Builtin,
		external:        cfg.External,
		tracer:          cfg.Tracer,
		targets:         map[string]*target{},
		spikes:          workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[string]{Name: "spikes", Clock: cfg.Clock}),
		spikeWindow:     cfg.SpikeWindow,
		spikeResolution: cfg.SpikeResolution,
		newBatch:        cfg.Batches,
		batches:         map[batchKey]BatchSource{},
		queryPolicy:     cfg.QueryPolicy,
		allowedQueries:  cfg.AllowedQueries,
		minInterval:     cfg.MinInterval,
		nsWorkers:       cfg.NamespaceWorkers,
		due:             map[string]time.Time{},
		started:         map[string]time.Time{},
		pendingStatus:   map[string]Status{},
	}
	c.periodicSlots = newNSSlots(func(k string) { c.queue.Add(k) })
	c.spikeSlots = newNSSlots(func(k string) { c.spikes.Add(k) })
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(evaluationBackoff(),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: cfg.Kind.Resource(), Clock: cfg.Clock})
	c.statuses = workqueue.NewTypedRateLimitingQueueWithConfig(statusBackoff(),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: cfg.Kind.Resource() + "-status", Clock: cfg.Clock})
	if err := c.register(cfg.Informer, transformFor(cfg), cfg.HPAs); err != nil {
		return nil, err
	}
	return c, nil
}

// evaluationBackoff is how a failed evaluation is retried through the
// queue: per key, 1 s doubling to 5 min, forgotten once one succeeds.
func evaluationBackoff() workqueue.TypedRateLimiter[string] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, 5*time.Minute)
}

// statusBackoff is how a failed status write is retried: 1 s doubling to
// 1 min.
func statusBackoff() workqueue.TypedRateLimiter[string] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, time.Minute)
}

// transformFor is what the informer does to each object before caching
// it: leanWorkload, unless the cache is full; and a custom kind's
// metadata-only objects get their kind (Events need it; such an object
// does not always say it).
func transformFor(cfg Config) cache.TransformFunc {
	var lean cache.TransformFunc
	if !cfg.FullCache {
		lean = leanWorkload
	}
	if cfg.Custom == nil {
		return lean
	}
	apiVersion := cfg.Custom.Resource.GroupVersion().String()
	return func(obj any) (any, error) {
		if lean != nil {
			var err error
			if obj, err = lean(obj); err != nil {
				return nil, err
			}
		}
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
			m.APIVersion, m.Kind = apiVersion, string(cfg.Kind)
		}
		return obj, nil
	}
}

// register puts the Controller on its kind's informer (through transform,
// leanWorkload unless the cache is full; indexed by service) and, when
// given, the HPA informer.
func (c *Controller) register(inf cache.SharedIndexInformer, transform cache.TransformFunc, hpas autoscalinginformers.HorizontalPodAutoscalerInformer) error {
	if transform != nil {
		if err := inf.SetTransform(transform); err != nil {
			return fmt.Errorf("setting the informer transform: %w", err)
		}
	}
	if err := inf.AddIndexers(cache.Indexers{serviceIndex: indexByService}); err != nil {
		return fmt.Errorf("adding the service index: %w", err)
	}
	c.indexer = inf.GetIndexer()
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.onAdd,
		UpdateFunc: c.onUpdate,
		DeleteFunc: c.onDelete,
	})
	if err != nil {
		return fmt.Errorf("adding event handlers: %w", err)
	}
	// Synced once the handlers, not only the cache, have seen every object.
	c.synced = reg.HasSynced
	if hpas != nil {
		hpaSynced, err := c.watchHPAs(hpas)
		if err != nil {
			return err
		}
		c.synced = func() bool { return reg.HasSynced() && hpaSynced() }
	}
	return nil
}

// HasSynced reports whether the cache is filled and every cached object has
// been through the event handlers.
func (c *Controller) HasSynced() bool { return c.synced() }

// Run waits for the cache, then runs workers until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	defer c.spikes.ShutDown()
	defer c.statuses.ShutDown()
	logger := klog.FromContext(ctx)
	logger.Info("Waiting for the cache to sync", "kind", c.kind)
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return fmt.Errorf("waiting for the %s cache: %w", c.kind, ctx.Err())
	}
	if c.nsWorkers <= 0 {
		c.nsWorkers = max(1, workers/2)
	}
	c.periodicSlots.setLimit(c.nsWorkers)
	logger.Info("Starting workers", "count", workers, "perNamespace", c.nsWorkers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { wait.UntilWithContext(ctx, c.runWorker, time.Second) })
	}
	// Spike workers of their own, so that a spike never waits behind a
	// cycle of periodic evaluations; at least two, and a namespace's
	// spikes take at most half of them, so that one tenant's spiking
	// targets leave a worker to another's spike.
	spikeWorkers := max(2, workers/2)
	c.spikeSlots.setLimit(max(1, spikeWorkers/2))
	for range spikeWorkers {
		wg.Go(func() { wait.UntilWithContext(ctx, c.runSpikeWorker, time.Second) })
	}
	for range max(1, workers/4) {
		wg.Go(func() { wait.UntilWithContext(ctx, c.runStatusWorker, time.Second) })
	}
	c.running.Store(true)
	<-ctx.Done()
	c.running.Store(false)
	c.queue.ShutDown()
	c.spikes.ShutDown()
	c.statuses.ShutDown()
	wg.Wait()
	logger.Info("Workers stopped")
	return nil
}

func (c *Controller) runWorker(ctx context.Context) {
	for c.processNextWorkItem(ctx) {
	}
}

func (c *Controller) runSpikeWorker(ctx context.Context) {
	for c.processNextSpike(ctx) {
	}
}

// processNextSpike runs one spike evaluation and schedules its follow-up
// while the target's spike window is open.
func (c *Controller) processNextSpike(ctx context.Context) bool {
	key, shutdown := c.spikes.Get()
	if shutdown {
		return false
	}
	defer c.spikes.Done(key)
	ns, _, _ := cache.SplitMetaNamespaceKey(key)
	if !c.spikeSlots.take(ns, key) {
		return true // parked: queued again when the namespace has a slot
	}
	defer c.spikeSlots.free(ns)
	// The periodic item stays scheduled; a failed spike evaluation is not
	// retried here, but its follow-up still comes.
	if _, err := c.sync(ctx, key); err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Spike evaluation failed", "key", key)
	}
	c.mu.Lock()
	t, ok := c.targets[key]
	c.mu.Unlock()
	if !ok {
		return true
	}
	t.busy.Lock()
	now := c.clock.Now()
	at, followUp := t.cycle.FollowUp(now, c.spikeResolution)
	t.busy.Unlock()
	if followUp {
		c.spikes.AddAfter(key, at.Sub(now))
	}
	return true
}

// Ready reports whether the controller is running (synced, and leading when
// leader election is on) and so can take spike triggers. A replica whose
// renewal saw another holder is not: its evaluation would be fenced, so the
// webhook answers 503 and Alertmanager retries, reaching the new leader.
func (c *Controller) Ready() bool { return c.running.Load() && !c.fenced() }

func (c *Controller) processNextWorkItem(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	ns, _, _ := cache.SplitMetaNamespaceKey(key)
	if !c.periodicSlots.take(ns, key) {
		return true // parked: queued again when the namespace has a slot
	}
	defer c.periodicSlots.free(ns)
	now := c.clock.Now()
	c.mu.Lock()
	due := c.due[key]
	delete(c.due, key)
	c.mu.Unlock()
	after, err := c.syncDue(ctx, key, due)
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Evaluation failed; retrying with backoff", "key", key)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	if after > 0 {
		// The interval runs from this evaluation's start, not its end: a
		// slow evaluation (a slow API server) does not stretch the period,
		// and one slower than the interval makes the next start late,
		// which the lag metric shows.
		c.scheduleAt(key, now.Add(after))
	}
	return true
}

// Spike asks for an immediate spike evaluation of namespace/name (docs/REFERENCE.md
// section 3), received at receivedAt. It reports false when the Deployment
// is not managed.
func (c *Controller) Spike(namespace, name string, receivedAt time.Time) bool {
	key := namespace + "/" + name
	d, err := c.get(namespace, name)
	if err != nil || !scaler.Managed(d.GetAnnotations()) {
		return false
	}
	c.mu.Lock()
	t := c.targetLocked(key, d)
	if !t.spike || receivedAt.Before(t.spikeAt) {
		t.spikeAt = receivedAt
	}
	t.spike = true
	c.mu.Unlock()
	c.spikes.Add(key)
	return true
}

// Managed reports whether namespace/name is an opted-in Deployment.
func (c *Controller) Managed(namespace, name string) bool {
	d, err := c.get(namespace, name)
	return err == nil && scaler.Managed(d.GetAnnotations())
}

// ByService returns the names (namespace/name) of the managed Deployments
// whose service is service, in namespace, or in every namespace if it is "".
func (c *Controller) ByService(namespace, service string) []string {
	var objs []any
	if namespace != "" {
		objs, _ = c.indexer.ByIndex(serviceIndex, namespace+"/"+service)
	} else {
		objs, _ = c.indexer.ByIndex(serviceIndex, "*/"+service)
	}
	keys := make([]string, 0, len(objs))
	for _, o := range objs {
		keys = append(keys, key(o.(workload)))
	}
	return keys
}

const serviceIndex = "service"

// indexByService indexes managed Deployments by namespace/service and by
// */service, service being autoscale.io/service or the Deployment's name.
func indexByService(obj any) ([]string, error) {
	d, ok := obj.(workload)
	if !ok || !scaler.Managed(d.GetAnnotations()) {
		return nil, nil
	}
	svc := d.GetAnnotations()[scaler.AnnotationPrefix+scaler.KeyService]
	if svc == "" {
		svc = d.GetName()
	}
	return []string{d.GetNamespace() + "/" + svc, "*/" + svc}, nil
}

func (c *Controller) onAdd(obj any) {
	d, ok := obj.(workload)
	if !ok {
		return
	}
	if scaler.Managed(d.GetAnnotations()) {
		c.enqueueChanged(key(d))
	} else {
		c.warnOptIn(d, "")
	}
}

// warnOptIn warns, with an InvalidAnnotation Event, about an opt-in that is
// neither true nor false ("True", "yes"): the workload is not managed, and
// its owner should not have to guess why. old is the previous value, so
// that the Event comes once per change.
func (c *Controller) warnOptIn(d workload, old string) {
	v, ok := d.GetAnnotations()[scaler.AnnotationPrefix+scaler.KeyReactive]
	if !ok || v == "false" || v == old {
		return
	}
	c.recorder.Eventf(d, corev1.EventTypeWarning, EventInvalidAnnotation,
		"%s%s=%q: must be true or false; the %s is not managed", scaler.AnnotationPrefix, scaler.KeyReactive, v, string(c.kind))
}

func (c *Controller) onUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(workload)
	d, ok2 := newObj.(workload)
	if !ok1 || !ok2 {
		return
	}
	switch {
	case !scaler.Managed(d.GetAnnotations()):
		if scaler.Managed(old.GetAnnotations()) {
			c.forget(key(d))
		}
		c.warnOptIn(d, old.GetAnnotations()[scaler.AnnotationPrefix+scaler.KeyReactive])
	case !scaler.Managed(old.GetAnnotations()) || settingsChanged(old.GetAnnotations(), d.GetAnnotations()):
		// Newly opted in or reconfigured: evaluate now. Replica changes and
		// the controller's own status writes wait for the next interval.
		c.enqueueChanged(key(d))
	}
}

func (c *Controller) onDelete(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if d, ok := obj.(workload); ok {
		c.forget(key(d))
	}
}

// enqueueChanged queues an evaluation of k because it appeared or its
// settings changed: at once, but no sooner than the controller's minimum
// interval after its last evaluation started, so that whoever may edit
// a workload's annotations cannot run its query more often than
// --min-interval allows.
func (c *Controller) enqueueChanged(k string) {
	at := c.clock.Now()
	c.mu.Lock()
	if last, ok := c.started[k]; ok {
		if next := last.Add(c.minimumInterval()); next.After(at) {
			at = next
		}
	}
	c.mu.Unlock()
	c.scheduleAt(k, at)
}

// minimumInterval is the shortest interval a target may have.
func (c *Controller) minimumInterval() time.Duration { return max(c.minInterval, time.Second) }

// schedule queues the periodic evaluation of k after d and records when it
// is due. An earlier due time already queued wins, as in the queue itself.
func (c *Controller) schedule(k string, d time.Duration) { c.scheduleAt(k, c.clock.Now().Add(d)) }

// scheduleAt queues the periodic evaluation of k for at (at once if at has
// passed) and records at as when it is due.
func (c *Controller) scheduleAt(k string, at time.Time) {
	c.mu.Lock()
	if prev, ok := c.due[k]; !ok || at.Before(prev) {
		c.due[k] = at
	}
	c.mu.Unlock()
	c.queue.AddAfter(k, max(0, at.Sub(c.clock.Now())))
}

// forget drops everything kept about a target: its state, its metric series
// and its backoff. A pending periodic item finds it unmanaged and stops.
func (c *Controller) forget(k string) {
	c.mu.Lock()
	_, had := c.targets[k]
	delete(c.targets, k)
	delete(c.due, k)
	delete(c.pendingStatus, k)
	// started outlives the target by the minimum interval, so that opting
	// out and in again is bounded too; what is older goes.
	if len(c.started) > 2*len(c.targets)+1024 {
		for sk, at := range c.started {
			if c.targets[sk] == nil && c.clock.Since(at) >= c.minimumInterval() {
				delete(c.started, sk)
			}
		}
	}
	n := len(c.targets)
	c.mu.Unlock()
	c.queue.Forget(k)
	if had {
		ns, name, _ := cache.SplitMetaNamespaceKey(k)
		c.monitor.Forget(types.NamespacedName{Namespace: ns, Name: name})
		c.monitor.SetManagedCount(string(c.kind), n)
	}
}

func key(d workload) string { return d.GetNamespace() + "/" + d.GetName() }

type nopMonitor struct{}

func (nopMonitor) Evaluated(types.NamespacedName, metrics.Evaluation) {}
func (nopMonitor) Forget(types.NamespacedName)                        {}
func (nopMonitor) SetManagedCount(string, int)                        {}
