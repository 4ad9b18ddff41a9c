package simulate

import (
	"math"
	"time"
)

// HPA is the Kubernetes HorizontalPodAutoscaler (autoscaling/v2) on an
// external metric with an AverageValue target, as kube-controller-manager's
// horizontal.go runs it: a sync every 15 s (at Phase after a scrape); no
// change while the usage ratio is within Tolerance of 1; otherwise
// ceil(metric / target); then Behavior: the recommendation is held by the
// scale-up and scale-down stabilization windows
// (stabilizeRecommendationWithBehaviors) and limited by the scaling
// policies (convertDesiredReplicasWithBehaviorRate). Its metric is a
// Prometheus rate, or irate, over Window. The down window starts with the
// current count, as maybeInitScaleDownStabilizationWindow does for an HPA
// that has no recommendation yet.
type HPA struct {
	Label     string
	Target    float64 // metric per replica (AverageValue)
	Window    time.Duration
	Instant   bool // the metric is an irate, not a rate
	Sync      time.Duration
	Phase     time.Duration // first sync; then every Sync
	Tolerance float64
	Behavior  Behavior
	Min, Max  int32

	recs []rec
}

// Behavior is what an HPA's spec.behavior (and, since Kubernetes 1.33, its
// per-HPA tolerance) lets a user set, with every policy period one sync
// (15 s): the scale-up limit per sync is the larger of UpPercent % more
// and UpPods more; the scale-down limit per sync is DownPercent % fewer.
type Behavior struct {
	// Unset: spec.behavior is not set, and horizontal.go takes its older
	// path (normalizeDesiredReplicas): the 300 s down window of the
	// controller's flag, and a scale-up limit of max(2 x current, 4)
	// (calculateScaleUpLimit); the other fields are ignored.
	Unset                              bool
	UpStabilization, DownStabilization time.Duration
	UpPercent                          float64
	UpPods                             int32
	DownPercent                        float64
}

// DefaultBehavior is an HPA without spec.behavior (what KEDA creates
// unless told otherwise).
var DefaultBehavior = Behavior{Unset: true, DownStabilization: 300 * time.Second}

// TunedHPA is the best configuration the HPA's behavior, tolerance and
// query allow, chosen by benchquality -tune-peers on the same traces and
// scrape as the recommended profile (one configuration for every trace),
// at ours' cost over knobs 0.3 to 0.95. The search (504 configurations:
// irate[1m], rate[1m] or rate[2m]; tolerance 0, 0.05, 0.1 or 0.2;
// scale-up by 100, 300 or 1000 % or 4 pods per 15 s; a scale-down window
// of 0, 30, 60, 120, 300 s, 20 min or 1 h, the API's longest; scale-down
// by at most 100 or 50 % per 15 s) chose the irate, a 5 % tolerance, no
// down window, up by 300 % and down by at most half per 15 s: follow the
// load closely at ours' cost. (At the default HPA's cost over knobs 0.4
// to 0.9 it had chosen the hour-long down window, which scores 1.14
// worse here, the product of its unserved over the nine traces 3.1 times
// higher: holding an hour's peak is what ours' cost cannot afford.)
var TunedHPA = HPAConfig{Window: time.Minute, Instant: true, Tolerance: 0.05,
	Behavior: Behavior{UpPercent: 300, UpPods: 4, DownPercent: 50}}

// HPAConfig is what a user chooses of an HPA: its query and behavior.
type HPAConfig struct {
	Window    time.Duration
	Instant   bool
	Tolerance float64
	Behavior  Behavior
}

type rec struct {
	at       time.Duration
	replicas int32
}

// NewHPA returns an HPA with the defaults of kube-controller-manager and
// no behavior, on a Prometheus rate over window, syncing at phase after a
// scrape.
func NewHPA(label string, target float64, window, phase time.Duration, minR, maxR int32) *HPA {
	return NewHPAWith(label, target, HPAConfig{Window: window, Tolerance: 0.1, Behavior: DefaultBehavior}, phase, minR, maxR)
}

// NewHPAWith returns an HPA configured as c.
func NewHPAWith(label string, target float64, c HPAConfig, phase time.Duration, minR, maxR int32) *HPA {
	return &HPA{Label: label, Target: target, Window: c.Window, Instant: c.Instant, Sync: 15 * time.Second, Phase: phase,
		Tolerance: c.Tolerance, Behavior: c.Behavior, Min: minR, Max: maxR}
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
	if h.Instant {
		metric = v.IRate(h.Window)
	}
	if math.IsNaN(metric) {
		return current // no metric: the HPA does not scale
	}
	return h.Recommend(now, current, metric)
}

