//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// TestScaleUpUnderLoadAndDownAfter is the seed's walkthrough on real parts:
// load makes the controller scale up through the table, stopping it scales
// back down, and no two scale actions are closer than the cooldown.
func TestScaleUpUnderLoadAndDownAfter(t *testing.T) {
	s := newScenario(t)
	svc := s.demoService("walk")
	s.deployment("walk", 1, fast())
	changes := s.recordReplicaChanges("walk")
	s.startAutoscaler()

	s.load(svc, "steady", 80) // seed table: 80 RPS needs 4 replicas
	s.waitReplicas("walk", "scaled up to 4", 90*time.Second, func(r int32) bool { return r == 4 })
	s.poll("pods Running", time.Minute, func() (bool, error) { return s.get("walk").Status.ReadyReplicas == 4, nil })

	s.load(svc, "stop", 0)
	s.waitReplicas("walk", "scaled down to 1", 90*time.Second, func(r int32) bool { return r == 1 })

	got := changes()
	t.Logf("replica changes: %v", got)
	if len(got) < 3 {
		t.Fatalf("want at least an up and a down step after the initial count, got %v", got)
	}
	for i := 2; i < len(got); i++ {
		// 4 s cooldown, 2 s interval: without the cooldown two actions would
		// be 2 s apart. The watch adds latency to both ends; allow 1 s.
		if gap := got[i].at.Sub(got[i-1].at); gap < 3*time.Second {
			t.Errorf("scale actions %v and %v only %v apart (cooldown 4s)", got[i-1], got[i], gap)
		}
	}
	s.poll("SuccessfulRescale events", 30*time.Second, func() (bool, error) {
		ev := s.events("walk", "SuccessfulRescale")
		return len(ev) > 0 && strings.Contains(ev[0].Message, "New size: "), nil
	})
	if st := s.get("walk").Annotations["autoscale.io/status"]; !strings.Contains(st, `"dataHealth":"ok"`) || !strings.Contains(st, `"lastScaleTime"`) {
		t.Errorf("status annotation = %s", st)
	}
}

// TestUnannotatedDeploymentIsNeverTouched: a Deployment without the
// annotation, whose service is under the same load, keeps its replicas and
// gets no write from the controller while an annotated one is scaled.
func TestUnannotatedDeploymentIsNeverTouched(t *testing.T) {
	s := newScenario(t)
	svc := s.demoService("managed")
	s.deployment("managed", 1, fast("service", "managed"))
	s.deployment("plain", 1, map[string]string{"autoscale.io/service": "managed"}) // same traffic, not opted in
	s.startAutoscaler()
	s.load(svc, "steady", 45)
	s.waitReplicas("managed", "scaled up", 90*time.Second, func(r int32) bool { return r >= 2 })
	s.afterEvaluations(3)
	d := s.get("plain")
	if *d.Spec.Replicas != 1 || d.Annotations["autoscale.io/status"] != "" {
		t.Errorf("unannotated Deployment touched: replicas %d, annotations %v", *d.Spec.Replicas, d.Annotations)
	}
	for _, mf := range d.ManagedFields {
		if mf.Manager == "reactive-autoscaler" {
			t.Errorf("the controller wrote to the unannotated Deployment: %+v", mf)
		}
	}
	if ev := s.events("plain", "SuccessfulRescale"); len(ev) != 0 {
		t.Errorf("events on the unannotated Deployment: %v", ev)
	}
}

// TestPrometheusOutageNeverScalesDown stops Prometheus while the load drops
// to zero: the controller holds and warns, and scales down once data is back.
func TestPrometheusOutageNeverScalesDown(t *testing.T) {
	s := newScenario(t)
	svc := s.demoService("outage")
	s.deployment("outage", 1, fast())
	s.startAutoscaler()
	s.load(svc, "steady", 45)
	s.waitReplicas("outage", "scaled up to 3", 90*time.Second, func(r int32) bool { return r == 3 })

	env.StopPrometheus()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = env.StartPrometheus(s.ctx)
		}
	})
	s.load(svc, "stop", 0)
	s.poll("FailedGetMetrics event", time.Minute, func() (bool, error) { return len(s.events("outage", "FailedGetMetrics")) > 0, nil })
	s.afterEvaluations(4) // 8 s without data, twice the cooldown
	if r := s.replicas("outage"); r != 3 {
		t.Fatalf("replicas = %d during the Prometheus outage, want 3 held", r)
	}
	if st := s.get("outage").Annotations["autoscale.io/status"]; !strings.Contains(st, `"dataHealth":"no data`) {
		t.Errorf("status does not report the outage: %s", st)
	}

	if err := env.StartPrometheus(s.ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	s.waitReplicas("outage", "scaled down after Prometheus returned", 2*time.Minute, func(r int32) bool { return r == 1 })
}

