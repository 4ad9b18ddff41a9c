// Package leader runs client-go leader election on a coordination.k8s.io
// Lease, with two additions that make a failover fast and safe:
//
//   - A candidate watches the Lease. When the holder releases it (SIGTERM,
//     ReleaseOnCancel) the candidate campaigns at once instead of at its next
//     jittered retry, up to 2.2 x RetryPeriod later.
//   - When the watched Lease has not changed for LeaseDuration (the holder
//     died), the candidate takes it with an update conditioned on the
//     resourceVersion it watched: client-go's rule (a record unchanged for
//     LeaseDuration on the candidate's own clock is expired), without waiting
//     for the next jittered retry.
//
// IsLeader turns false as soon as a renewal sees another holder, before the
// renew deadline ends the leadership: callers gate their writes on it.
package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Config wires an Elector.
type Config struct {
	Client    kubernetes.Interface
	Namespace string
	Name      string
	Identity  string
	// LeaseDuration > RenewDeadline > 1.2 x RetryPeriod, as client-go wants.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	EventRecorder                             resourcelock.EventRecorder // optional
	Clock                                     clock.WithTicker           // optional

	// OnStartedLeading runs in its own goroutine; ctx ends when leadership
	// does.
	OnStartedLeading func(ctx context.Context)
	// OnStoppedLeading runs after leading ended: lost, or released because
	// Run's ctx was cancelled. It is not called if this replica never led.
	OnStoppedLeading func()
	// OnNewLeader is told every holder this replica observes (optional).
	OnNewLeader func(identity string)
}

// Validate checks the timing rules.
func (c Config) Validate() error {
	switch {
	case c.Name == "" || c.Namespace == "" || c.Identity == "":
		return errors.New("leader election needs a lease namespace, a lease name and an identity")
	case c.RetryPeriod <= 0:
		return fmt.Errorf("retry period %v must be positive", c.RetryPeriod)
	case c.RenewDeadline <= time.Duration(leaderelection.JitterFactor*float64(c.RetryPeriod)):
		return fmt.Errorf("renew deadline %v must be greater than %v x retry period %v", c.RenewDeadline, leaderelection.JitterFactor, c.RetryPeriod)
	case c.LeaseDuration <= c.RenewDeadline:
		return fmt.Errorf("lease duration %v must be greater than renew deadline %v", c.LeaseDuration, c.RenewDeadline)
	}
	return nil
}

// Elector campaigns for the Lease until its context ends.
type Elector struct {
	cfg     Config
	leading atomic.Bool
	ended   atomic.Bool // led, and leading ended: Run campaigns no more
	current atomic.Pointer[leaderelection.LeaderElector]
	wake    chan struct{}
	startMu sync.Mutex // orders the leading callbacks

	mu         sync.Mutex
	observed   *coordinationv1.Lease // the Lease as last watched
	observedAt time.Time             // when its resourceVersion last changed, on our clock
}

// New validates cfg and returns an Elector.
func New(cfg Config) (*Elector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.OnStartedLeading == nil || cfg.OnStoppedLeading == nil {
		return nil, errors.New("OnStartedLeading and OnStoppedLeading are required")
	}
	return &Elector{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// IsLeader reports whether this replica leads, its last look at the Lease
// still showed itself as the holder, and its last renewal seen is younger
// than the renew deadline. client-go's elector still calls itself the
// leader while it tries to release a Lease it could not renew (up to
// another renew deadline), and another replica may take the Lease in that
// time: a replica cut off from the API server writes nothing after its
// renew deadline.
func (e *Elector) IsLeader() bool {
	le := e.current.Load()
	return e.leading.Load() && le != nil && le.IsLeader() && !e.renewalStale()
}

// renewalStale reports whether the watched Lease names this replica and has
// not changed for the renew deadline: its renewals stopped landing.
func (e *Elector) renewalStale() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.observed != nil && holder(e.observed) == e.cfg.Identity && e.cfg.Clock.Since(e.observedAt) > e.cfg.RenewDeadline
}

// Run campaigns, leads, and returns when ctx ends or leadership is lost.
func (e *Elector) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithName("leader")
	factory := informers.NewSharedInformerFactoryWithOptions(e.cfg.Client, 0, informers.WithNamespace(e.cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", e.cfg.Name).String()
		}))
	inf := factory.Coordination().V1().Leases().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.observe(obj) },
		UpdateFunc: func(_, obj any) { e.observe(obj) },
	}); err != nil {
		return fmt.Errorf("watching the lease: %w", err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	factory.Start(watchCtx.Done())
	defer func() {
		stopWatch()
		factory.Shutdown()
	}()
	go e.expiryLoop(watchCtx, logger)

	for {
		again, err := e.campaign(ctx, logger)
		if err != nil || !again {
			return err
		}
	}
}

// campaign runs one client-go elector. It returns again=true when the
// campaign should restart at once: the Lease was released or taken for this
// replica before the elector's next (jittered) retry.
func (e *Elector) campaign(ctx context.Context, logger klog.Logger) (again bool, err error) {
	le, err := e.newLeaderElector()
	if err != nil {
		return false, err
	}
	e.current.Store(le)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		le.Run(runCtx)
	}()
	for {
		select {
		case <-done:
			// Run returns once ctx ends or leadership is lost.
			return false, nil
		case <-e.wake:
			switch {
			case e.ended.Load():
				cancel()
				<-done
				return false, nil
			case !e.leading.Load() && !le.IsLeader():
				// A campaign that has not won yet restarts so that it tries
				// at once; a leader keeps leading.
				logger.V(2).Info("Lease released or taken for this replica; campaigning now")
				cancel()
				<-done
				return true, nil
			}
		}
	}
}

