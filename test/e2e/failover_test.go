//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

// The binary's leader-election defaults, which these tests run with.
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 500 * time.Millisecond
	leaseName     = "reactive-autoscaler"
	// takeoverBound is client-go's bound for taking an unrenewed Lease: a
	// candidate sees the holder's last renewal up to 2.2 retry periods
	// after it happened, and retries up to 2.2 retry periods after the
	// lease duration has passed since.
	takeoverBound = leaseDuration + 44*retryPeriod/10
)

// replica is one controller process of a two-replica deployment.
type replica struct {
	id         string
	metricsURL string
	webhook    string // host:port, or empty
	// name, environ and args start it again (restart).
	name    string
	environ []string
	args    []string
	mu      sync.Mutex
	proc    *localenv.Proc // the running process (current() when a supervisor restarts it)
}

// current returns the replica's latest process.
func (r *replica) current() *localenv.Proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc
}

// restart starts the replica again, as the kubelet restarts a container,
// without waiting for it to be ready (the API server may be down).
func (r *replica) restart(t testing.TB) {
	t.Helper()
	p, err := env.StartProcess(r.name, filepath.Join(binDir, "reactive-autoscaler"), r.environ, r.args...)
	if err != nil {
		t.Errorf("restarting %s: %v", r.id, err)
		return
	}
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
}

// startReplica runs the binary with leader election on (the defaults), its
// Lease in the scenario's namespace and its identity as POD_NAME.
func (s *scenario) startReplica(id string, withWebhook bool) *replica {
	s.t.Helper()
	return s.startReplicaWith(id, withWebhook, env.Kubeconfig)
}

