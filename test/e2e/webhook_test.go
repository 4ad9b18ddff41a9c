//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// spikeLatency steps a service from 5 to 150 RPS right after an evaluation
// tick of the autoscaler, and returns the time until replicas are written.
func (s *scenario) spikeLatency(name string, base string) time.Duration {
	s.t.Helper()
	s.load(base, "steady", 5)
	// A baseline for the rule's one-minute window and a first evaluation.
	s.poll("baseline rate", 2*time.Minute, func() (bool, error) {
		v, err := promQuery(`sum(rate(http_requests_total{service="` + name + `"}[30s]))`)
		return err == nil && v > 3, nil
	})
	before := s.evaluations()
	s.poll("an evaluation tick", time.Minute, func() (bool, error) { return s.evaluations() > before, nil })
	changes := s.recordReplicaChanges(name) // a watch: the write's time, not a poll's
	s.load(base, "steady", 150)
	start := time.Now()
	// The watch, not a poll of the API: the poll can see the write before
	// the watch delivers it, so wait for the watch itself.
	var at time.Time
	s.poll("the watch to see the scale-up after the step", 2*time.Minute, func() (bool, error) {
		for _, c := range changes() {
			if c.replicas > 1 {
				at = c.at
				return true, nil
			}
		}
		return false, nil
	})
	return at.Sub(start)
}

// TestSpikeWebhookIsFasterThanTheInterval: the real rule fires, the real
// Alertmanager calls the webhook, replicas are written; the same step with
// no webhook waits for the 30 s interval.
func TestSpikeWebhookIsFasterThanTheInterval(t *testing.T) {
	s := newScenario(t)
	query := `sum(rate(http_requests_total{service="{{.Service}}"}[5s]))`
	hookSvc := s.demoService("spiky")
	s.deployment("spiky", 1, map[string]string{"autoscale.io/reactive": "true", "autoscale.io/query": query}) // 30 s interval
	s.startAutoscaler("--webhook-bind-address", webhookAddr, "--webhook-token-file", tokenFile)
	viaWebhook := s.spikeLatency("spiky", hookSvc)
	s.poll("the SuccessfulRescale event of the spike", 30*time.Second, func() (bool, error) {
		for _, ev := range s.events("spiky", "SuccessfulRescale") {
			if strings.Contains(ev.Message, "spike: ") {
				return true, nil
			}
		}
		return false, nil
	})
	s.scaler.Stop(10 * time.Second)

	intervalSvc := s.demoService("polled")
	s.deployment("polled", 1, map[string]string{"autoscale.io/reactive": "true", "autoscale.io/query": query})
	s.startAutoscaler() // no webhook: the 30 s interval path only
	viaInterval := s.spikeLatency("polled", intervalSvc)

	ratio := viaInterval.Seconds() / viaWebhook.Seconds()
	t.Logf("load step -> replicas written: webhook path %.2fs, 30 s interval path %.2fs, ratio %.1fx",
		viaWebhook.Seconds(), viaInterval.Seconds(), ratio)
	if ratio < 5 {
		t.Errorf("the webhook path is only %.1fx faster than the interval path, want >= 5x", ratio)
	}
}
