package leader

import (
	"context"
	"errors"
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
	k8stesting "k8s.io/client-go/testing"
)

// newClient is a fake clientset whose Leases behave like the API server's:
// every write bumps resourceVersion, and an update carrying a stale one is
// refused with 409. (The plain fake accepts any update.)
func newClient() *fake.Clientset {
	client := fake.NewClientset()
	gvr := coordinationv1.SchemeGroupVersion.WithResource("leases")
	var rv atomic.Int64
	tracker := client.Tracker()
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

// replica is one campaigning Elector and what its callbacks saw.
type replica struct {
	e       *Elector
	started atomic.Bool
	stopped atomic.Bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// slow timings: a candidate's next regular retry is at least 20 s away, so
// a takeover within the tests' deadlines comes from the Lease watch.
var slow = Config{LeaseDuration: 30 * time.Second, RenewDeadline: 25 * time.Second, RetryPeriod: 20 * time.Second}

func campaign(t *testing.T, client kubernetes.Interface, id string, timing Config) *replica {
	t.Helper()
	r := &replica{done: make(chan struct{})}
	cfg := timing
	cfg.Client, cfg.Namespace, cfg.Name, cfg.Identity = client, ns, lease, id
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
		if err := r.e.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true, func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("%s: not within %v", what, timeout)
	}
}

func holderOf(t *testing.T, client kubernetes.Interface) string {
	t.Helper()
	l, err := client.CoordinationV1().Leases(ns).Get(context.Background(), lease, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return holder(l)
}

func TestValidateTimings(t *testing.T) {
	base := Config{Namespace: ns, Name: lease, Identity: "a", LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
	if err := base.Validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"lease not above renew":       func(c *Config) { c.LeaseDuration = 10 * time.Second },
		"renew not above 1.2 x retry": func(c *Config) { c.RenewDeadline = 2400 * time.Millisecond },
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

func TestAReleasedLeaseIsTakenAtOnce(t *testing.T) {
	client := newClient()
	a := campaign(t, client, "a", slow)
	eventually(t, "a leads", 5*time.Second, a.e.IsLeader)
	b := campaign(t, client, "b", slow)
	// b's first try saw a valid lease; its next regular try is >= 20 s away.
	eventually(t, "b observes a", 5*time.Second, func() bool { return b.e.current.Load() != nil && b.e.current.Load().GetLeader() == "a" })

	a.cancel() // SIGTERM: a releases the lease
	<-a.done
	if !a.stopped.Load() {
		t.Error("a's OnStoppedLeading was not called on release")
	}
	eventually(t, "b leads after a released", 5*time.Second, func() bool { return b.e.IsLeader() && b.started.Load() })
	if got := holderOf(t, client); got != "b" {
		t.Errorf("holder = %q, want b", got)
	}
	if b.stopped.Load() {
		t.Error("b's OnStoppedLeading was called although b never lost leadership (the restarted campaign counted as a loss)")
	}
}

func TestALeaseNobodyRenewsIsTakenAfterItsDuration(t *testing.T) {
	client := newClient()
	dead, two := "dead", int32(2)
	now := metav1.NewMicroTime(time.Now())
	if _, err := client.CoordinationV1().Leases(ns).Create(context.Background(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: lease, Namespace: ns},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &dead, LeaseDurationSeconds: &two, AcquireTime: &now, RenewTime: &now},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b := campaign(t, client, "b", slow)
	start := time.Now()
	eventually(t, "b leads after the dead holder's 2 s", 10*time.Second, b.e.IsLeader)
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("b took the lease after %v, before the holder's 2 s duration ran out", took)
	}
	l, err := client.CoordinationV1().Leases(ns).Get(context.Background(), lease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.LeaseTransitions == nil || *l.Spec.LeaseTransitions != 1 {
		t.Errorf("lease transitions = %v, want 1", l.Spec.LeaseTransitions)
	}
}

func TestAValidLeaseIsNotTaken(t *testing.T) {
	client := newClient()
	fast := Config{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: time.Second}
	a := campaign(t, client, "a", fast)
	eventually(t, "a leads", 5*time.Second, a.e.IsLeader)
	b := campaign(t, client, "b", fast)
	// Over two lease durations a renews, so b must never lead.
	deadline := time.Now().Add(2 * fast.LeaseDuration)
	for time.Now().Before(deadline) {
		if b.e.IsLeader() || holderOf(t, client) != "a" {
			t.Fatalf("b took a lease a keeps renewing (holder %q)", holderOf(t, client))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestALeaderThatSeesAnotherHolderStopsWritingBeforeItsDeadline(t *testing.T) {
	client := newClient()
	fast := Config{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: time.Second}
	a := campaign(t, client, "a", fast)
	eventually(t, "a leads", 5*time.Second, a.e.IsLeader)

	l, err := client.CoordinationV1().Leases(ns).Get(context.Background(), lease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	intruder, now := "intruder", metav1.NewMicroTime(time.Now())
	l.Spec.HolderIdentity, l.Spec.RenewTime = &intruder, &now
	if _, err := client.CoordinationV1().Leases(ns).Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a stops claiming leadership", 5*time.Second, func() bool { return !a.e.IsLeader() })
	eventually(t, "a's leadership ends", 10*time.Second, a.stopped.Load)
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after leadership was lost")
	}
	if got := holderOf(t, client); got != "intruder" {
		t.Errorf("holder = %q; a must not take the lease back", got)
	}
}

// TestALeaderWhoseRenewalsStopLandingStopsWritingAtItsDeadline: the API
// server stops accepting the leader's renewals (a partition, say). Once its
// last renewal is a renew deadline old it no longer calls itself the leader,
// though client-go's elector still does while it tries to release the Lease
// (for up to another renew deadline): writes are fenced before that ends.
func TestALeaderWhoseRenewalsStopLandingStopsWritingAtItsDeadline(t *testing.T) {
	client := newClient()
	var cut atomic.Bool
	client.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if cut.Load() { // a blackhole: the request hangs, then fails
			time.Sleep(1500 * time.Millisecond)
			return true, nil, errors.New("dial tcp: i/o timeout")
		}
		return false, nil, nil
	})
	fast := Config{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond}
	a := campaign(t, client, "a", fast)
	eventually(t, "a leads", 5*time.Second, a.e.IsLeader)
	cut.Store(true)
	start := time.Now()
	eventually(t, "a stops claiming leadership", 3*time.Second, func() bool { return !a.e.IsLeader() })
	fenced := time.Since(start)
	if a.stopped.Load() {
		t.Errorf("the fence closed only when leadership ended (%v): it must close at the renew deadline", fenced)
	}
	eventually(t, "a's leadership ends", 10*time.Second, a.stopped.Load)
	t.Logf("renewals cut: fenced after %v, leadership ended after %v", fenced.Round(10*time.Millisecond), time.Since(start).Round(10*time.Millisecond))
}
