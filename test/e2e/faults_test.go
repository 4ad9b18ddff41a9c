//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

// The fault suite (make e2e-faults, part of make check): each fault is
// injected while a load that goes up and down runs against two annotated
// Deployments and two controller replicas, and the API server's audit log,
// which records every scale write with the count written, is the witness
// the checks read. Waits are conditions with deadlines; a fault lasts as
// long as its scenario says.

// faultTargets are the rig's Deployments: their cooldowns differ so that a
// takeover lands inside one and after the other.
var faultTargets = []struct {
	name     string
	cooldown time.Duration
}{{"alpha", 6 * time.Second}, {"beta", 30 * time.Second}}

// faultInterval is the targets' evaluation interval (fast()).
const faultInterval = 2 * time.Second

// faultRig is one fault scenario: the Deployments, the load, two replicas
// ("a" leads first), the Lease's history and the replicas' exits.
type faultRig struct {
	*scenario
	svc  string
	a, b *replica

	mu       sync.Mutex
	leaders  []leadership // every holder seen, in order
	exits    []exit
	restarts []time.Time // when a replica process was started again
}

type leadership struct {
	id   string
	from time.Time
}

type exit struct {
	id   string
	code int
	at   time.Time
}

// newFaultRig starts the rig; a reaches the API server as aKubeconfig
// says, both run with extra flags.
func newFaultRig(t *testing.T, aKubeconfig string, webhooks bool, extra ...string) *faultRig {
	s := newScenario(t)
	r := &faultRig{scenario: s, svc: s.demoService("faults")}
	for _, tg := range faultTargets {
		s.deployment(tg.name, 1, fast("service", "faults", "cooldown", tg.cooldown.String()))
	}
	r.a = s.startReplicaWith("a", webhooks, aKubeconfig, extra...)
	s.waitHolder("a", 30*time.Second)
	r.b = s.startReplicaWith("b", webhooks, env.Kubeconfig, extra...)
	go r.watchLeaders()
	return r
}

// watchLeaders records every change of the Lease's holder (the API server
// may be down: a failed read records nothing).
func (r *faultRig) watchLeaders() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
		h := r.holder()
		r.mu.Lock()
		if h != "" && (len(r.leaders) == 0 || r.leaders[len(r.leaders)-1].id != h) {
			r.leaders = append(r.leaders, leadership{h, time.Now()})
		}
		r.mu.Unlock()
	}
}

// supervise restarts a replica a second after it exits, as the kubelet
// restarts a container, and records the exit.
func (r *faultRig) supervise() {
	for _, rep := range []*replica{r.a, r.b} {
		go func() {
			for {
				p := rep.current()
				select {
				case <-r.ctx.Done():
					return
				case <-p.Done():
				}
				r.mu.Lock()
				r.exits = append(r.exits, exit{rep.id, p.ExitCode(), time.Now()})
				r.mu.Unlock()
				select {
				case <-r.ctx.Done():
					return
				case <-time.After(time.Second):
				}
				rep.restart(r.t)
				r.mu.Lock()
				r.restarts = append(r.restarts, time.Now())
				r.mu.Unlock()
			}
		}()
	}
}

func (r *faultRig) exitsOf(id string) []exit {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []exit
	for _, e := range r.exits {
		if e.id == id {
			out = append(out, e)
		}
	}
	return out
}

// leading reports whether a replica says it leads (reactive_autoscaler_leader).
func (r *faultRig) leading() bool {
	for _, rep := range []*replica{r.a, r.b} {
		if v, err := scrapeErr(rep.metricsURL, "reactive_autoscaler_leader"); err == nil && v == 1 {
			return true
		}
	}
	return false
}

func (r *faultRig) replicaByID(id string) *replica {
	if id == "a" {
		return r.a
	}
	return r.b
}

// bothAt waits until every target has n replicas.
func (r *faultRig) bothAt(n int32, what string, timeout time.Duration) {
	r.t.Helper()
	for _, tg := range faultTargets {
		r.waitReplicas(tg.name, what, timeout, func(got int32) bool { return got == n })
	}
}