// Recommend is one sync: the replicas for metric (total) at current.
func (h *HPA) Recommend(now time.Duration, current int32, metric float64) int32 {
	if h.recs == nil {
		h.recs = []rec{{now, current}} // maybeInitScaleDownStabilizationWindow
	}
	desired := current
	ratio := metric / (h.Target * float64(current))
	if math.Abs(ratio-1) > h.Tolerance {
		desired = int32(math.Ceil(metric / h.Target))
	}
	desired = min(max(desired, h.Min), h.Max)
	b := h.Behavior
	// stabilizeRecommendationWithBehaviors: up to the lowest
	// recommendation of the up window, down to the highest of the down
	// window.
	up, down := desired, desired
	keep := h.recs[:0]
	for _, r := range h.recs {
		if r.at > now-max(b.UpStabilization, b.DownStabilization) {
			keep = append(keep, r)
		}
		if r.at > now-b.UpStabilization {
			up = min(up, r.replicas)
		}
		if r.at > now-b.DownStabilization {
			down = max(down, r.replicas)
		}
	}
	h.recs = append(keep, rec{now, desired})
	stable := current
	stable = max(stable, up)
	stable = min(stable, down)
	// convertDesiredReplicasWithBehaviorRate, every period one sync.
	switch {
	case b.Unset && stable > current:
		stable = min(stable, max(2*current, 4))
	case b.Unset:
	case stable > current:
		limit := max(int32(math.Ceil(float64(current)*(1+b.UpPercent/100))), current+b.UpPods)
		stable = min(stable, limit)
	case stable < current:
		limit := int32(float64(current) * (1 - b.DownPercent/100))
		stable = max(stable, limit)
	}
	return min(max(stable, h.Min), h.Max)
}

// periodic reports whether a loop that first runs at phase and then every
// period runs at now.
func periodic(now, phase, period time.Duration) bool {
	return now >= phase && (now-phase)%period == 0
}

