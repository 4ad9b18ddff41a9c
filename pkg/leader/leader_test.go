package leader

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	clocktesting "k8s.io/utils/clock/testing"
)

// newClient is a fake clientset whose Leases behave like the API server's:
// every write bumps resourceVersion, and an update carrying a stale one is
// refused with 409. (The plain fake accepts any update.) It is assembled
// from a bare object tracker: fake.NewClientset builds a field-management
// type converter first, 1.5 s under the race detector.
func newClient() *fake.Clientset {
	tracker := k8stesting.NewObjectTracker(scheme.Scheme, scheme.Codecs.UniversalDecoder())
	client := &fake.Clientset{}
	client.AddReactor("*", "*", k8stesting.ObjectReaction(tracker))
	gvr := coordinationv1.SchemeGroupVersion.WithResource("leases")
	var rv atomic.Int64
	client.PrependReactor("create", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		l := a.(k8stesting.CreateAction).GetObject().(*coordinationv1.Lease).DeepCopy()
		l.ResourceVersion = strconv.FormatInt(rv.Add(1), 10)
		if err := tracker.Create(gvr, l, l.Namespace); err != nil {
			return true, nil, err
		}
		return true, l, nil
	})
	client.PrependReactor("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		l := a.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease).DeepCopy()
		cur, err := tracker.Get(gvr, l.Namespace, l.Name)
		if err != nil {
			return true, nil, err
		}
		if cur.(*coordinationv1.Lease).ResourceVersion != l.ResourceVersion {
			return true, nil, apierrors.NewConflict(gvr.GroupResource(), l.Name, errors.New("the object has been modified"))
		}
		l.ResourceVersion = strconv.FormatInt(rv.Add(1), 10)
		if err := tracker.Update(gvr, l, l.Namespace); err != nil {
			return true, nil, err
		}
		return true, l, nil
	})
	return client
}

const ns, lease = "ops", "reactive-autoscaler"

// fast timings: client-go's elector runs on the wall clock, so the tests
// give it a short retry period. LeaseDuration is a whole second because the
// Lease records it in seconds.
var fast = Config{LeaseDuration: time.Second, RenewDeadline: 300 * time.Millisecond, RetryPeriod: 20 * time.Millisecond}

// replica is one campaigning Elector and what its callbacks saw.
type replica struct {
	e       *Elector
	clock   *clocktesting.FakePassiveClock
	started atomic.Bool
	stopped atomic.Bool
	cancel  context.CancelFunc
	done    chan struct{}
}

func campaign(t *testing.T, client kubernetes.Interface, id string) *replica {
	t.Helper()
	r := &replica{done: make(chan struct{}), clock: clocktesting.NewFakePassiveClock(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))}
	cfg := fast
	cfg.Client, cfg.Namespace, cfg.Name, cfg.Identity, cfg.Clock = client, ns, lease, id, r.clock
	cfg.OnStartedLeading = func(context.Context) { r.started.Store(true) }
	cfg.OnStoppedLeading = func() { r.stopped.Store(true) }
	var err error
	if r.e, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.e.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 2*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("%s: not within 5 s", what)
	}
}

func TestValidateTimings(t *testing.T) {
	base := Config{Namespace: ns, Name: lease, Identity: "a", LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 500 * time.Millisecond}
	if err := base.Validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"lease not above renew":       func(c *Config) { c.LeaseDuration = 10 * time.Second },
		"renew not above 1.2 x retry": func(c *Config) { c.RenewDeadline = 600 * time.Millisecond },
		"no retry":                    func(c *Config) { c.RetryPeriod = 0 },
		"no identity":                 func(c *Config) { c.Identity = "" },
	} {
		c := base
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, c)
		}
	}
}