// scaleWrite is one audited scale update.
type scaleWrite struct {
	target   string
	by       string // replica id, from the user agent
	from, to int32
	at       time.Time
}

// scaleWrites reads every successful scale update of the rig's targets
// from the audit log, with the count each replaced.
func (r *faultRig) scaleWrites() []scaleWrite {
	r.t.Helper()
	all, err := env.Writes(r.ns)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []scaleWrite
	last := map[string]int32{}
	for _, w := range all {
		if w.Resource != "deployments/scale" || w.Verb != "update" || w.Replicas == nil || w.Code >= 300 {
			continue
		}
		from, ok := last[w.Name]
		if !ok {
			from = 1
		}
		by := ""
		for _, id := range []string{"a", "b"} {
			if strings.Contains(w.UserAgent, "("+id+")") {
				by = id
			}
		}
		out = append(out, scaleWrite{w.Name, by, from, *w.Replicas, w.At})
		last[w.Name] = *w.Replicas
	}
	return out
}

// window is a span of time; a zero to means still open.
type window struct{ from, to time.Time }

func (w window) contains(t time.Time) bool {
	return !t.Before(w.from) && (w.to.IsZero() || t.Before(w.to))
}

// faultReport is a row of the fault table in docs/OPERATIONS.md.
type faultReport struct {
	fault, duration, did        string
	writesDuring                int
	cooldownViolations, blindDn int
	alertsLost                  int
	recovery                    time.Duration
}

// verify checks the audit log's scale writes: no two writes to a target
// closer than its cooldown (1 s of timestamp slack); no scale-down while
// the controllers had no data (blind), nor by a new leader before its
// second evaluation (it needs two good samples after taking over). It
// fails the test on a violation and returns the counts for the report.
func (r *faultRig) verify(rep *faultReport, fault window, blind ...window) {
	r.t.Helper()
	writes := r.scaleWrites()
	r.mu.Lock()
	leaders := slices.Clone(r.leaders)
	restarts := slices.Clone(r.restarts)
	r.mu.Unlock()
	// A new leader, or a restarted process taking its own Lease back,
	// decides on its second good sample at the earliest: one interval
	// after it started leading.
	for i, l := range leaders {
		if i > 0 {
			blind = append(blind, window{l.from, l.from.Add(faultInterval - 500*time.Millisecond)})
		}
	}
	for _, at := range restarts {
		blind = append(blind, window{at, at.Add(faultInterval)})
	}
	spikes := r.spikeWrites()
	prev := map[string]scaleWrite{}
	for _, w := range writes {
		if fault.contains(w.at) {
			rep.writesDuring++
		}
		cooldown := time.Duration(0)
		for _, tg := range faultTargets {
			if tg.name == w.target {
				cooldown = tg.cooldown
			}
		}
		// A spike evaluation may scale up inside the cooldown (the
		// contract); the replica's UPSCALE log line says which were.
		spike := w.to > w.from && slices.ContainsFunc(spikes, func(sp scaleWrite) bool {
			return sp.target == w.target && sp.to == w.to && sp.at.Sub(w.at).Abs() < 2*time.Second
		})
		if p, ok := prev[w.target]; ok && !spike && w.at.Sub(p.at) < cooldown-time.Second {
			rep.cooldownViolations++
			r.t.Errorf("%s: %d->%d by %s at %s only %v after %d->%d by %s (cooldown %v)", w.target, w.from, w.to, w.by,
				w.at.Format("15:04:05.000"), w.at.Sub(p.at), p.from, p.to, p.by, cooldown)
		}
		prev[w.target] = w
		if w.to < w.from {
			for _, b := range blind {
				if b.contains(w.at) {
					rep.blindDn++
					r.t.Errorf("%s: scaled down %d->%d by %s at %s, without the data for it (%s to %s)", w.target, w.from, w.to, w.by,
						w.at.Format("15:04:05.000"), b.from.Format("15:04:05.000"), b.to.Format("15:04:05.000"))
				}
			}
		}
	}
	r.t.Logf("scale writes: %v", writes)
	r.t.Logf("leaders: %v", leaders)
	r.t.Logf("FAULT-TABLE | %s | %s | %s | %d | %d | %d | %d | %s |", rep.fault, rep.duration, rep.did, rep.writesDuring,
		rep.cooldownViolations, rep.blindDn, rep.alertsLost, rep.recovery.Round(100*time.Millisecond))
}

