package watch

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/autoscale-io/reactive-autoscaler/pkg/cycle"
	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// queueStatus records st as target k's status to write.
func (c *Controller) queueStatus(k string, st Status) {
	c.mu.Lock()
	c.pendingStatus[k] = st
	c.mu.Unlock()
	c.statuses.Add(k)
}

func (c *Controller) runStatusWorker(ctx context.Context) {
	for c.processNextStatus(ctx) {
	}
}

// processNextStatus writes one target's newest queued status.
func (c *Controller) processNextStatus(ctx context.Context) bool {
	k, shutdown := c.statuses.Get()
	if shutdown {
		return false
	}
	defer c.statuses.Done(k)
	c.mu.Lock()
	st, ok := c.pendingStatus[k]
	delete(c.pendingStatus, k)
	c.mu.Unlock()
	if !ok {
		c.statuses.Forget(k)
		return true
	}
	err := c.writeStatus(ctx, k, st)
	switch {
	case err == nil, errors.Is(err, errFenced), apierrors.IsNotFound(err):
		c.statuses.Forget(k)
	default:
		utilruntime.HandleErrorWithContext(ctx, err, "Writing the status annotation failed; retrying with backoff", "key", k)
		c.mu.Lock()
		_, managed := c.targets[k]
		_, newer := c.pendingStatus[k]
		if managed && !newer {
			c.pendingStatus[k] = st
		}
		c.mu.Unlock()
		if managed {
			c.statuses.AddRateLimited(k)
		} else {
			c.statuses.Forget(k)
		}
	}
	return true
}

// writeStatus patches target k's status annotation.
func (c *Controller) writeStatus(ctx context.Context, k string, st Status) error {
	if c.fenced() {
		return errFenced
	}
	ns, name, err := cache.SplitMetaNamespaceKey(k)
	if err != nil {
		return err
	}
	ctx, span := c.tracer.Start(ctx, "status.write")
	defer span.End()
	js, err := json.Marshal(st)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{StatusAnnotation: string(js)}}})
	if err != nil {
		return err
	}
	return c.api.mergePatch(ctx, ns, name, patch)
}

// StatusAnnotation is where the controller reports on, and remembers, a target.
const StatusAnnotation = scaler.AnnotationPrefix + scaler.KeyStatus

// Status is the JSON of the autoscale.io/status annotation. It changes only
// on scale actions and data-health transitions, so it is written rarely; its
// LastScaleTime carries the cooldown across restarts and leader changes.
type Status struct {
	LastScaleTime *metav1.Time `json:"lastScaleTime,omitempty"`
	// LastDecision is the last scale decision (action up or down).
	LastDecision *StatusDecision `json:"lastDecision,omitempty"`
	// DataHealth is "ok" or "no data: <first reason>".
	DataHealth  string       `json:"dataHealth"`
	NoDataSince *metav1.Time `json:"noDataSince,omitempty"`
	// Predictor reports the predictive input and how good it has been.
	Predictor *StatusPredictor `json:"predictor,omitempty"`
	// Conflict names the HPA that also scales the Deployment; while it is
	// set the controller leaves the Deployment alone.
	Conflict string `json:"conflict,omitempty"`
	// Warnings say what of the autoscale.io/* annotations is not used: why
	// the settings are invalid (then nothing is managed), or which keys
	// are unknown (ignored).
	Warnings []string `json:"warnings,omitempty"`
	// Rate is the smoothed request rate when the status was last written
	// (for any of the reasons above: it causes no write of its own), for
	// the status command to show against the table's thresholds.
	Rate *StatusRate `json:"rate,omitempty"`
}

// StatusRate is a smoothed rate and when it was observed.
type StatusRate struct {
	RPS float64     `json:"rps"`
	At  metav1.Time `json:"at"`
}

// StatusDecision is a scale decision as the status annotation reports it.
type StatusDecision struct {
	From        int32   `json:"fromReplicas"`
	To          int32   `json:"toReplicas"`
	Action      string  `json:"action"`
	Code        string  `json:"code,omitempty"` // scaler.Code: what decided
	Reason      string  `json:"reason"`
	SmoothedRPS float64 `json:"smoothedRPS"`
	DryRun      bool    `json:"dryRun,omitempty"`
}

func parseStatus(s string) (Status, bool) {
	var st Status
	if s == "" || json.Unmarshal([]byte(s), &st) != nil {
		return Status{}, false
	}
	return st, true
}

// nextStatus returns the status after decision dec at now, and whether it
// differs from the previous one (then it must be written).
func nextStatus(prev Status, dec scaler.Decision, noData error, scaled, dryRun bool, now time.Time) (Status, bool) {
	st := prev
	if dec.DataOK {
		st.DataHealth, st.NoDataSince = "ok", nil
	} else if !strings.HasPrefix(prev.DataHealth, "no data") {
		st.DataHealth = "no data"
		if noData != nil {
			st.DataHealth += ": " + noData.Error()
		}
		t := metav1.NewTime(now)
		st.NoDataSince = &t
	}
	if scaled {
		t := metav1.NewTime(now)
		if !dryRun {
			// A dry run started no real cooldown: a restart must not
			// read one back.
			st.LastScaleTime = &t
		}
		st.LastDecision = &StatusDecision{
			From: dec.Current, To: dec.Desired, Action: dec.Action.String(), Code: string(dec.Code),
			Reason: dec.Reason, SmoothedRPS: dec.SmoothedRPS, DryRun: dryRun,
		}
	}
	// Nothing to say about a target never scaled whose data is fine: its
	// first evaluation writes nothing (thousands of new targets must not
	// each cost a write).
	quietStart := prev.DataHealth == "" && st.DataHealth == "ok"
	changed := scaled || (st.DataHealth != prev.DataHealth && !quietStart)
	return st, changed
}

