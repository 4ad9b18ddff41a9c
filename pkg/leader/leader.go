// Package leader runs client-go's leader election on a coordination.k8s.io
// Lease and adds one thing, the write fence: IsLeader is true only while
// this replica leads and its last renewal landed within the renew deadline.
//
// client-go's own IsLeader turns false as soon as a renewal reads another
// holder, but it stays true while a leader cut off from the API server
// retries its renewals (up to the renew deadline) and then tries to release
// (up to another one), and another replica may hold the Lease by then.
// Callers gate every write on IsLeader, so a replica whose renewals stopped
// landing writes nothing after its renew deadline.
//
// Takeover speed is client-go's: a released Lease is taken at a candidate's
// next retry (RetryPeriod to 2.2 x RetryPeriod later), an unrenewed one
// LeaseDuration after the candidate last saw it change. docs/ARCHITECTURE.md
// says why that is enough.
package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
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
	// Clock times the renewals the fence looks at (the real clock by
	// default). client-go's elector keeps its own time.
	Clock clock.PassiveClock

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

// Elector campaigns for the Lease.
type Elector struct {
	cfg      Config
	le       *leaderelection.LeaderElector
	renewals *renewals
	// startMu orders the callbacks: client-go starts OnStartedLeading in a
	// goroutine, which may run only after leadership already ended (its
	// context cancelled); such a late start does nothing, and a stop that
	// finds no start is not a loss.
	startMu sync.Mutex
	leading atomic.Bool
}

// New validates cfg and builds the Elector.
func New(cfg Config) (*Elector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.OnStartedLeading == nil || cfg.OnStoppedLeading == nil {
		return nil, errors.New("OnStartedLeading and OnStoppedLeading are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, cfg.Namespace, cfg.Name,
		cfg.Client.CoreV1(), cfg.Client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: cfg.Identity, EventRecorder: cfg.EventRecorder})
	if err != nil {
		return nil, fmt.Errorf("creating the lease lock: %w", err)
	}
	e := &Elector{cfg: cfg, renewals: &renewals{Interface: lock, clock: cfg.Clock, renewDeadline: cfg.RenewDeadline, sleep: sleep}}
	e.le, err = leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            e.renewals,
		Name:            cfg.Name,
		LeaseDuration:   cfg.LeaseDuration,
		RenewDeadline:   cfg.RenewDeadline,
		RetryPeriod:     cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: e.started,
			OnStoppedLeading: e.stopped,
			OnNewLeader: func(id string) {
				if cfg.OnNewLeader != nil {
					cfg.OnNewLeader(id)
				}
			},
		},
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Elector) started(ctx context.Context) {
	e.startMu.Lock()
	if ctx.Err() != nil {
		e.startMu.Unlock()
		return
	}
	e.leading.Store(true)
	e.startMu.Unlock()
	e.cfg.OnStartedLeading(ctx)
}

func (e *Elector) stopped() {
	e.startMu.Lock()
	led := e.leading.Swap(false)
	e.startMu.Unlock()
	if led {
		e.cfg.OnStoppedLeading()
	}
}

// Run campaigns, leads, and returns when ctx ends (releasing the Lease) or
// leadership is lost.
func (e *Elector) Run(ctx context.Context) { e.le.Run(ctx) }

// IsLeader reports whether this replica leads, its last look at the Lease
// showed itself as the holder, and its last renewal landed within the
// renew deadline.
func (e *Elector) IsLeader() bool {
	return e.leading.Load() && e.le.IsLeader() && e.renewals.within(e.cfg.RenewDeadline)
}

// renewals is the Lease lock, remembering when this replica's last write
// of it (an acquisition or a renewal) landed. A replica that does not lead
// reads the Lease with backoff while the reads fail (an unreachable API
// server): client-go tries every retry period and logs each failure, twice
// a second at our default, for as long as the API server is away.
type renewals struct {
	resourcelock.Interface
	clock         clock.PassiveClock
	renewDeadline time.Duration
	// sleep waits d or until ctx ends (a timer; tests record instead).
	sleep func(ctx context.Context, d time.Duration) error

	mu       sync.Mutex
	landed   time.Time
	failures int // consecutive failed reads
}

// MaxLeaseBackoff bounds the wait between a non-leader's failing reads of
// the Lease (1 s doubling to it): its log stays quiet, and a returning API
// server is seen within it.
const MaxLeaseBackoff = 4 * time.Second

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Get reads the Lease, after the backoff its failed reads earned unless
// this replica leads (a leader's renewals are never delayed).
func (r *renewals) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	if d := r.backoff(); d > 0 {
		if err := r.sleep(ctx, d); err != nil {
			return nil, nil, err
		}
	}
	rec, raw, err := r.Interface.Get(ctx)
	r.mu.Lock()
	if err != nil && !apierrors.IsNotFound(err) { // no Lease yet is no failure
		r.failures++
	} else {
		r.failures = 0
	}
	r.mu.Unlock()
	return rec, raw, err
}

func (r *renewals) backoff() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures == 0 || (!r.landed.IsZero() && r.clock.Since(r.landed) < r.renewDeadline) {
		return 0
	}
	return min(MaxLeaseBackoff, time.Second<<min(r.failures-1, 8))
}

func (r *renewals) Create(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	sent := r.clock.Now()
	return r.record(rec, sent, r.Interface.Create(ctx, rec))
}

func (r *renewals) Update(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	sent := r.clock.Now()
	return r.record(rec, sent, r.Interface.Update(ctx, rec))
}

// record notes a write that landed naming this replica (not a release),
// dated when it was sent: the API server may have written it at any time
// up to its answer, and a candidate counts the lease from what it read,
// so a late answer must not keep the fence open past that.
func (r *renewals) record(rec resourcelock.LeaderElectionRecord, sent time.Time, err error) error {
	if err == nil && rec.HolderIdentity == r.Identity() {
		r.mu.Lock()
		if sent.After(r.landed) {
			r.landed = sent
		}
		r.mu.Unlock()
	}
	return err
}

// within reports whether the last write landed less than d ago.
func (r *renewals) within(d time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.landed.IsZero() && r.clock.Since(r.landed) < d
}
