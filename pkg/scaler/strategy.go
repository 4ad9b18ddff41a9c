package scaler

import (
	"fmt"
	"math"
	"time"
)

// combine merges the reactive recommendation (already bounded) with the
// predictive input according to spec.Strategy (docs/REFERENCE.md section 4). A failed
// predictor falls back to the reactive answer, which keeps reacting to
// spikes, rather than to the current count. The reason names both inputs.
func combine(now time.Time, spec *Spec, current, reactive int32, reactiveReason string, p *Prediction) (int32, string) {
	if spec.Strategy == StrategyReactive {
		// Shadow mode: the prediction is only scored (metrics, status); the
		// decision and its reason are the reactive ones.
		return reactive, reactiveReason
	}
	if p.Err != nil {
		return reactive, fmt.Sprintf("%s; predictor unavailable (%v), using reactive %d", reactiveReason, p.Err, reactive)
	}
	pred := p.replicas(spec, current)
	both := fmt.Sprintf("reactive %d, %s", reactive, p.describe(spec, pred))
	var r int32
	var why string
	switch spec.Strategy {
	case StrategyOverride:
		if diff := reactive - pred; diff > spec.OverrideThreshold || -diff > spec.OverrideThreshold {
			r, why = reactive, fmt.Sprintf("override: %s differ by more than %d, using reactive", both, spec.OverrideThreshold)
		} else {
			r, why = pred, fmt.Sprintf("override: %s within %d, using predictive", both, spec.OverrideThreshold)
		}
	case StrategyMax:
		r, why = max(reactive, pred), "max: "+both
	case StrategyWeighted:
		w := spec.PredictiveWeight
		r = int32(math.Ceil(w*float64(pred) + (1-w)*float64(reactive)))
		why = fmt.Sprintf("weighted: ceil(%.2g*%d + %.2g*%d) of %s", w, pred, 1-w, reactive, both)
	case StrategySchedule:
		local := now.In(spec.Location)
		if spec.PredictiveHours.Contains(local) {
			r, why = pred, fmt.Sprintf("schedule: %s inside predictive hours, using predictive (%s)", local.Format("15:04 MST"), both)
		} else {
			r, why = reactive, fmt.Sprintf("schedule: %s outside predictive hours, using reactive (%s)", local.Format("15:04 MST"), both)
		}
	default:
		r, why = reactive, "reactive"
	}
	return r, fmt.Sprintf("%s; %s -> %d", reactiveReason, why, r)
}
