package simulate

import (
	"fmt"
	"maps"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// Options configure a comparison.
type Options struct {
	World World
	// Annotations configure ours as on a Deployment (autoscale.io/ keys).
	// Unset: target-rps-per-replica = Capacity x Utilization, max 100
	// replicas (every policy's bound), no predictor (shadow scoring does
	// not change a decision).
	Annotations map[string]string
	// Utilization is the share of a replica's capacity every policy aims
	// to use: the per-replica target of the HPA, KEDA, KPA and ours.
	Utilization float64
	Alerting    Alerting
	// Builtin is the built-in forecaster for the hybrid policy.
	Builtin scaler.Predictor
	// Only, when set, names the policies to run.
	Only []string
	// Recommended are the annotations of the recommended policy, over
	// Annotations (nil: scaler.RecommendedProfile's).
	Recommended map[string]string
}

// The policies' names.
const (
	PolicySeed          = "seed-defaults"
	PolicyRecommended   = "recommended"
	PolicyReactive      = "reactive"
	PolicySpike         = "reactive+spike"
	PolicyHybridBuiltin = "hybrid-builtin"
	PolicyHybridPerfect = "hybrid-perfect"
	PolicyHPA           = "hpa"
	PolicyKEDA          = "keda"
	PolicyKPA           = "kpa"
)

// PolicyNames lists every policy in the order they are reported.
var PolicyNames = []string{PolicyRecommended, PolicySeed, PolicyReactive, PolicySpike, PolicyHybridBuiltin, PolicyHybridPerfect, PolicyHPA, PolicyKEDA, PolicyKPA}

// MaxReplicas bounds every policy in the model.
const MaxReplicas = 100

// Spec returns ours' spec for o: its annotations over the defaults.
func (o Options) Spec(extra map[string]string) (*scaler.Spec, error) {
	ann := map[string]string{
		"autoscale.io/reactive":               "true",
		"autoscale.io/target-rps-per-replica": strconv.FormatFloat(o.World.Capacity*o.Utilization, 'f', -1, 64),
		"autoscale.io/max-replicas":           strconv.Itoa(MaxReplicas),
		"autoscale.io/predictor":              "none",
	}
	if o.Annotations["autoscale.io/thresholds"] != "" {
		delete(ann, "autoscale.io/target-rps-per-replica")
	}
	maps.Copy(ann, o.Annotations)
	maps.Copy(ann, extra)
	return scaler.Parse("simulated", ann, nil)
}

// Policies returns a fresh instance of every policy (they keep state).
func Policies(o Options) ([]Policy, error) {
	spec, err := o.Spec(nil)
	if err != nil {
		return nil, err
	}
	hybrid := map[string]string{"autoscale.io/predictor": "builtin"}
	if o.Annotations["autoscale.io/strategy"] == "" || o.Annotations["autoscale.io/strategy"] == "reactive" {
		hybrid["autoscale.io/strategy"] = "max"
	}
	hybridSpec, err := o.Spec(hybrid)
	if err != nil {
		return nil, err
	}
	seed, err := scaler.Parse("seed", map[string]string{"autoscale.io/reactive": "true", "autoscale.io/predictor": "none"}, nil)
	if err != nil {
		return nil, err
	}
	rec := o.Recommended
	if rec == nil {
		rec = map[string]string{"autoscale.io/profile": "recommended"}
	}
	recSpec, err := o.Spec(rec)
	if err != nil {
		return nil, err
	}
	target := o.World.Capacity * o.Utilization
	alerting := o.Alerting
	all := []Policy{
		&Reactive{Label: PolicyRecommended, Spec: recSpec, RateWindow: time.Minute, Instant: recSpec.FastQuery, Phase: o.World.Phase, Spike: &alerting},
		&Reactive{Label: PolicySeed, Spec: seed, RateWindow: time.Minute, Phase: o.World.Phase},
		&Reactive{Label: PolicyReactive, Spec: spec, RateWindow: time.Minute, Instant: spec.FastQuery, Phase: o.World.Phase},
		&Reactive{Label: PolicySpike, Spec: spec, RateWindow: time.Minute, Instant: spec.FastQuery, Phase: o.World.Phase, Spike: &alerting},
		&Reactive{Label: PolicyHybridBuiltin, Spec: hybridSpec, RateWindow: time.Minute, Phase: o.World.Phase, Spike: &alerting, Predictor: o.Builtin},
		&Reactive{Label: PolicyHybridPerfect, Spec: hybridSpec, RateWindow: time.Minute, Phase: o.World.Phase, Spike: &alerting, Perfect: true},
		// The HPA on a custom metric through prometheus-adapter, whose
		// usual rule is a rate over 2m; KEDA queries Prometheus itself at
		// every HPA sync, here with ours' query (a rate over 1m).
		NewHPA(PolicyHPA, target, 2*time.Minute, o.World.Phase, spec.MinReplicas, spec.MaxReplicas),
		NewHPA(PolicyKEDA, target, time.Minute, o.World.Phase, spec.MinReplicas, spec.MaxReplicas),
		NewKPA(PolicyKPA, target, spec.MinReplicas, spec.MaxReplicas),
	}
	if len(o.Only) == 0 {
		return all, nil
	}
	var out []Policy
	for _, name := range o.Only {
		found := false
		for _, p := range all {
			if p.Name() == name {
				out, found = append(out, p), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown policy %q (one of %v)", name, PolicyNames)
		}
	}
	return out, nil
}

// initial returns o with the world's initial replicas set, when 0, to the
// steady state of trace's first demand at o's cost knob.
func (o Options) initial(trace *Trace) Options {
	if o.World.Initial == 0 {
		o.World.Initial = max(1, int32(math.Ceil(trace.demand(0)/(o.World.Capacity*o.Utilization))))
	}
	return o
}

// Compare runs every policy of o on trace, in parallel.
func Compare(o Options, trace *Trace) ([]Score, error) {
	o = o.initial(trace)
	policies, err := Policies(o)
	if err != nil {
		return nil, err
	}
	trace.filled() // computed once, before the goroutines share it
	scores := make([]Score, len(policies))
	var wg sync.WaitGroup
	for i, p := range policies {
		wg.Go(func() { scores[i] = Run(o.World, trace, p) })
	}
	wg.Wait()
	return scores, nil
}