func (w scaleWrite) String() string {
	return fmt.Sprintf("%s %d->%d by %s at %s", w.target, w.from, w.to, w.by, w.at.Format("15:04:05.000"))
}

func (l leadership) String() string { return l.id + " from " + l.from.Format("15:04:05.000") }

// spikeWrites reads the scale-ups the replicas logged as spike evaluations
// ("UPSCALE" ... spike=true), from every process each replica ran.
func (r *faultRig) spikeWrites() []scaleWrite {
	r.t.Helper()
	var out []scaleWrite
	for _, rep := range []*replica{r.a, r.b} {
		data, err := os.ReadFile(rep.current().LogPath)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.Contains(line, `"UPSCALE"`) || !strings.Contains(line, "spike=true") {
				continue
			}
			f := strings.Fields(line) // I1127 09:25:04.149123 pid file:line] "UPSCALE" deployment="ns/name" oldReplicas=2 newReplicas=3 spike=true
			if len(f) < 8 {
				continue
			}
			at, err := time.ParseInLocation("0102 15:04:05.000000", f[0][1:]+" "+f[1], time.Local)
			if err != nil {
				continue
			}
			now := time.Now()
			at = at.AddDate(now.Year(), 0, 0)
			var sw scaleWrite
			for _, kv := range f[5:] {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "deployment":
					_, sw.target, _ = strings.Cut(strings.Trim(v, `"`), "/")
				case "oldReplicas":
					fmt.Sscan(v, &sw.from)
				case "newReplicas":
					fmt.Sscan(v, &sw.to)
				}
			}
			sw.by, sw.at = rep.id, at
			out = append(out, sw)
		}
	}
	return out
}