// TestRemovingTheAnnotationStopsManagement: once the annotation is gone the
// controller leaves the Deployment alone, though its load would scale it.
func TestRemovingTheAnnotationStopsManagement(t *testing.T) {
	s := newScenario(t)
	svc := s.demoService("released")
	canary := s.demoService("canary")
	s.deployment("released", 1, fast())
	s.deployment("canary", 1, fast())
	s.startAutoscaler()
	s.load(svc, "steady", 45)
	s.load(canary, "steady", 5)
	s.waitReplicas("released", "scaled up to 3", 90*time.Second, func(r int32) bool { return r == 3 })

	// The Deployment controller and ours write the object too: retry on 409.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := s.get("released")
		delete(d.Annotations, "autoscale.io/reactive")
		_, err := client.AppsV1().Deployments(s.ns).Update(s.ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s.load(svc, "stop", 0) // would scale down to 1 if still managed
	s.afterEvaluations(5)  // the canary keeps the controller evaluating
	if r := s.replicas("released"); r != 3 {
		t.Errorf("replicas = %d after the annotation was removed, want 3 untouched", r)
	}
}

// TestAPersonsKubectlScaleIsRespected: after `kubectl scale`, the controller
// takes the person's count as the current one and decides from it.
func TestAPersonsKubectlScaleIsRespected(t *testing.T) {
	s := newScenario(t)
	svc := s.demoService("manual")
	// Wide rows: 40 RPS holds at 2, 3 or 4 replicas.
	s.deployment("manual", 1, fast("thresholds", "1:10/0,2:1000/5,3:2000/6,4:inf/7"))
	s.startAutoscaler()
	s.load(svc, "steady", 40)
	s.waitReplicas("manual", "scaled up to 2", 90*time.Second, func(r int32) bool { return r == 2 })

	out, err := exec.Command(filepath.Join(binDir, "kubectl"), "--kubeconfig", env.Kubeconfig, "-n", s.ns, "scale", "deployment/manual", "--replicas=4").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl scale: %v: %s", err, out)
	}
	s.afterEvaluations(4)
	if r := s.replicas("manual"); r != 4 {
		t.Fatalf("replicas = %d; the person's 4 was overridden", r)
	}
	// Decisions now start from 4: with the load gone, the scale-down says so.
	s.load(svc, "stop", 0)
	s.waitReplicas("manual", "scaled down from 4", 90*time.Second, func(r int32) bool { return r == 1 })
	// Events are recorded asynchronously: wait for the one of this decision.
	s.poll("a scale-down Event decided from the person's 4 replicas", 30*time.Second, func() (bool, error) {
		for _, ev := range s.events("manual", "SuccessfulRescale") {
			if strings.Contains(ev.Message, "New size: 1;") && strings.Contains(ev.Message, "at 4 replicas") {
				return true, nil
			}
		}
		return false, nil
	})
}

// TestASizedDeploymentReachesMaxReplicasAndAnUnsizedOneIsWarned: the
// annotations a new user writes (opt-in, max-replicas 20 and the one
// sizing input) reach 20 under enough load; max-replicas 20 on the seed
// table, which stops at 5, gets the TableBelowMax Warning instead of
// silence.
func TestASizedDeploymentReachesMaxReplicasAndAnUnsizedOneIsWarned(t *testing.T) {
	s := newScenario(t)
	svc := s.demoService("sized")
	s.deployment("sized", 1, fast("max-replicas", "20", "target-rps-per-replica", "20"))
	s.deployment("unsized", 1, fast("max-replicas", "20", "service", "sized"))
	s.startAutoscaler()

	s.load(svc, "steady", 500) // 25 replicas' worth at 20 RPS each: max-replicas holds it at 20
	s.waitReplicas("sized", "at max-replicas 20", 90*time.Second, func(r int32) bool { return r == 20 })
	s.waitReplicas("unsized", "at the seed table's end", 30*time.Second, func(r int32) bool { return r == 5 })
	s.poll("TableBelowMax event on the unsized Deployment", 30*time.Second, func() (bool, error) {
		ev := s.events("unsized", "TableBelowMax")
		return len(ev) > 0 && ev[0].Type == "Warning" && strings.Contains(ev[0].Message, "autoscale.io/target-rps-per-replica"), nil
	})
	if ev := s.events("sized", "TableBelowMax"); len(ev) != 0 {
		t.Errorf("the sized Deployment was warned: %s", ev[0].Message)
	}
	if st := s.get("unsized").Annotations["autoscale.io/status"]; !strings.Contains(st, "never asks for more than 5 replicas") {
		t.Errorf("unsized status = %s, want the warning", st)
	}

	// What a user sees: the binary as a kubectl plugin (make
	// kubectl-plugin installs it so), on the real API server.
	plugins := t.TempDir()
	if err := os.Symlink(filepath.Join(binDir, "reactive-autoscaler"), filepath.Join(plugins, "kubectl-reactive_autoscaler")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "kubectl"), "reactive-autoscaler", "status", "-n", s.ns, "-o", "json")
	cmd.Env = append(os.Environ(), "PATH="+plugins+":"+os.Getenv("PATH"), "KUBECONFIG="+env.Kubeconfig)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl reactive-autoscaler status: %v\n%s", err, out)
	}
	var doc struct {
		Items []struct {
			Name     string   `json:"name"`
			Replicas int32    `json:"replicas"`
			State    string   `json:"state"`
			RPS      *float64 `json:"rps"`
		} `json:"items"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	states := map[string]string{}
	for _, it := range doc.Items {
		states[it.Name] = it.State
		if it.Name == "sized" && (it.Replicas != 20 || it.RPS == nil || *it.RPS < 400) {
			t.Errorf("sized in status: %d replicas, rate %v; want 20 at about 500 RPS", it.Replicas, it.RPS)
		}
	}
	if states["sized"] != "ok" || states["unsized"] != "warning" {
		t.Errorf("states %v, want sized ok and unsized warning:\n%s", states, out)
	}
}
