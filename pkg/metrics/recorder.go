// Package metrics holds reactive-autoscaler's Prometheus access: the RPS
// source that reads each target's request rate, and the Recorder that exports
// the controller's own metrics (prefix reactive_autoscaler_).
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/autoscale-io/reactive-autoscaler/pkg/predict"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

const namespace = "reactive_autoscaler"

// Result is what became of an evaluation: the values of the
// evaluations_total "result" label.
type Result string

// The results.
const (
	ResultScaled  Result = "scaled"
	ResultHeld    Result = "held"
	ResultNoData  Result = "no_data"
	ResultInvalid Result = "invalid"
	ResultError   Result = "error"
	ResultDryRun  Result = "dry_run"
	// ResultConflict: another autoscaler (an HPA) scales the target.
	ResultConflict Result = "conflict"
)

// Evaluation is what one evaluation of a target reports.
type Evaluation struct {
	Result Result
	// Decision is the decision made; nil when none was (invalid settings,
	// a conflict).
	Decision *scaler.Decision
	Took     time.Duration
	// At is when the evaluation started.
	At time.Time
	// Lag is how late a periodic evaluation started; Scheduled says the
	// evaluation was one.
	Lag       time.Duration
	Scheduled bool
	// SpikeToScale is the time from a spike trigger being received to the
	// replicas it caused being written (0: no such write).
	SpikeToScale time.Duration
	// Prediction is the predictor's news, if any.
	Prediction *Prediction
}

// Prediction is what an evaluation learnt of the target's predictor.
type Prediction struct {
	// RPS is the rate expected at the horizon, when HasRPS.
	RPS    float64
	HasRPS bool
	// MAPE over Scored matured predictions (Scored 0: none yet).
	MAPE   float64
	Scored int
	// Failed is why the prediction failed ("": it did not).
	Failed predict.Reason
}

// Alert outcomes, the values of webhook_alerts_total's "outcome" label.
const (
	AlertQueued        = "queued"
	AlertDuplicate     = "duplicate"
	AlertUnknownTarget = "unknown_target"
	AlertResolved      = "resolved"
)

// alertOutcomes lists every alert outcome.
var alertOutcomes = []string{AlertQueued, AlertDuplicate, AlertUnknownTarget, AlertResolved}

var results = []Result{ResultScaled, ResultHeld, ResultNoData, ResultInvalid, ResultError, ResultDryRun, ResultConflict}

// Recorder exports the controller's own metrics. Label values are fixed
// sets, except namespace/deployment, whose series are deleted when a target
// goes away. A nil *Recorder records nothing.
type Recorder struct {
	smoothedRPS  *prometheus.GaugeVec
	desired      *prometheus.GaugeVec
	current      *prometheus.GaugeVec
	evaluations  *prometheus.CounterVec
	scaleActions *prometheus.CounterVec
	queryErrors  *prometheus.CounterVec
	webhook      *prometheus.CounterVec
	evalDuration prometheus.Histogram
	spikeToScale prometheus.Histogram
	alerts       *prometheus.CounterVec
	queryDur     prometheus.Histogram
	managed      *prometheus.GaugeVec
	leader       prometheus.Gauge
	predErrors   *prometheus.CounterVec
	predMAPE     *prometheus.GaugeVec
	lastEval     *prometheus.GaugeVec
	predicted    *prometheus.GaugeVec
	lag          prometheus.Histogram
}