// TestTheFenceClosesWhenRenewalsStopLanding: a leader whose renewals fail
// (the API server is unreachable) stops claiming leadership once its last
// renewal is a renew deadline old on its clock, while client-go's elector
// still calls itself the leader; a renewal that lands opens it again.
func TestTheFenceClosesWhenRenewalsStopLanding(t *testing.T) {
	client := newClient()
	var cut atomic.Bool
	client.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if cut.Load() {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	a := campaign(t, client, "a")
	eventually(t, "a leads", a.e.IsLeader)
	if !a.started.Load() {
		t.Fatal("IsLeader before OnStartedLeading")
	}
	cut.Store(true)
	a.clock.SetTime(a.clock.Now().Add(fast.RenewDeadline - time.Millisecond))
	if !a.e.IsLeader() {
		t.Fatal("fenced before the renew deadline")
	}
	a.clock.SetTime(a.clock.Now().Add(time.Millisecond))
	if a.e.IsLeader() {
		t.Fatal("still claims leadership a renew deadline after its last renewal")
	}
	if !a.e.le.IsLeader() {
		t.Fatal("client-go's elector gave up already; the test shows nothing")
	}
	cut.Store(false)
	eventually(t, "the fence opens at the next renewal", a.e.IsLeader)
}

// TestAnotherHolderClosesTheFenceAtOnce: when someone else's identity is
// in the Lease, the leader's next renewal reads it and IsLeader turns false
// at once; leadership ends at the renew deadline and OnStoppedLeading runs.
func TestAnotherHolderClosesTheFenceAtOnce(t *testing.T) {
	client := newClient()
	a := campaign(t, client, "a")
	eventually(t, "a leads", a.e.IsLeader)
	l, err := client.CoordinationV1().Leases(ns).Get(context.Background(), lease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, ten, now := "b", int32(10), metav1.NewMicroTime(time.Now())
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &b, &ten, &now
	if _, err := client.CoordinationV1().Leases(ns).Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a stops claiming leadership", func() bool { return !a.e.IsLeader() })
	if a.stopped.Load() {
		t.Fatal("leadership ended before the fence closed")
	}
	eventually(t, "a's leadership ends", a.stopped.Load)
}

// TestAReleasedLeaseGoesToTheNextCandidate: a leader that stops releases
// the Lease and a candidate takes it at its next retry; a candidate that
// never led is not told it stopped leading.
func TestAReleasedLeaseGoesToTheNextCandidate(t *testing.T) {
	client := newClient()
	a := campaign(t, client, "a")
	eventually(t, "a leads", a.e.IsLeader)
	b := campaign(t, client, "b")
	c := campaign(t, client, "c")
	eventually(t, "b and c see a", func() bool { return b.e.le.GetLeader() == "a" && c.e.le.GetLeader() == "a" })
	c.cancel()
	<-c.done
	a.cancel()
	<-a.done
	if !a.stopped.Load() {
		t.Error("a released the Lease without OnStoppedLeading")
	}
	eventually(t, "b leads after a released", func() bool { return b.e.IsLeader() && b.started.Load() })
	if c.started.Load() || c.stopped.Load() {
		t.Errorf("c, which never led, saw started=%v stopped=%v", c.started.Load(), c.stopped.Load())
	}
}

// failingLock fails every read while down.
type failingLock struct {
	resourcelock.Interface
	down  bool
	reads int
}

func (f *failingLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	f.reads++
	if f.down {
		return nil, nil, errors.New("dial tcp: connection refused")
	}
	return &resourcelock.LeaderElectionRecord{HolderIdentity: "other"}, nil, nil
}

// TestAnUnreachableAPIServerIsReadWithBackoff: a replica that does not lead
// waits 1 s, 2 s, 4 s, then 4 s between failed reads of the Lease (so
// client-go's log of each failure slows down with them), reads at once
// again after a success, and a leader's reads are never delayed.
func TestAnUnreachableAPIServerIsReadWithBackoff(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	lock := &failingLock{down: true}
	var waits []time.Duration
	r := &renewals{Interface: lock, clock: clk, renewDeadline: 10 * time.Second,
		sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
	for range 6 {
		_, _, _ = r.Get(context.Background())
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}; !slices.Equal(waits, want) {
		t.Errorf("waits before the reads %v, want %v", waits, want)
	}
	lock.down, waits = false, nil
	_, _, _ = r.Get(context.Background()) // waits once more, succeeds
	_, _, _ = r.Get(context.Background())
	if len(waits) != 1 {
		t.Errorf("waits %v after a successful read, want none but the one before it", waits)
	}
	// A leader (a renewal landed within the renew deadline) never waits.
	lock.down, waits = true, nil
	r.landed = clk.Now()
	for range 3 {
		_, _, _ = r.Get(context.Background())
	}
	if len(waits) != 0 {
		t.Errorf("a leader waited %v before reading the Lease", waits)
	}
}

// slowLock is a Lease lock whose writes land, but whose answers come late
// on the test's clock.
type slowLock struct {
	resourcelock.Interface
	clock *clocktesting.FakePassiveClock
	delay time.Duration
}

func (l *slowLock) Update(context.Context, resourcelock.LeaderElectionRecord) error {
	l.clock.SetTime(l.clock.Now().Add(l.delay))
	return nil
}

func (l *slowLock) Identity() string { return "a" }

// TestALateAnswerDoesNotStretchTheFence: a renewal sent at t answered 8 s
// later may have been written at t, and a candidate counts from what it
// read; so the fence closes a renew deadline after t, not after the answer.
func TestALateAnswerDoesNotStretchTheFence(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	r := &renewals{Interface: &slowLock{clock: clock, delay: 8 * time.Second}, clock: clock, renewDeadline: 10 * time.Second}
	sent := clock.Now()
	if err := r.Update(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "a"}); err != nil {
		t.Fatal(err)
	}
	if !r.within(10 * time.Second) {
		t.Fatal("the fence is closed right after a renewal landed")
	}
	clock.SetTime(sent.Add(10 * time.Second))
	if r.within(10 * time.Second) {
		t.Error("the fence is open a renew deadline after the renewal was sent (dated from its late answer)")
	}
}