// startReplicaWith is startReplica reaching the API server as kubeconfig
// says (through a fault proxy, say), with extra flags.
func (s *scenario) startReplicaWith(id string, withWebhook bool, kubeconfig string, extra ...string) *replica {
	s.t.Helper()
	ports := make([]int, 2)
	for i := range ports {
		p, err := localenv.FreePort()
		if err != nil {
			s.t.Fatal(err)
		}
		ports[i] = p
	}
	r := &replica{id: id, metricsURL: fmt.Sprintf("http://127.0.0.1:%d", ports[0])}
	args := []string{"run", "--kubeconfig", kubeconfig, "--namespace", s.ns,
		"--prometheus-url", env.PrometheusURL, "--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"--leader-elect=true", "--leader-election-namespace", s.ns, "-v=2"}
	if withWebhook {
		r.webhook = fmt.Sprintf("127.0.0.1:%d", ports[1])
		args = append(args, "--webhook-bind-address", r.webhook, "--webhook-token-file", tokenFile)
	}
	args = append(args, extra...)
	r.name, r.environ, r.args = "autoscaler-"+s.ns+"-"+id, []string{"POD_NAME=" + id}, args
	r.proc = s.runBinary(r.name, r.environ, r.metricsURL, args...)
	return r
}

// metric sums a metric family of the replica, over series whose labels
// contain every pair in match.
func (r *replica) metric(t testing.TB, name string, match ...string) float64 {
	t.Helper()
	return scrape(t, r.metricsURL, name, match...)
}

// holder returns the holder identity of the binary's default Lease.
func (s *scenario) holder(name ...string) string {
	lease := leaseName
	if len(name) > 0 {
		lease = name[0]
	}
	l, err := client.CoordinationV1().Leases(s.ns).Get(s.ctx, lease, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// waitHolder polls the Lease every 50 ms until id holds it and returns
// when that was first seen.
func (s *scenario) waitHolder(id string, timeout time.Duration) time.Time {
	s.t.Helper()
	var at time.Time
	err := wait.PollUntilContextTimeout(s.ctx, 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		at = time.Now()
		return s.holder() == id, nil
	})
	if err != nil {
		s.t.Fatalf("%s never held the lease (holder %q)", id, s.holder())
	}
	return at
}

// writesBy returns the audited writes to Deployment name (its object, scale
// and Events) made by the replica with identity id.
func (s *scenario) writesBy(id, name string) []localenv.Write {
	s.t.Helper()
	all, err := env.Writes(s.ns)
	if err != nil {
		s.t.Fatal(err)
	}
	var out []localenv.Write
	for _, w := range all {
		ours := w.Name == name || (w.Resource == "events" && strings.HasPrefix(w.Name, name+"."))
		if ours && strings.Contains(w.UserAgent, "("+id+")") {
			out = append(out, w)
		}
	}
	return out
}

// TestSIGKILLedLeaderIsReplacedWithoutForgettingTheCooldown: the leader is
// killed right after scaling two Deployments up and the load drops to 0.
// The other replica takes the Lease within takeoverBound; it
// does not scale "held" down before the 40 s cooldown the old leader started,
// and "quick" (6 s cooldown, over by the takeover) is not scaled down on the
// new leader's first evaluation.
func TestSIGKILLedLeaderIsReplacedWithoutForgettingTheCooldown(t *testing.T) {
	s := newScenario(t)
	svc := s.demoService("fo-kill")
	s.deployment("held", 1, fast("service", "fo-kill", "cooldown", "40s"))
	s.deployment("quick", 1, fast("service", "fo-kill", "cooldown", "6s"))
	held := s.recordReplicaChanges("held")
	a := s.startReplica("a", false)
	s.waitHolder("a", 30*time.Second)
	b := s.startReplica("b", false)

	s.load(svc, "steady", 80)
	s.waitReplicas("held", "scaled up by a", time.Minute, func(r int32) bool { return r > 1 })
	s.waitReplicas("quick", "scaled up by a", time.Minute, func(r int32) bool { return r > 1 })
	before := held()
	heldAt := before[len(before)-1].at // the old leader's last action on "held"

	s.load(svc, "stop", 0)
	if err := a.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-a.proc.Done()
	took := s.waitHolder("b", 40*time.Second).Sub(killed)
	t.Logf("SIGKILL -> b holds the lease: %.2fs (lease duration %v, retry period %v)", took.Seconds(), leaseDuration, retryPeriod)
	if took > takeoverBound {
		t.Errorf("takeover took %v, want <= %v", took, takeoverBound)
	}

	// The new leader's first evaluation of both targets: nothing scaled down.
	s.poll("b's first evaluations", 30*time.Second, func() (bool, error) {
		return b.metric(t, "reactive_autoscaler_evaluations_total") >= 2, nil
	})
	if down := b.metric(t, "reactive_autoscaler_scale_actions_total", "direction", "down"); down != 0 {
		t.Errorf("b scaled down %v times on its first evaluations (load had just dropped to 0)", down)
	}

	// "held" stays put until the old leader's cooldown is over, then b
	// scales it down.
	s.waitReplicas("held", "scaled down by b", 2*time.Minute, func(r int32) bool { return r == 1 })
	after := held()[len(before):]
	t.Logf("held: a's last action %s, then %v", heldAt.Format("15:04:05.000"), after)
	if gap := after[0].at.Sub(heldAt); gap < 40*time.Second-time.Second {
		t.Errorf("b scaled held %v after a's action, inside the 40 s cooldown a started", gap)
	}
	if ws := s.writesBy("b", "held"); len(ws) == 0 {
		t.Error("the audit log shows no write by b to held")
	}
	s.waitReplicas("quick", "scaled down by b", time.Minute, func(r int32) bool { return r == 1 })
}

// TestSIGTERMedLeaderHandsOverAtOnce: SIGTERM releases the Lease and the
// other replica, watching it, takes it without waiting for its next retry.
func TestSIGTERMedLeaderHandsOverAtOnce(t *testing.T) {
	s := newScenario(t)
	a := s.startReplica("a", false)
	s.waitHolder("a", 30*time.Second)
	s.startReplica("b", false)
	// b has tried once and found the lease held.
	s.poll("b campaigning", 10*time.Second, func() (bool, error) {
		return strings.Contains(env.Logs("autoscaler-"+s.ns+"-b", 50), "Leader is"), nil
	})

	if err := a.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	took := s.waitHolder("b", 20*time.Second).Sub(stopped)
	t.Logf("SIGTERM -> b holds the lease: %.2fs (retry period %v)", took.Seconds(), retryPeriod)
	if took > 3*time.Second {
		t.Errorf("takeover after SIGTERM took %v, want <= 3s", took)
	}
	select {
	case <-a.proc.Done():
		if code := a.proc.ExitCode(); code != 0 {
			t.Errorf("a exited with %d after SIGTERM, want 0", code)
		}
	case <-time.After(15 * time.Second):
		t.Error("a did not exit after SIGTERM")
	}
}

// TestOverwrittenLeaseStopsTheOldLeader: someone else's identity written
// into the Lease makes the leader stop writing at its next renewal and exit
// with code 1 at its renew deadline; the audit log shows no write by it to
// the Deployment after that.
func TestOverwrittenLeaseStopsTheOldLeader(t *testing.T) {
	s := newScenario(t)
	svc := s.demoService("fo-lease")
	s.deployment("ramp", 1, fast("service", "fo-lease", "cooldown", "2s"))
	a := s.startReplica("a", false)
	s.waitHolder("a", 30*time.Second)
	s.load(svc, "steady", 80) // 1 -> 4 in steps, one every 2 s
	s.waitReplicas("ramp", "a's first scale-up", time.Minute, func(r int32) bool { return r > 1 })

	// The leader renews every 2 s: retry if a renewal lands in between.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := client.CoordinationV1().Leases(s.ns).Get(s.ctx, leaseName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		intruder, now := "intruder", metav1.NewMicroTime(time.Now())
		l.Spec.HolderIdentity, l.Spec.RenewTime, l.Spec.AcquireTime = &intruder, &now, &now
		_, err = client.CoordinationV1().Leases(s.ns).Update(s.ctx, l, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	overwritten := time.Now()
	select {
	case <-a.proc.Done():
	case <-time.After(renewDeadline + 3*retryPeriod):
		t.Fatalf("a still runs %v after its lease was overwritten", renewDeadline+3*retryPeriod)
	}
	exited := time.Since(overwritten)
	if code := a.proc.ExitCode(); code != 1 {
		t.Errorf("a exited with %d, want 1", code)
	}
	writes := s.writesBy("a", "ramp")
	if len(writes) == 0 {
		t.Fatal("the audit log shows no write by a at all; the test cannot tell anything")
	}
	last := writes[len(writes)-1]
	t.Logf("lease overwritten; a exited %.2fs later; a's last write to ramp (%s %s) at %+.2fs; replicas %d",
		exited.Seconds(), last.Verb, last.Resource, last.At.Sub(overwritten).Seconds(), s.replicas("ramp"))
	// The bound is the renew deadline; the write fence stops a at
	// its first renewal after the overwrite, one retry period later.
	if late := last.At.Sub(overwritten); late > renewDeadline {
		t.Errorf("a wrote %s %s %v after the overwrite, after its renew deadline %v", last.Verb, last.Resource, late, renewDeadline)
	}
	if late := last.At.Sub(overwritten); late > retryPeriod+time.Second {
		t.Errorf("a wrote %s %s %v after the overwrite, after it must have seen the new holder (retry period %v)", last.Verb, last.Resource, late, retryPeriod)
	}
}

// TestAlertDuringAFailoverReachesTheNewLeader: two replicas behind a
// Service-like proxy (a new backend per connection, round robin). The
// leader is killed and an alert is posted to the real Alertmanager before
// anyone has taken over. Its deliveries fail (dead replica) or get 503 (the
// replica that does not lead yet), Alertmanager retries, and the new leader
// queues the spike evaluation.
func TestAlertDuringAFailoverReachesTheNewLeader(t *testing.T) {
	s := newScenario(t)
	s.deployment("target", 1, fast("interval", "30s"))
	a := s.startReplica("a", true)
	s.waitHolder("a", 30*time.Second)
	b := s.startReplica("b", true)
	serveRoundRobin(t, webhookAddr, a.webhook, b.webhook)

	if err := a.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.proc.Done()
	postAlert(t, map[string]string{"alertname": "RequestRateSpike", "namespace": s.ns, "deployment": "target"})
	if h := s.holder(); h == "b" {
		t.Fatal("b already leads; the alert was not sent during the failover")
	}
	took := s.waitHolder("b", 40*time.Second)
	s.poll("the alert queued on b", time.Minute, func() (bool, error) {
		return b.metric(t, "reactive_autoscaler_webhook_alerts_total", "outcome", "queued") >= 1, nil
	})
	t.Logf("b took over %s; b answered %v webhook calls with 503 before, and queued the alert %.2fs after taking over",
		took.Format("15:04:05.000"), b.metric(t, "reactive_autoscaler_webhook_requests_total", "code", "503"), time.Since(took).Seconds())
}

// serveRoundRobin listens on addr and forwards each connection to the next
// backend, as a Service's kube-proxy would; a dead backend closes the
// client's connection.
func serveRoundRobin(t *testing.T, addr string, backends ...string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var next atomic.Uint32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			backend := backends[int(next.Add(1))%len(backends)]
			go func() {
				defer c.Close()
				u, err := net.DialTimeout("tcp", backend, time.Second)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c) }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
}

// postAlert sends one firing alert to the environment's Alertmanager.
func postAlert(t *testing.T, labels map[string]string) {
	t.Helper()
	postAlertTo(t, env.AlertmanagerURL, labels, time.Now())
}

// postAlertTo sends one firing alert to the Alertmanager at url, as
// Prometheus does (to every Alertmanager it knows).
func postAlertTo(t *testing.T, url string, labels map[string]string, startsAt time.Time) {
	t.Helper()
	body, err := json.Marshal([]map[string]any{{"labels": labels, "startsAt": startsAt.UTC().Format(time.RFC3339)}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("posting the alert: %s %s", resp.Status, msg)
	}
}