// NewRecorder creates the metrics and registers them on reg.
func NewRecorder(reg prometheus.Registerer) *Recorder {
	target := []string{"namespace", "deployment"}
	r := &Recorder{
		smoothedRPS: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "target_smoothed_rps",
			Help: "Smoothed (EMA) requests per second of a managed Deployment at its last evaluation with data."}, target),
		desired: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "target_desired_replicas",
			Help: "Replicas the last evaluation decided on."}, target),
		current: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "target_current_replicas",
			Help: "Replicas (scale subresource spec.replicas) seen by the last evaluation."}, target),
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "evaluations_total",
			Help: "Evaluations by result: scaled, held, no_data, invalid, error, dry_run."}, []string{"result"}),
		scaleActions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "scale_actions_total",
			Help: "Replica writes by direction."}, []string{"direction"}),
		queryErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "metric_query_errors_total",
			Help: "Prometheus queries that gave no usable sample, by reason."}, []string{"reason"}),
		webhook: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "webhook_requests_total",
			Help: "Alertmanager webhook requests by HTTP status code."}, []string{"code"}),
		evalDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "evaluation_duration_seconds",
			Help: "Time to evaluate one target, from dequeue to decision written.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		queryDur: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "prometheus_query_duration_seconds",
			Help: "Duration of the Prometheus queries that read request rates.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		spikeToScale: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "spike_to_scale_seconds",
			Help: "Time from a spike trigger (webhook) being received to the replicas it caused being written.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "webhook_alerts_total",
			Help: "Alerts received on the webhook by outcome: queued, duplicate, unknown_target, resolved."}, []string{"outcome"}),
		managed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "managed_targets",
			Help: "Workloads currently opted in and evaluated, by kind (Deployment, StatefulSet)."}, []string{"kind"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "leader",
			Help: "1 while this replica holds the leader lease, else 0."}),
		predErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "predictor_errors_total",
			Help: "Predictions that failed (the decision fell back to reactive), by reason."}, []string{"reason"}),
		predMAPE: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "target_predictor_mape",
			Help: "Mean absolute percentage error (0.1 = 10%) of the target's predictor over its last 60 scored predictions: each predicted rate compared with the rate measured when its horizon arrived (shadow scoring)."}, target),
		lastEval: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "target_last_evaluation_timestamp_seconds",
			Help: "When the target's last evaluation that decided started (Unix seconds): alert when it is older than a few intervals."}, target),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "evaluation_lag_seconds",
			Help: "How late periodic evaluations start: dequeued minus scheduled time.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		predicted: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "target_predicted_rps",
			Help: "The rate the target's predictor expects at its horizon, from the last prediction."}, target),
	}
	reg.MustRegister(r.smoothedRPS, r.desired, r.current, r.evaluations, r.scaleActions, r.queryErrors,
		r.webhook, r.evalDuration, r.spikeToScale, r.alerts, r.queryDur, r.managed, r.leader, r.predErrors, r.predMAPE, r.predicted, r.lag, r.lastEval)
	for _, reason := range predict.Reasons() {
		r.predErrors.WithLabelValues(string(reason))
	}
	// Pre-create the fixed series so that dashboards and rate() see zeros.
	for _, res := range results {
		r.evaluations.WithLabelValues(string(res))
	}
	for _, d := range []scaler.Action{scaler.ScaleUp, scaler.ScaleDown} {
		r.scaleActions.WithLabelValues(d.String())
	}
	for _, o := range alertOutcomes {
		r.alerts.WithLabelValues(o)
	}
	for _, reason := range reasons {
		r.queryErrors.WithLabelValues(string(reason))
	}
	for _, kind := range []string{"Deployment", "StatefulSet"} {
		r.managed.WithLabelValues(kind)
	}
	return r
}

// Evaluated records one evaluation of target.
func (r *Recorder) Evaluated(target types.NamespacedName, e Evaluation) {
	if r == nil {
		return
	}
	r.evaluations.WithLabelValues(string(e.Result)).Inc()
	r.evalDuration.Observe(e.Took.Seconds())
	if e.Scheduled {
		r.lag.Observe(max(0, e.Lag.Seconds()))
	}
	if e.SpikeToScale > 0 {
		r.spikeToScale.Observe(e.SpikeToScale.Seconds())
	}
	ns, name := target.Namespace, target.Name
	if d := e.Decision; d != nil {
		if !e.At.IsZero() {
			r.lastEval.WithLabelValues(ns, name).Set(float64(e.At.UnixNano()) / 1e9)
		}
		r.current.WithLabelValues(ns, name).Set(float64(d.Current))
		r.desired.WithLabelValues(ns, name).Set(float64(d.Desired))
		if d.DataOK {
			r.smoothedRPS.WithLabelValues(ns, name).Set(d.SmoothedRPS)
		}
		if e.Result == ResultScaled {
			r.scaleActions.WithLabelValues(d.Action.String()).Inc()
		}
	}
	if p := e.Prediction; p != nil {
		if p.HasRPS {
			r.predicted.WithLabelValues(ns, name).Set(p.RPS)
		}
		if p.Scored > 0 {
			r.predMAPE.WithLabelValues(ns, name).Set(p.MAPE)
		}
		if p.Failed != "" {
			r.predErrors.WithLabelValues(string(p.Failed)).Inc()
		}
	}
}

// Forget deletes target's series.
func (r *Recorder) Forget(target types.NamespacedName) {
	if r == nil {
		return
	}
	for _, v := range []*prometheus.GaugeVec{r.smoothedRPS, r.desired, r.current, r.predMAPE, r.predicted, r.lastEval} {
		v.DeleteLabelValues(target.Namespace, target.Name)
	}
}

// SetManagedCount sets the number of managed targets of a kind.
func (r *Recorder) SetManagedCount(kind string, n int) {
	if r == nil {
		return
	}
	r.managed.WithLabelValues(kind).Set(float64(n))
}

// SetLeader records whether this replica leads.
func (r *Recorder) SetLeader(leading bool) {
	if r == nil {
		return
	}
	v := 0.0
	if leading {
		v = 1
	}
	r.leader.Set(v)
}

// ObserveWebhook counts one webhook request answered with code.
func (r *Recorder) ObserveWebhook(code int) {
	if r == nil {
		return
	}
	r.webhook.WithLabelValues(strconv.Itoa(code)).Inc()
}

// ObserveAlert counts one alert by outcome.
func (r *Recorder) ObserveAlert(outcome string) {
	if r == nil {
		return
	}
	r.alerts.WithLabelValues(outcome).Inc()
}

func (r *Recorder) observeQuery(d time.Duration) {
	if r == nil {
		return
	}
	r.queryDur.Observe(d.Seconds())
}

func (r *Recorder) queryError(reason Reason) {
	if r == nil {
		return
	}
	r.queryErrors.WithLabelValues(string(reason)).Inc()
}