func (e *Elector) newLeaderElector() (*leaderelection.LeaderElector, error) {
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, e.cfg.Namespace, e.cfg.Name,
		e.cfg.Client.CoreV1(), e.cfg.Client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: e.cfg.Identity, EventRecorder: e.cfg.EventRecorder})
	if err != nil {
		return nil, fmt.Errorf("creating the lease lock: %w", err)
	}
	return leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            e.cfg.Name,
		LeaseDuration:   e.cfg.LeaseDuration,
		RenewDeadline:   e.cfg.RenewDeadline,
		RetryPeriod:     e.cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			// client-go starts OnStartedLeading in a goroutine, so it may run
			// after a campaign that won at the instant it was restarted has
			// already stopped; its context is cancelled by then. Under one
			// lock, such a late start does nothing, and a stop that finds no
			// start is not a loss.
			OnStartedLeading: func(ctx context.Context) {
				e.startMu.Lock()
				if ctx.Err() != nil {
					e.startMu.Unlock()
					return
				}
				e.leading.Store(true)
				e.startMu.Unlock()
				e.cfg.OnStartedLeading(ctx)
			},
			OnStoppedLeading: func() {
				e.startMu.Lock()
				led := e.leading.Swap(false)
				if led {
					e.ended.Store(true)
				}
				e.startMu.Unlock()
				if led {
					e.cfg.OnStoppedLeading()
				}
			},
			OnNewLeader: func(id string) {
				if e.cfg.OnNewLeader != nil {
					e.cfg.OnNewLeader(id)
				}
			},
		},
	})
}

// observe records the watched Lease and wakes the campaign when the holder
// has released it.
func (e *Elector) observe(obj any) {
	l, ok := obj.(*coordinationv1.Lease)
	if !ok {
		return
	}
	e.mu.Lock()
	if e.observed == nil || e.observed.ResourceVersion != l.ResourceVersion {
		e.observed, e.observedAt = l, e.cfg.Clock.Now()
	}
	e.mu.Unlock()
	if holder(l) == "" {
		e.poke()
	}
}

func (e *Elector) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// expiryLoop takes the Lease once it has been unchanged for LeaseDuration.
func (e *Elector) expiryLoop(ctx context.Context, logger klog.Logger) {
	tick := e.cfg.Clock.NewTicker(e.cfg.RetryPeriod / 8)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
		}
		if e.leading.Load() || e.ended.Load() {
			continue
		}
		e.mu.Lock()
		l, at := e.observed, e.observedAt
		e.mu.Unlock()
		if l == nil || holder(l) == "" || holder(l) == e.cfg.Identity || e.cfg.Clock.Since(at) <= e.leaseDuration(l) {
			continue
		}
		if err := e.takeExpired(ctx, l); err != nil {
			logger.V(2).Info("Taking the expired lease failed; the campaign goes on", "holder", holder(l), "err", err)
			continue
		}
		logger.Info("Took the lease its holder stopped renewing", "previousHolder", holder(l), "unchangedFor", e.cfg.Clock.Since(at).Round(time.Millisecond))
		e.poke()
	}
}

// leaseDuration is the holder's declared duration, or ours if it declared
// none.
func (e *Elector) leaseDuration(l *coordinationv1.Lease) time.Duration {
	if l.Spec.LeaseDurationSeconds != nil && *l.Spec.LeaseDurationSeconds > 0 {
		return time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	return e.cfg.LeaseDuration
}

// takeExpired writes this replica as the holder, conditioned on the
// resourceVersion watched: if anyone renewed or took the Lease since, the
// API server answers 409 and nothing changes.
func (e *Elector) takeExpired(ctx context.Context, l *coordinationv1.Lease) error {
	now := metav1.NewMicroTime(e.cfg.Clock.Now())
	next := l.DeepCopy()
	id := e.cfg.Identity
	seconds := int32(e.cfg.LeaseDuration / time.Second)
	transitions := int32(1)
	if l.Spec.LeaseTransitions != nil {
		transitions = *l.Spec.LeaseTransitions + 1
	}
	next.Spec.HolderIdentity, next.Spec.LeaseDurationSeconds = &id, &seconds
	next.Spec.AcquireTime, next.Spec.RenewTime, next.Spec.LeaseTransitions = &now, &now, &transitions
	_, err := e.cfg.Client.CoordinationV1().Leases(l.Namespace).Update(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return fmt.Errorf("the lease changed since it was watched: %w", err)
	}
	return err
}

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}