// kubeconfigVia writes a copy of the environment's kubeconfig whose server
// is addr (a fault proxy; the certificate names 127.0.0.1 whatever the port).
func kubeconfigVia(t *testing.T, addr string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + addr
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func apiServerHostPort() string { return strings.TrimPrefix(env.APIServerURL, "https://") }

// TestFaultPrometheusOutage: Prometheus stopped for 60 s while the load
// drops. No scale-down during the outage or on the first sample after it;
// FailedGetMetrics Events and the dataHealth status show it; decisions
// resume once data is back.
func TestFaultPrometheusOutage(t *testing.T) {
	r := newFaultRig(t, env.Kubeconfig, false)
	r.load(r.svc, "steady", 45)
	r.bothAt(3, "scaled to 3 before the outage", 90*time.Second)

	env.StopPrometheus()
	down := time.Now()
	running := false
	t.Cleanup(func() {
		if !running {
			_ = env.StartPrometheus(context.Background())
		}
	})
	r.load(r.svc, "stop", 0)
	for _, tg := range faultTargets {
		r.poll(tg.name+" FailedGetMetrics", time.Minute, func() (bool, error) { return len(r.events(tg.name, "FailedGetMetrics")) > 0, nil })
		r.poll(tg.name+" status no data", time.Minute, func() (bool, error) {
			return strings.Contains(r.get(tg.name).Annotations["autoscale.io/status"], `"dataHealth":"no data`), nil
		})
	}
	time.Sleep(time.Until(down.Add(60 * time.Second))) // the outage lasts 60 s
	for _, tg := range faultTargets {
		if n := r.replicas(tg.name); n != 3 {
			t.Errorf("%s at %d replicas after 60 s without data, want 3 held", tg.name, n)
		}
	}
	if err := env.StartPrometheus(r.ctx); err != nil {
		t.Fatal(err)
	}
	running = true
	up := time.Now()
	var data time.Time
	r.poll("the first sample after the outage", time.Minute, func() (bool, error) {
		_, err := promQuery(`sum(rate(http_requests_total{service="faults"}[5s]))`)
		data = time.Now()
		return err == nil, nil
	})
	r.bothAt(1, "scaled down once data is back", 2*time.Minute)
	rep := &faultReport{fault: "Prometheus stopped", duration: "60 s", did: "held both targets, FailedGetMetrics, status no data; scaled down 2 evaluations after data returned"}
	for _, w := range r.scaleWrites() {
		if w.at.After(up) && rep.recovery == 0 {
			rep.recovery = w.at.Sub(up)
		}
	}
	// Blind from the stop until the second good sample after the restart.
	r.verify(rep, window{down, up}, window{down, data.Add(faultInterval)})
}

// TestFaultNetworkPartition: the leader reaches the API server through a
// proxy that starts dropping everything. It writes nothing after its
// renew deadline, exits non-zero (once client-go's attempt to release the
// Lease times out too), and the other replica takes over within
// takeoverBound and keeps the cooldowns the leader started.
func TestFaultNetworkPartition(t *testing.T) {
	proxy := newFaultProxy(t, apiServerHostPort())
	r := newFaultRig(t, kubeconfigVia(t, proxy.Addr), false)
	r.load(r.svc, "steady", 80)
	r.bothAt(4, "scaled to 4 by a", 90*time.Second)

	proxy.Blackhole()
	cut := time.Now()
	r.load(r.svc, "stop", 0)
	took := r.waitHolder("b", takeoverBound+10*time.Second).Sub(cut)
	if took > takeoverBound {
		t.Errorf("b took over %v after the partition, want within %v (client-go's bound for lease duration %v)", took, takeoverBound, leaseDuration)
	}
	// a's renewals fail for a renew deadline; client-go then tries to
	// release the Lease for up to another one before a exits.
	p := r.a.current()
	select {
	case <-p.Done():
	case <-time.After(2*renewDeadline + retryPeriod + 5*time.Second):
		t.Fatalf("a still runs %v after the partition (renew deadline %v)", time.Since(cut), renewDeadline)
	}
	exited := time.Since(cut)
	if p.ExitCode() == 0 {
		t.Errorf("a exited with code 0 after losing the API server, want non-zero")
	}
	t.Logf("partition -> b leads: %v; -> a exits (code %d): %v", took.Round(10*time.Millisecond), p.ExitCode(), exited.Round(10*time.Millisecond))
	r.bothAt(1, "scaled down by b", 2*time.Minute)
	for _, w := range r.scaleWrites() {
		if w.by == "a" && w.at.After(cut) {
			t.Errorf("a wrote after the partition: %v", w)
		}
	}
	for _, w := range r.writesBy("a", "beta") {
		if w.At.After(cut.Add(renewDeadline)) {
			t.Errorf("a wrote %s %s after its renew deadline", w.Verb, w.Resource)
		}
	}
	rep := &faultReport{fault: "leader partitioned from the API server", duration: "until it exits", recovery: took,
		did: fmt.Sprintf("leader exited %v after the cut (code %d), the other took over at %v and scaled down after the cooldowns", exited.Round(100*time.Millisecond), p.ExitCode(), took.Round(100*time.Millisecond))}
	r.verify(rep, window{cut, cut.Add(took)})
}

// TestFaultSlowAPIServer: every request of the leader to the API server is
// delayed by 500 ms for 60 s while the load moves: the leader keeps its
// Lease, no evaluation is lost or duplicated, the writes still respect the
// cooldowns, and evaluations keep their schedule: a scale action is one API
// call and the status is written by a worker of its own, so no evaluation
// outlasts the 2 s interval and the lag metric stays under half a delayed
// call. (With four calls per scale action it grew; that the metric shows a
// late start is TestALateStartShowsInTheLagMetric's.)
func TestFaultSlowAPIServer(t *testing.T) {
	proxy := newFaultProxy(t, apiServerHostPort())
	r := newFaultRig(t, kubeconfigVia(t, proxy.Addr), false)
	r.load(r.svc, "steady", 45)
	r.bothAt(3, "scaled to 3", 90*time.Second)
	lag := func() (sum, count float64) {
		return scrapeHistogram(t, r.a.metricsURL, "reactive_autoscaler_evaluation_lag_seconds")
	}
	evals0 := r.a.metric(t, "reactive_autoscaler_evaluations_total")
	lagSum0, lagN0 := lag()

	proxy.Delay(500 * time.Millisecond)
	slow := time.Now()
	r.load(r.svc, "steady", 80)
	r.bothAt(4, "scaled to 4 through the slow API server", time.Minute)
	r.load(r.svc, "stop", 0)
	time.Sleep(time.Until(slow.Add(60 * time.Second))) // the slowness lasts 60 s
	evals := r.a.metric(t, "reactive_autoscaler_evaluations_total") - evals0
	lagSum, lagN := lag()
	proxy.Heal()
	healed := time.Now()

	if h := r.holder(); h != "a" {
		t.Errorf("the lease moved to %q under 500 ms of latency", h)
	}
	want := float64(len(faultTargets)) * time.Since(slow).Seconds() / faultInterval.Seconds()
	t.Logf("%.0f evaluations in %v (%.0f expected at one per interval); mean lag %.3fs before, %.3fs while slow",
		evals, healed.Sub(slow).Round(time.Second), want, lagSum0/max(lagN0, 1), (lagSum-lagSum0)/max(lagN-lagN0, 1))
	if evals < 0.9*want || evals > 1.1*want {
		t.Errorf("%.0f evaluations while slow, want %.0f +-10%% (none lost, none duplicated)", evals, want)
	}
	if slowLag := (lagSum - lagSum0) / max(lagN-lagN0, 1); slowLag > 0.25 {
		t.Errorf("mean evaluation lag %.3fs while the API server was slow, want < 0.25s (evaluations on schedule)", slowLag)
	}
	r.bothAt(1, "scaled down", 2*time.Minute)
	rep := &faultReport{fault: "500 ms added to every API request of the leader", duration: "60 s",
		did: fmt.Sprintf("kept the lease, %.0f of %.0f evaluations, mean lag %.2fs -> %.2fs", evals, want, lagSum0/max(lagN0, 1), (lagSum-lagSum0)/max(lagN-lagN0, 1))}
	r.verify(rep, window{slow, healed})
}

// TestFaultAPIServerRestart: etcd and kube-apiserver stopped for 20 s and
// started again while the load rises. The leader exits when its renew
// deadline passes (the outage is longer); it is restarted as the kubelet
// would; once the API server is back a leader is elected, the informers
// resync and the targets are scaled, with no cooldown violated and no
// scale-down on data the new leader did not have.
func TestFaultAPIServerRestart(t *testing.T) {
	r := newFaultRig(t, env.Kubeconfig, false)
	r.supervise()
	r.load(r.svc, "steady", 45)
	r.bothAt(3, "scaled to 3", 90*time.Second)

	env.StopAPIServer()
	stopped := time.Now()
	running := false
	t.Cleanup(func() {
		if !running {
			_ = env.StartAPIServer(context.Background())
		}
	})
	r.load(r.svc, "steady", 80)
	time.Sleep(time.Until(stopped.Add(20 * time.Second))) // the outage lasts 20 s
	restarting := time.Now()
	if err := env.StartAPIServer(r.ctx); err != nil {
		t.Fatal(err)
	}
	running = true
	back := time.Now()
	var leader string
	r.poll("a leader after the API server returned", time.Minute, func() (bool, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if l := r.leaders[len(r.leaders)-1]; l.from.After(back) || r.holderRenewedAfter(back) {
			leader = l.id
			return true, nil
		}
		return false, nil
	})
	elected := time.Since(back)
	r.bothAt(4, "scaled to 4 after the restart", 90*time.Second)
	recovered := time.Since(back)
	exits := r.exitsOf("a")
	if len(exits) == 0 || exits[0].code == 0 || exits[0].at.Sub(stopped) > renewDeadline+5*time.Second {
		t.Errorf("a's exits %v: want one with a non-zero code within the renew deadline (%v) of the outage", exits, renewDeadline)
	}
	r.load(r.svc, "stop", 0)
	r.bothAt(1, "scaled down", 2*time.Minute)
	rep := &faultReport{fault: "etcd and kube-apiserver stopped", duration: "20 s", recovery: recovered,
		did: fmt.Sprintf("leader exited (renew deadline) and was restarted; %s led %v after the API server was back; informers resynced", leader, elected.Round(100*time.Millisecond))}
	r.verify(rep, window{stopped, restarting})
}

// TestFaultAPIServerStall: every request of the leader to the API server
// hangs for about its renew deadline, then all of them are answered. The
// leader's fence closes at the renew deadline (its last renewal is too
// old), but client-go's renewal attempt is still waiting on the stalled
// request and lands once it is answered: the leader leads on. Every
// target it evaluated while fenced is evaluated again within two
// intervals of the stall's end, and no scale write happens while fenced.
// The retry period is 4 s here so that the attempt outlives the fence by
// seconds (it ends 10 s after it began, a retry period after the last
// renewal), which makes the late renewal land every run.
func TestFaultAPIServerStall(t *testing.T) {
	const retry = 4 * time.Second
	proxy := newFaultProxy(t, apiServerHostPort())
	r := newFaultRig(t, kubeconfigVia(t, proxy.Addr), false, "--leader-elect-retry-period="+retry.String())
	r.load(r.svc, "steady", 45)
	r.bothAt(3, "scaled to 3", 90*time.Second)
	renewTime := func() time.Time {
		l, err := client.CoordinationV1().Leases(r.ns).Get(r.ctx, leaseName, metav1.GetOptions{})
		if err != nil || l.Spec.RenewTime == nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "a" {
			return time.Time{}
		}
		return l.Spec.RenewTime.Time
	}
	// Stall right after a renewal, so that the fence closes a renew
	// deadline later, inside the stall.
	before := renewTime()
	var renewed time.Time
	r.poll("a renewal by a", 3*retry, func() (bool, error) {
		renewed = renewTime()
		return !renewed.IsZero() && renewed.After(before), nil
	})
	proxy.Blackhole()
	stalled := time.Now()
	healed := false
	t.Cleanup(func() {
		if !healed {
			proxy.Heal()
		}
	})
	fenceCloses := stalled.Add(renewDeadline)
	time.Sleep(time.Until(fenceCloses.Add(2300 * time.Millisecond))) // the stall lasts the renew deadline and 2.3 s
	proxy.Heal()
	healed = true
	end := time.Now()
	var landed time.Time
	r.poll("a's late renewal", retry, func() (bool, error) {
		if rt := renewTime(); rt.After(renewed) {
			landed = time.Now()
			return true, nil
		}
		return false, nil
	})
	if r.a.current().Exited() {
		t.Fatalf("a exited: the late renewal did not keep it leading, so this run did not test a fenced leader that leads on")
	}
	data, err := os.ReadFile(r.a.current().LogPath)
	if err != nil {
		t.Fatal(err)
	}
	fenced := strings.Count(string(data), "Not the leader any more")
	if fenced == 0 {
		t.Fatalf("a made no fenced evaluation during the stall: the scenario tested nothing")
	}
	worst := time.Duration(0)
	for _, tg := range faultTargets {
		var at time.Time
		r.poll(tg.name+" evaluated again after the stall", 4*faultInterval+5*time.Second, func() (bool, error) {
			v, err := scrapeErr(r.a.metricsURL, "reactive_autoscaler_target_last_evaluation_timestamp_seconds", "deployment", tg.name)
			at = time.Unix(0, int64(v*1e9))
			return err == nil && at.After(end), nil
		})
		if d := at.Sub(end); d > 2*faultInterval {
			t.Errorf("%s evaluated again %v after the stall ended, want within two intervals (%v)", tg.name, d.Round(10*time.Millisecond), 2*faultInterval)
		}
		worst = max(worst, at.Sub(end))
	}
	for _, w := range r.scaleWrites() {
		if !w.at.Before(fenceCloses) && w.at.Before(landed) {
			t.Errorf("scale write while fenced: %v", w)
		}
	}
	t.Logf("stall %v; renewal landed %v after it ended; %d fenced evaluations; every target evaluated again within %v",
		end.Sub(stalled).Round(100*time.Millisecond), landed.Sub(end).Round(10*time.Millisecond), fenced, worst.Round(10*time.Millisecond))
	r.load(r.svc, "stop", 0)
	r.bothAt(1, "scaled down after the stall", 2*time.Minute)
	rep := &faultReport{fault: "API server stall", duration: fmt.Sprintf("%.1f s", end.Sub(stalled).Seconds()), recovery: worst,
		did: fmt.Sprintf("leader fenced (%d evaluations dropped, nothing written), its late renewal landed and it led on; every target evaluated again within %v", fenced, worst.Round(100*time.Millisecond))}
	r.verify(rep, window{stalled, end})
}

// holderRenewedAfter reports whether the Lease was renewed after t.
func (r *faultRig) holderRenewedAfter(t time.Time) bool {
	l, err := client.CoordinationV1().Leases(r.ns).Get(r.ctx, leaseName, metav1.GetOptions{})
	return err == nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(t)
}

// TestFaultCrashLoop: the leader is SIGKILLed every 20 s for 5 minutes
// while the load goes up and down and spike alerts go through the real
// Alertmanager to both replicas. Across every restart: no cooldown
// violated, no scale-down on missing data, every alert delivered
// (Alertmanager records no failed notification), and the final replica
// count is what the load asks for.
func TestFaultCrashLoop(t *testing.T) {
	r := newFaultRig(t, env.Kubeconfig, true)
	serveRoundRobin(t, webhookAddr, r.a.webhook, r.b.webhook)
	r.supervise()
	failed0, _ := scrapeErr(env.AlertmanagerURL, "alertmanager_notifications_failed_total", "integration", "webhook")
	start := time.Now()
	var kills atomic.Int32
	var recoveries atomic.Value // the longest time from a kill to a leader
	recoveries.Store(time.Duration(0))
	killing, stop := context.WithCancel(r.ctx)
	go func() { // every 20 s, SIGKILL whoever leads
		tick := time.NewTicker(20 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-killing.Done():
				return
			case <-tick.C:
			}
			id := r.holder()
			if id == "" {
				continue
			}
			p := r.replicaByID(id).current()
			if p.Signal(syscall.SIGKILL) != nil {
				continue
			}
			kills.Add(1)
			killed := time.Now()
			<-p.Done()
			// Time to a leader again: a replica reporting leader=1.
			for time.Since(killed) < 19*time.Second && killing.Err() == nil {
				if r.leading() {
					recoveries.Store(max(recoveries.Load().(time.Duration), time.Since(killed)))
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	phases := []float64{45, 0, 80, 10, 45} // a minute each
	for i, rps := range phases {
		r.load(r.svc, "steady", rps)
		if i > 0 && rps > phases[i-1] {
			for _, tg := range faultTargets {
				postAlert(t, map[string]string{"alertname": "RequestRateSpike", "namespace": r.ns, "deployment": tg.name, "phase": fmt.Sprint(i)})
			}
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * time.Minute))) // the phase lasts a minute
	}
	stop()
	stopped := time.Now()
	leading := recoveries.Load().(time.Duration)
	r.bothAt(3, "at the load's 3 replicas after the crash loop", 2*time.Minute)
	recovered := time.Since(stopped)
	failed, err := scrapeErr(env.AlertmanagerURL, "alertmanager_notifications_failed_total", "integration", "webhook")
	if err != nil {
		t.Fatal(err)
	}
	lost := int(failed - failed0)
	if lost != 0 {
		t.Errorf("Alertmanager gave up on %d notifications", lost)
	}
	t.Logf("%d SIGKILLs in %v; exits a %d, b %d", kills.Load(), stopped.Sub(start).Round(time.Second), len(r.exitsOf("a")), len(r.exitsOf("b")))
	rep := &faultReport{fault: "leader SIGKILLed every 20 s", duration: "5 min", alertsLost: lost, recovery: leading,
		did: fmt.Sprintf("%d kills; each time the restarted process took its own Lease back (same identity) and decided again (a leader again at most %v after a kill); at the load's count %v after the last phase",
			kills.Load(), leading.Round(100*time.Millisecond), recovered.Round(100*time.Millisecond))}
	r.verify(rep, window{start, stopped})
}

// TestFaultAlertmanagerHAPair: two real Alertmanagers clustered on
// loopback, both routing to the replicas' webhooks behind a Service-like
// proxy, each alert sent to both as Prometheus does. A spike makes exactly
// one evaluation per notification group (Alertmanager's own HA and the
// webhook's dedup), and an Alertmanager killed mid-spike does not lose it.
func TestFaultAlertmanagerHAPair(t *testing.T) {
	r := newFaultRig(t, env.Kubeconfig, true, "--spike-window=0s")
	port, err := localenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	front := fmt.Sprintf("127.0.0.1:%d", port)
	serveRoundRobin(t, front, r.a.webhook, r.b.webhook)
	const peerTimeout = 3 * time.Second
	ams, err := env.StartAlertmanagerCluster(r.ctx, "am-"+r.ns, 2, localenv.WebhookRoute("http://"+front+"/webhook/alertmanager", tokenFile), peerTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, am := range ams {
			am.Proc.Stop(5 * time.Second)
		}
	})
	for _, am := range ams {
		r.poll("the Alertmanager cluster formed", time.Minute, func() (bool, error) {
			var st struct {
				Cluster struct {
					Peers []any `json:"peers"`
				} `json:"cluster"`
			}
			return getJSON(am.URL+"/api/v2/status", &st) == nil && len(st.Cluster.Peers) == 2, nil
		})
	}
	r.load(r.svc, "steady", 45)
	r.bothAt(3, "scaled to 3", 90*time.Second)
	outcome := func(o string) float64 {
		return r.a.metric(t, "reactive_autoscaler_webhook_alerts_total", "outcome", o) + r.b.metric(t, "reactive_autoscaler_webhook_alerts_total", "outcome", o)
	}
	sent := func() float64 {
		n := 0.0
		for _, am := range ams {
			if am.Proc.Exited() {
				continue
			}
			v, _ := scrapeErr(am.URL, "alertmanager_notifications_total", "integration", "webhook")
			n += v
		}
		return n
	}
	queued0 := outcome("queued")

	// One spike, sent to both Alertmanagers.
	spike := time.Now()
	labels := map[string]string{"alertname": "RequestRateSpike", "namespace": r.ns, "deployment": "alpha"}
	for _, am := range ams {
		postAlertTo(t, am.URL, labels, spike)
	}
	r.poll("the spike queued", 30*time.Second, func() (bool, error) { return outcome("queued") >= queued0+1, nil })
	queuedAt := time.Since(spike)
	// The second Alertmanager notifies, if at all, within its peer timeout
	// after the group wait; after that nothing more can come.
	time.Sleep(time.Until(spike.Add(1*time.Second + 2*peerTimeout + 2*time.Second)))
	if q := outcome("queued") - queued0; q != 1 {
		t.Errorf("%v evaluations queued for one notification group, want exactly 1", q)
	}
	delivered := sent()
	t.Logf("spike queued %v after it was sent; the pair delivered %v notifications, %v answered as duplicates",
		queuedAt.Round(10*time.Millisecond), delivered, outcome("duplicate"))

	// A second spike; the first Alertmanager dies before its group wait.
	second := time.Now()
	labels = map[string]string{"alertname": "RequestRateSpike", "namespace": r.ns, "deployment": "beta"}
	for _, am := range ams {
		postAlertTo(t, am.URL, labels, second)
	}
	if err := ams[0].Proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.poll("the spike queued though an Alertmanager died", time.Minute, func() (bool, error) { return outcome("queued") >= queued0+2, nil })
	recovered := time.Since(second)
	lost := 0
	if outcome("queued")-queued0 != 2 {
		lost = 1
	}
	rep := &faultReport{fault: "Alertmanager HA pair, one killed mid-spike", duration: "rest of the test", recovery: recovered, alertsLost: lost,
		did: fmt.Sprintf("1 evaluation per notification group (%v delivered, %v duplicates); the survivor delivered the second spike %v after it was sent",
			delivered, outcome("duplicate"), recovered.Round(100*time.Millisecond))}
	r.verify(rep, window{second, second.Add(recovered)})
}

// getJSON decodes the JSON answer of a GET.
func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