// predictorStatusEvery is how often, at most, a target's status is written
// for its predictor's standing alone: 10 min plus a per-target offset of up
// to 10 min, so that targets that started together do not write together.
func predictorStatusEvery(k string) time.Duration {
	h := fnv.New32a()
	_, _ = h.Write([]byte(k))
	return PredictorStatusEvery + time.Duration(h.Sum32()%600)*time.Second
}

// PredictorStatusEvery is the least time between two status writes made for
// the predictor's MAPE alone.
const PredictorStatusEvery = 10 * time.Minute

// reportStatus queues the status annotation's write when it changed. The
// predictor's standing rides along with every write, and on its own at most
// every PredictorStatusEvery (spread over targets): its MAPE moves at every
// evaluation, and thousands of targets must not write at once when their
// first predictions are scored.
func (c *Controller) reportStatus(k string, t *target, spec *scaler.Spec, o cycle.Outcome, scaled bool, now time.Time) {
	st, changed := nextStatus(t.status, o.Decision, o.Input.NoData, scaled, spec.DryRun, now)
	ps, psChanged := predictorStatus(t.status.Predictor, spec, t.cycle.Shadow(), o)
	// A status that says the history is being read is out of date as soon
	// as the read ends: that change is written at once.
	wasReading := t.status.Predictor != nil && strings.Contains(t.status.Predictor.NoForecast, cycle.ErrSeasonReading.Error())
	if changed || (psChanged && (wasReading || now.Sub(t.statusWritten) >= predictorStatusEvery(k))) {
		st.Predictor, changed = ps, true
	}
	if changed {
		if o.Decision.DataOK {
			st.Rate = &StatusRate{RPS: o.Decision.SmoothedRPS, At: metav1.NewTime(now)}
		}
		t.status = st
		c.queueStatus(k, st)
		t.statusWritten = now
	}
}

// StatusPredictor reports a target's predictor in the status annotation.
type StatusPredictor struct {
	Predictor string `json:"predictor"`
	Horizon   string `json:"horizon"`
	// MAPEPercent is the mean absolute percentage error of the last Scored
	// predictions (shadow scoring), rounded to a whole percent.
	MAPEPercent *float64 `json:"mapePercent,omitempty"`
	Scored      int      `json:"scored"`
	// HistoryDays is how many whole days of history the built-in
	// forecaster learns from; NoForecast says why it gives no forecast
	// (the decision is then reactive alone).
	HistoryDays int    `json:"historyDays,omitempty"`
	NoForecast  string `json:"noForecast,omitempty"`
	// Period is the pattern within the day the built-in forecaster found
	// in that history ("2h"; empty: none).
	Period string `json:"period,omitempty"`
}

// predictorStatus returns what the status should say about the predictor
// and whether that differs enough from prev to be worth a write: the
// predictor, horizon, days of history, its period or the reason for no
// forecast changed, the first predictions were scored, or MAPE moved by 5
// points or more. (MAPE moves at every evaluation; writing each move would
// cost an API write per target per interval.)
func predictorStatus(prev *StatusPredictor, spec *scaler.Spec, sh *scaler.Shadow, o cycle.Outcome) (*StatusPredictor, bool) {
	if spec.Predictor == scaler.PredictorNone {
		return nil, prev != nil
	}
	st := &StatusPredictor{Predictor: string(spec.Predictor), Horizon: spec.Horizon.String(), HistoryDays: o.Predictor.SeasonDays}
	if p := o.Predictor.SeasonPeriod; p > 0 {
		st.Period = predict.PeriodName(p)
	}
	if o.Predictor.NoForecast != nil {
		st.NoForecast = o.Predictor.NoForecast.Error() + "; deciding reactively"
	}
	if asked := o.Predictor.Answer != nil || o.Predictor.Err != nil || o.Predictor.NoForecast != nil; !asked && prev != nil {
		// No predictor was asked (a spike evaluation, no data): keep what
		// the last one said.
		st.HistoryDays, st.NoForecast, st.Period = prev.HistoryDays, prev.NoForecast, prev.Period
	}
	mape, n := sh.MAPE()
	st.Scored = n
	if n > 0 {
		v := math.Round(100 * mape)
		st.MAPEPercent = &v
	}
	switch {
	case prev == nil || prev.Predictor != st.Predictor || prev.Horizon != st.Horizon ||
		prev.HistoryDays != st.HistoryDays || prev.NoForecast != st.NoForecast || prev.Period != st.Period:
		return st, true
	case prev.MAPEPercent == nil:
		return st, st.MAPEPercent != nil
	case st.MAPEPercent == nil:
		return st, false
	}
	return st, math.Abs(*st.MAPEPercent-*prev.MAPEPercent) >= 5
}
