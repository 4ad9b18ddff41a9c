package watch

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/autoscale-io/reactive-autoscaler/pkg/cycle"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// StatusAnnotation is where the controller reports on, and remembers, a target.
const StatusAnnotation = scaler.AnnotationPrefix + scaler.KeyStatus

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
		if err := c.admit(t.spec, d.GetAnnotations()); err != nil {
			t.spec, t.specErr = nil, err
		}
	}
	return t.spec, t.specErr, true
}

// QueryPolicy says whether a Deployment's autoscale.io/query is honoured.
type QueryPolicy string

// The query policies.
const (
	QueryAllowed   QueryPolicy = "allowed"   // any query
	QueryOff       QueryPolicy = "off"       // only the built-in queries
	QueryAllowList QueryPolicy = "allowlist" // only Config.AllowedQueries
)

// admit applies the controller's policy to a valid spec: who may edit a
// Deployment may choose its query (which runs with the controller's
// Prometheus access) only as far as the policy allows, and no interval
// below the controller's minimum.
func (c *Controller) admit(spec *scaler.Spec, ann map[string]string) error {
	if min := c.minimumInterval(); spec.Interval < min {
		return &scaler.FieldError{Key: scaler.KeyInterval, Value: spec.Interval.String(), Source: "annotation",
			Rule: fmt.Sprintf("must be at least this controller's minimum %v", min)}
	}
	q, ok := ann[scaler.AnnotationPrefix+scaler.KeyQuery]
	if !ok || q == scaler.DefaultQuery || q == scaler.FastQuery {
		return nil
	}
	switch c.queryPolicy {
	case QueryOff:
		return &scaler.FieldError{Key: scaler.KeyQuery, Value: q, Source: "annotation",
			Rule: "custom queries are off on this controller (--query-policy=off)"}
	case QueryAllowList:
		if !slices.Contains(c.allowedQueries, q) {
			return &scaler.FieldError{Key: scaler.KeyQuery, Value: q, Source: "annotation",
				Rule: "not one of this controller's --allowed-queries"}
		}
	}
	return nil
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
