package simulate

import (
	"math"
	"time"
)

// HPA is the Kubernetes HorizontalPodAutoscaler (autoscaling/v2) on an
// external metric with an AverageValue target and no behavior set (what
// KEDA creates unless told otherwise), as kube-controller-manager's
// horizontal.go runs it: a sync every 15 s (at Phase after a scrape); no
// change while the usage ratio is within 10 % of 1; the recommendation is
// the highest of the last 300 s (downscale stabilization); a scale-up goes
// to at most max(2 x current, 4) per sync (calculateScaleUpLimit). Its
// metric is a Prometheus rate over Window.
type HPA struct {
	Label         string
	Target        float64 // metric per replica (AverageValue)
	Window        time.Duration
	Sync          time.Duration
	Phase         time.Duration // first sync; then every Sync
	Tolerance     float64
	Stabilization time.Duration
	Min, Max      int32

	recs []rec
}

type rec struct {
	at       time.Duration
	replicas int32
}

// NewHPA returns the default HPA on a Prometheus rate over window, syncing
// at phase after a scrape.
func NewHPA(label string, target float64, window, phase time.Duration, minR, maxR int32) *HPA {
	return &HPA{Label: label, Target: target, Window: window, Sync: 15 * time.Second, Phase: phase, Tolerance: 0.1,
		Stabilization: 300 * time.Second, Min: minR, Max: maxR}
}

// Name implements Policy.
func (h *HPA) Name() string { return h.Label }

// Step implements Policy.
func (h *HPA) Step(now time.Duration, v *View) int32 {
	current := v.Current()
	if !periodic(now, h.Phase, h.Sync) {
		return current
	}
	metric := v.Rate(h.Window)
	if math.IsNaN(metric) {
		return current // no metric: the HPA does not scale
	}
	return h.Recommend(now, current, metric)
}

// Recommend is one sync: the replicas for metric (total) at current.
func (h *HPA) Recommend(now time.Duration, current int32, metric float64) int32 {
	desired := current
	ratio := metric / (h.Target * float64(current))
	if math.Abs(ratio-1) > h.Tolerance {
		desired = int32(math.Ceil(metric / h.Target))
	}
	desired = min(max(desired, h.Min), h.Max)
	// Stabilization: the highest recommendation within the window.
	h.recs = append(h.recs, rec{now, desired})
	for len(h.recs) > 0 && h.recs[0].at <= now-h.Stabilization {
		h.recs = h.recs[1:]
	}
	stable := desired
	for _, r := range h.recs {
		stable = max(stable, r.replicas)
	}
	if stable > current {
		// calculateScaleUpLimit: max(scaleUpLimitFactor x current,
		// scaleUpLimitMinimum), 2 and 4.
		stable = min(stable, max(2*current, 4))
	}
	return min(max(stable, h.Min), h.Max)
}

// periodic reports whether a loop that first runs at phase and then every
// period runs at now.
func periodic(now, phase, period time.Duration) bool {
	return now >= phase && (now-phase)%period == 0
}

// KPA is Knative's autoscaler in its documented defaults: a tick every 2 s
// (at 0, 2, 4 s...: it reads its pods itself, so the scrape phase does not
// apply);
// the desired count from the mean load over a 60 s stable window, or over
// a 6 s panic window while panicking; panic starts when the panic window
// wants 200 % of the ready pods and ends 60 s after that last held; in
// panic it never scales down; scale-down at most halves per tick. It reads
// the pods' load directly (no Prometheus scrape). Target is the per-replica
// load it aims for: capacity x target utilization (Knative's default
// container-concurrency-target-percentage is 70 %; the comparison gives
// every policy the same share, see Options.Utilization).
type KPA struct {
	Label          string
	Target         float64
	Stable, Panic  time.Duration
	PanicThreshold float64
	Tick           time.Duration
	MaxScaleDown   float64
	Min, Max       int32

	panicking  bool
	panicSince time.Duration // last time the panic condition held
	maxPanic   int32
	// Panicked records (time, entering) for every panic-mode change (tests).
	Panicked []PanicChange
}

// PanicChange is KPA entering (true) or leaving (false) panic mode.
type PanicChange struct {
	At    time.Duration
	Enter bool
}

// NewKPA returns the default KPA with target load per replica.
func NewKPA(label string, target float64, minR, maxR int32) *KPA {
	return &KPA{Label: label, Target: target, Stable: 60 * time.Second, Panic: 6 * time.Second, PanicThreshold: 2,
		Tick: 2 * time.Second, MaxScaleDown: 2, Min: minR, Max: maxR}
}

// Name implements Policy.
func (k *KPA) Name() string { return k.Label }

// Step implements Policy.
func (k *KPA) Step(now time.Duration, v *View) int32 {
	current := v.Current()
	if !periodic(now, 0, k.Tick) {
		return current
	}
	stable, panicLoad := v.Direct(k.Stable), v.Direct(k.Panic)
	if math.IsNaN(stable) || math.IsNaN(panicLoad) {
		return current
	}
	return k.Recommend(now, current, v.Ready(), stable, panicLoad)
}

// Recommend is one tick with the stable and panic window loads.
func (k *KPA) Recommend(now time.Duration, current, ready int32, stableLoad, panicLoad float64) int32 {
	desiredStable := int32(math.Ceil(stableLoad / k.Target))
	desiredPanic := int32(math.Ceil(panicLoad / k.Target))
	over := float64(desiredPanic)/float64(max(ready, 1)) >= k.PanicThreshold
	switch {
	case over && !k.panicking:
		k.panicking, k.panicSince, k.maxPanic = true, now, current
		k.Panicked = append(k.Panicked, PanicChange{now, true})
	case over:
		k.panicSince = now
	case k.panicking && now-k.panicSince >= k.Stable:
		k.panicking, k.maxPanic = false, 0
		k.Panicked = append(k.Panicked, PanicChange{now, false})
	}
	desired := desiredStable
	if k.panicking {
		desired = max(desiredPanic, k.maxPanic) // never down in panic
		k.maxPanic = desired
	}
	desired = max(desired, int32(math.Floor(float64(ready)/k.MaxScaleDown)))
	return min(max(desired, k.Min), k.Max)
}
