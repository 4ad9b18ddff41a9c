package watch

import (
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/cycle"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// target is what the controller keeps about one managed Deployment. sync
// holds busy for the whole evaluation, so the periodic and the spike queue
// never evaluate one target at once; Controller.mu guards the map and the
// spike fields.
type target struct {
	busy sync.Mutex

	// cycle is the evaluation state: smoothed rate, cooldown, spike window,
	// the predictors' history and score.
	cycle *cycle.Cycle
	// settings are the autoscale.io/* annotations spec was parsed from.
	settings map[string]string
	spec     *scaler.Spec
	specErr  error
	status   Status    // as last written (or read back at start)
	spike    bool      // a spike evaluation is pending
	spikeAt  time.Time // when the first pending spike trigger was received
	// statusWritten is when the status was last queued for writing (or
	// the target first seen).
	statusWritten time.Time
}

// maxClockSkew is how far ahead of this process' clock another replica's
// status write may be stamped.
const maxClockSkew = time.Minute

// targetLocked returns the target for key, creating it from the Deployment's
// status annotation when this process sees it first, so that a restart or a
// new leader keeps the cooldown the previous one started. c.mu must be held.
func (c *Controller) targetLocked(k string, d workload) *target {
	if t, ok := c.targets[k]; ok {
		return t
	}
	now := c.clock.Now()
	t := &target{statusWritten: now}
	var lastScale time.Time
	if st, ok := parseStatus(d.GetAnnotations()[StatusAnnotation]); ok {
		t.status = st
		if st.LastScaleTime != nil {
			lastScale = st.LastScaleTime.Time
		}
		// The status is ours, but whoever may edit the workload may
		// forge it: a last scale in the future would hold the cooldown
		// for as long as they like. No write of ours is later than now
		// (give clocks a minute), so such a time starts the cooldown now.
		if lastScale.After(now.Add(maxClockSkew)) {
			lastScale = now
			t.status.LastScaleTime = nil
		}
	}
	t.cycle = cycle.New(lastScale)
	c.targets[k] = t
	c.monitor.SetManagedCount(string(c.kind), len(c.targets))
	return t
}

// settings returns the autoscale.io/* annotations that configure a target.
func settings(ann map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range ann {
		if strings.HasPrefix(k, scaler.AnnotationPrefix) && k != StatusAnnotation {
			out[k] = v
		}
	}
	return out
}

func settingsChanged(a, b map[string]string) bool { return !maps.Equal(settings(a), settings(b)) }

// specFor parses the target's settings, reusing the last parse when they
// have not changed. The bool reports a change (new or different settings).
func (c *Controller) specFor(t *target, d workload) (*scaler.Spec, error, bool) {
	s := settings(d.GetAnnotations())
	if t.settings != nil && maps.Equal(s, t.settings) {
		return t.spec, t.specErr, false
	}
	t.settings = s
	t.spec, t.specErr = scaler.Parse(d.GetName(), d.GetAnnotations(), c.defaults)
	if t.specErr == nil {
		if err := t.spec.CheckWorkload(d.GetNamespace(), d.GetName()); err != nil {
			t.spec, t.specErr = nil, err
		}
	}
	if t.specErr == nil {
		if err := c.admit(t.spec, d.GetAnnotations()); err != nil {
			t.spec, t.specErr = nil, err
		}
	}
	return t.spec, t.specErr, true
}
