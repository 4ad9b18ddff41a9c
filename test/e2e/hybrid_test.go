//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

// TestOverrideFollowsThePredictorProcess: the seed's HybridAutoscaler on
// real parts. At 20 RPS the reactive answer is 2 replicas; the model (the
// stub, a separate process) answers 4, within the override threshold of 2,
// so the Deployment runs 4. Killing the model brings the reactive 2 and a
// PredictorUnavailable Event; starting it again brings back 4.
func TestOverrideFollowsThePredictorProcess(t *testing.T) {
	s := newScenario(t)
	port, err := localenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	startModel := func() *localenv.Proc {
		p, err := env.StartProcess("predictor-"+s.ns, filepath.Join(binDir, "predictor-stub"), nil,
			"--listen", listen, "--mode", "fixed", "--replicas", "4")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop(5 * time.Second) })
		return p
	}
	model := startModel()
	svc := s.demoService("hybrid")
	s.deployment("hybrid", 1, fast("service", "hybrid", "strategy", "override", "predictor", "external"))
	s.startAutoscaler("--predictor-url", "http://"+listen, "--predictor-timeout", "500ms")
	s.load(svc, "steady", 20)

	s.waitReplicas("hybrid", "at the model's 4", time.Minute, func(r int32) bool { return r == 4 })
	s.poll("the override reason", 30*time.Second, func() (bool, error) {
		return s.hasEvent("hybrid", "SuccessfulRescale", "predictive 4 (external) within 2, using predictive"), nil
	})

	if err := model.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-model.Done()
	s.waitReplicas("hybrid", "at the reactive 2 without the model", time.Minute, func(r int32) bool { return r == 2 })
	s.poll("PredictorUnavailable", 30*time.Second, func() (bool, error) {
		return s.hasEvent("hybrid", "PredictorUnavailable", "Predictor external unavailable"), nil
	})
	// Several failing evaluations later, still one (identical Events would
	// be folded into one object with a count, so the count is checked).
	s.afterEvaluations(3)
	n := int32(0)
	for _, ev := range s.events("hybrid", "PredictorUnavailable") {
		n += max(ev.Count, 1)
	}
	if n != 1 {
		t.Errorf("%d PredictorUnavailable events, want 1 (rate-limited to one per 5 min)", n)
	}

	startModel()
	s.waitReplicas("hybrid", "back at the model's 4", time.Minute, func(r int32) bool { return r == 4 })
}

// hasEvent reports whether Deployment name has an Event reason whose
// message contains text.
func (s *scenario) hasEvent(name, reason, text string) bool {
	for _, ev := range s.events(name, reason) {
		if strings.Contains(ev.Message, text) {
			return true
		}
	}
	return false
}