// KPA is Knative's autoscaler (pkg/autoscaler/scaling/autoscaler.go) in
// its documented defaults: a tick every 2 s (at 0, 2, 4 s...); the desired
// count from the mean load over a 60 s stable window and a 6 s panic
// window, each bounded below by half the ready pods (max scale-down rate
// 2) and above by 1000 times them; panic starts when the panic window
// wants 200 % of the ready pods and ends once 60 s have passed since that
// last held; in panic the count is the highest of the stable and panic
// counts seen since panic began (it never scales down). It starts in
// panic at its initial count when that is above 1, as a new autoscaler
// does to keep the scale until it has data. It reads the pods' load
// itself every second (no Prometheus; a Prometheus outage does not blind
// it), so its newest data is a second old. Target is the per-replica load
// it aims for: capacity x target utilization (Knative's default
// container-concurrency-target-percentage is 70 %; the comparison gives
// every policy the same share, see Options.Utilization).
type KPA struct {
	Label          string
	Target         float64
	Stable, Panic  time.Duration
	PanicThreshold float64
	Tick           time.Duration
	MaxScaleDown   float64
	MaxScaleUp     float64
	ScaleDownDelay time.Duration
	// Weighted averages both windows as the weightedExponential metric
	// aggregation algorithm does (DirectWeighted), not evenly.
	Weighted bool
	Min, Max int32

	delayed    []rec // the counts of the scale-down delay that may be its highest
	started    bool
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

// KPAConfig is what a user chooses of the KPA (config-autoscaler or the
// revision's annotations): its stable window (6 s to 1 h), the panic
// window as a percentage of it (1 to 100; at least 1 s), the panic
// threshold (a share of the ready pods, 1.1 to 10), the max scale-down
// rate (above 1) and the scale-down delay (0 to 1 h: a scale-down goes no
// lower than the highest count decided over it); and the metric
// aggregation algorithm (autoscaling.knative.dev/metric-aggregation-algorithm:
// linear, the default, or weightedExponential).
type KPAConfig struct {
	Stable         time.Duration
	PanicPercent   float64
	PanicThreshold float64
	MaxScaleDown   float64
	ScaleDownDelay time.Duration
	Weighted       bool
}

// DefaultKPA is Knative's default configuration.
var DefaultKPA = KPAConfig{Stable: 60 * time.Second, PanicPercent: 10, PanicThreshold: 2, MaxScaleDown: 2}

// TunedKPA is the best KPAConfig for the traces in testdata/traces, found
// by benchquality -tune-kpa with TunedHPA's criterion (at ours' cost over
// knobs 0.3 to 0.95) among 864 configurations (a stable window of 10 s,
// 30 s, 1 or 2 min; a panic window of 5, 10 or 20 % of it; panic at 110,
// 150 or 200 %; a scale-down rate of 1.25 or 2; a scale-down delay of 0,
// 1, 5, 10, 20 min or 1 h; linear or weightedExponential aggregation): a
// 30 s weightedExponential window, panic at 110 %, rate 1.25 and a
// minute's delay (score 48.37; at the default KPA's cost it had chosen a
// 10 s linear window and an hour's delay).
var TunedKPA = KPAConfig{Stable: 30 * time.Second, PanicPercent: 5, PanicThreshold: 1.1, MaxScaleDown: 1.25, ScaleDownDelay: time.Minute, Weighted: true}

// NewKPA returns the default KPA with target load per replica.
func NewKPA(label string, target float64, minR, maxR int32) *KPA {
	return NewKPAWith(label, target, DefaultKPA, minR, maxR)
}

// NewKPAWith returns a KPA configured by c.
func NewKPAWith(label string, target float64, c KPAConfig, minR, maxR int32) *KPA {
	// Knative's MakeMetric keeps the panic window at least one bucket (1 s);
	// its collector keeps a window in whole one-second buckets, rounded up
	// (a 1.5 s window averages 2 s), as Knative's own decider showed
	// (hack/tools/kpa).
	panicWindow := max(time.Second, time.Duration(math.Ceil(c.Stable.Seconds()*c.PanicPercent/100))*time.Second)
	return &KPA{Label: label, Target: target, Stable: c.Stable, Panic: panicWindow,
		PanicThreshold: c.PanicThreshold, Tick: 2 * time.Second, MaxScaleDown: c.MaxScaleDown, MaxScaleUp: 1000,
		ScaleDownDelay: c.ScaleDownDelay, Weighted: c.Weighted, Min: minR, Max: maxR}
}

// Name implements Policy.
func (k *KPA) Name() string { return k.Label }

// Step implements Policy.
func (k *KPA) Step(now time.Duration, v *View) int32 {
	current := v.Current()
	if !periodic(now, 0, k.Tick) {
		return current
	}
	if !k.started {
		k.started = true
		if current > 1 {
			k.panicking, k.panicSince, k.maxPanic = true, now, current
		}
	}
	// The last whole second of scrapes.
	stable, panicLoad := v.Direct(k.Stable, time.Second), v.Direct(k.Panic, time.Second)
	if k.Weighted {
		stable, panicLoad = v.DirectWeighted(k.Stable, time.Second), v.DirectWeighted(k.Panic, time.Second)
	}
	return k.Recommend(now, current, v.Ready(), stable, panicLoad)
}

// Recommend is one tick with the stable and panic window loads.
func (k *KPA) Recommend(now time.Duration, current, ready int32, stableLoad, panicLoad float64) int32 {
	readyF := math.Max(1, float64(ready))
	lo, hi := math.Floor(readyF/k.MaxScaleDown), math.Ceil(k.MaxScaleUp*readyF)
	dspc, dppc := math.Ceil(stableLoad/k.Target), math.Ceil(panicLoad/k.Target)
	desiredStable := int32(math.Min(math.Max(dspc, lo), hi))
	desiredPanic := int32(math.Min(math.Max(dppc, lo), hi))
	over := dppc/readyF >= k.PanicThreshold
	switch {
	case over && !k.panicking:
		k.panicking, k.panicSince = true, now
		k.Panicked = append(k.Panicked, PanicChange{now, true})
	case over:
		k.panicSince = now
	case k.panicking && now-k.panicSince > k.Stable:
		k.panicking, k.maxPanic = false, 0
		k.Panicked = append(k.Panicked, PanicChange{now, false})
	}
	desired := desiredStable
	if k.panicking {
		desired = max(desired, desiredPanic)
		k.maxPanic = max(k.maxPanic, desired) // never down in panic
		desired = k.maxPanic
	}
	if k.ScaleDownDelay > 0 {
		// As the autoscaler's delay window: the highest count of the last
		// ScaleDownDelay, this one included. delayed holds the counts that
		// may still be the highest, decreasing, so the first is (an hour
		// of 2 s ticks would otherwise be scanned at every tick).
		for len(k.delayed) > 0 && k.delayed[len(k.delayed)-1].replicas <= desired {
			k.delayed = k.delayed[:len(k.delayed)-1]
		}
		k.delayed = append(k.delayed, rec{at: now, replicas: desired})
		for k.delayed[0].at <= now-k.ScaleDownDelay {
			k.delayed = k.delayed[1:]
		}
		desired = k.delayed[0].replicas
	}
	return min(max(desired, k.Min), k.Max)
}
