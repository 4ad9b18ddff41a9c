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
	// replicas (every policy's bound), no predictor unless a profile
	// chooses one (shadow scoring does not change a decision).
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
	// TunedHPA, when set, configures hpa-tuned and keda-tuned (nil:
	// TunedHPA; benchquality's search sets candidates).
	TunedHPA *HPAConfig
	// TunedKPA, when set, configures kpa-tuned (nil: TunedKPA).
	TunedKPA *KPAConfig
}

func (o Options) tunedHPA() HPAConfig {
	if o.TunedHPA != nil {
		return *o.TunedHPA
	}
	return TunedHPA
}

func (o Options) tunedKPA() KPAConfig {
	if o.TunedKPA != nil {
		return *o.TunedKPA
	}
	return TunedKPA
}

// The policies' names.
const (
	PolicySeed          = "seed-defaults"
	PolicyRecommended   = "recommended"
	PolicyReactive      = "reactive"
	PolicySpike         = "reactive+spike"
	PolicyHybridBuiltin = "hybrid-builtin"
	// PolicyRecommendedReactive is the recommended profile without its
	// forecast (predictor none): what the forecast adds is the difference.
	PolicyRecommendedReactive = "recommended-reactive"
	// PolicyOracle is the recommended profile told the true peak demand
	// over a replica's start-up plus one interval (strategy max): the most
	// a forecast could add.
	PolicyOracle    = "oracle"
	PolicyHPA       = "hpa"
	PolicyKEDA      = "keda"
	PolicyHPATuned  = "hpa-tuned"
	PolicyKEDATuned = "keda-tuned"
	PolicyKPA       = "kpa"
	PolicyKPATuned  = "kpa-tuned"
)

// PolicyNames lists every policy in the order they are reported.
var PolicyNames = []string{PolicyRecommended, PolicyRecommendedReactive, PolicyOracle, PolicySeed, PolicyReactive, PolicySpike, PolicyHybridBuiltin,
	PolicyHPA, PolicyKEDA, PolicyHPATuned, PolicyKEDATuned, PolicyKPA, PolicyKPATuned}

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
	if _, profile := extra["autoscale.io/profile"]; profile {
		delete(ann, "autoscale.io/predictor") // the profile's own, unless set
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
	recReactive, err := o.Spec(withAnnotations(rec, map[string]string{"autoscale.io/predictor": "none", "autoscale.io/strategy": "reactive"}))
	if err != nil {
		return nil, err
	}
	oracleSpec, err := o.Spec(withAnnotations(rec, map[string]string{"autoscale.io/predictor": "external", "autoscale.io/strategy": "max",
		"autoscale.io/predictive-horizon": (o.World.Startup + recSpec.Interval).String()}))
	if err != nil {
		return nil, err
	}
	target := o.World.Capacity * o.Utilization
	alerting := o.Alerting
	all := []Policy{
		&Ours{Label: PolicyRecommended, Spec: recSpec, RateWindow: time.Minute, Instant: recSpec.Instant, Phase: o.World.Phase, Spike: &alerting, Predictor: o.Builtin},
		&Ours{Label: PolicyRecommendedReactive, Spec: recReactive, RateWindow: time.Minute, Instant: recSpec.Instant, Phase: o.World.Phase, Spike: &alerting},
		&Ours{Label: PolicyOracle, Spec: oracleSpec, RateWindow: time.Minute, Instant: recSpec.Instant, Phase: o.World.Phase, Spike: &alerting, Oracle: true},
		&Ours{Label: PolicySeed, Spec: seed, RateWindow: time.Minute, Phase: o.World.Phase},
		&Ours{Label: PolicyReactive, Spec: spec, RateWindow: time.Minute, Instant: spec.Instant, Phase: o.World.Phase},
		&Ours{Label: PolicySpike, Spec: spec, RateWindow: time.Minute, Instant: spec.Instant, Phase: o.World.Phase, Spike: &alerting},
		&Ours{Label: PolicyHybridBuiltin, Spec: hybridSpec, RateWindow: time.Minute, Phase: o.World.Phase, Spike: &alerting, Predictor: o.Builtin},
		// The HPA on a custom metric through prometheus-adapter, whose
		// usual rule is a rate over 2m. KEDA runs whatever PromQL it is
		// given at every HPA sync: here the recommended profile's query
		// (an irate over 1m), the one it is compared with.
		NewHPA(PolicyHPA, target, 2*time.Minute, o.World.Phase, spec.MinReplicas, spec.MaxReplicas),
		NewHPAWith(PolicyKEDA, target, HPAConfig{Window: time.Minute, Instant: recSpec.Instant, Tolerance: 0.1, Behavior: DefaultBehavior},
			o.World.Phase, spec.MinReplicas, spec.MaxReplicas),
		// Both tuned: the best behavior, tolerance and query (TunedHPA).
		// KEDA feeds the HPA's own algorithm, so with the same choices
		// they decide alike; both are reported so that neither is missed.
		NewHPAWith(PolicyHPATuned, target, o.tunedHPA(), o.World.Phase, spec.MinReplicas, spec.MaxReplicas),
		NewHPAWith(PolicyKEDATuned, target, o.tunedHPA(), o.World.Phase, spec.MinReplicas, spec.MaxReplicas),
		NewKPA(PolicyKPA, target, spec.MinReplicas, spec.MaxReplicas),
		// The KPA at the best configuration its settings allow (TunedKPA).
		NewKPAWith(PolicyKPATuned, target, o.tunedKPA(), spec.MinReplicas, spec.MaxReplicas),
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

// withAnnotations returns a copy of base with extra over it.
func withAnnotations(base, extra map[string]string) map[string]string {
	out := maps.Clone(base)
	maps.Copy(out, extra)
	return out
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
