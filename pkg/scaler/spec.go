package scaler

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"
)

// AnnotationPrefix prefixes every annotation the controller reads or writes.
const AnnotationPrefix = "autoscale.io/"

// Annotation keys without AnnotationPrefix.
const (
	KeyReactive            = "reactive"
	KeyMinReplicas         = "min-replicas"
	KeyMaxReplicas         = "max-replicas"
	KeyThresholds          = "thresholds"
	KeyTargetRPSPerReplica = "target-rps-per-replica"
	KeyScaleDownRatio      = "scale-down-ratio"
	KeyCooldown            = "cooldown"
	KeyScaleUpCooldown     = "scale-up-cooldown"
	KeyScaleDownCooldown   = "scale-down-cooldown"
	KeyEMAAlpha            = "ema-alpha"
	KeyInterval            = "interval"
	KeyService             = "service"
	KeyQuery               = "query"
	KeyMetricSource        = "metric-source"
	KeyStrategy            = "strategy"
	KeyDryRun              = "dry-run"
	KeyPaused              = "paused"
	KeyOverrideThreshold   = "override-threshold"
	KeyPredictiveWeight    = "predictive-weight"
	KeyPredictiveHours     = "predictive-hours"
	KeyTimezone            = "timezone"
	KeyPredictor           = "predictor"
	KeyPredictiveHorizon   = "predictive-horizon"
	KeyProfile             = "profile"
	KeyScaleDownStab       = "scale-down-stabilization"
	KeyLeadTime            = "lead-time"
	// KeyStatus is written by the controller, never read as configuration.
	KeyStatus = "status"
)

// DefaultQuery is the PromQL used when a Deployment sets no query.
// It is scoped by namespace and service, the labels Prometheus Operator's
// ServiceMonitors attach, so that a Deployment of the same name in another
// namespace never adds its traffic to this one's.
const DefaultQuery = `sum(rate(http_requests_total{namespace="{{.Namespace}}",service="{{.Service}}"}[1m]))`

// FastQuery is the recommended profile's query: the rate between the last
// two scrapes (irate), which sees a step one scrape after it happens where
// a 1m rate needs most of a minute to show it. Scale-downs on it are
// stabilized (scale-down-stabilization), so its noise costs little.
const FastQuery = `sum(irate(http_requests_total{namespace="{{.Namespace}}",service="{{.Service}}"}[1m]))`

// GroupedFastQuery answers FastQuery for every namespace and service at once.
const GroupedFastQuery = `sum by (namespace, service) (irate(http_requests_total[1m]))`

// GroupedDefaultQuery answers DefaultQuery for every namespace and service
// at once: its series for (N, S) has the value DefaultQuery has for S in N.
const GroupedDefaultQuery = `sum by (namespace, service) (rate(http_requests_total[1m]))`

// Setting documents one per-Deployment setting: its annotation key, the
// built-in default ("" = derived, see Help) and what it means. Controller-wide
// defaults (flags, config file) use the same keys.
type Setting struct {
	Key     string
	Default string
	Help    string
}

// settings lists every per-Deployment setting in the order the docs show
// them.
var settings = []Setting{
	{KeyMinReplicas, "1", "lower replica bound, integer >= 1"},
	{KeyMaxReplicas, "10", "upper replica bound, integer >= min-replicas, at most 10000"},
	{KeyThresholds, "", "hysteresis table R:UP/DOWN,... (RPS); empty = target-rps-per-replica if set, else " + SeedTable},
	{KeyTargetRPSPerReplica, "", "generate the table from this RPS per replica instead of thresholds"},
	{KeyScaleDownRatio, "0.8", "DOWN(r) = target*(r-1)*ratio for a generated table, 0 < ratio < 1"},
	{KeyCooldown, "60s", "minimum time between two scale actions, at most 24h"},
	{KeyScaleUpCooldown, "", "cooldown before a scale-up; empty = cooldown"},
	{KeyScaleDownCooldown, "", "cooldown before a scale-down; empty = cooldown"},
	{KeyEMAAlpha, "0.7", "weight of the newest sample in the smoothed RPS, 0 < alpha <= 1"},
	{KeyScaleDownStab, "0s", "a scale-down goes no lower than the highest recommendation of this window (0s = off), at most 1h"},
	{KeyLeadTime, "0s", "scale up for the rate the smoothed trend expects this far ahead, about a new replica's start-up time (0s = off), at most 10m"},
	{KeyInterval, "30s", "evaluation period, 1s to 1h"},
	{KeyService, "", "value of {{.Service}} in the query; empty = the Deployment's name"},
	{KeyQuery, DefaultQuery, "PromQL returning one scalar or one series; template fields {{.Namespace}} {{.Deployment}} {{.Service}}"},
	{KeyMetricSource, "", "a built-in request counter instead of a query: " + strings.Join(MetricSourceNames(), ", ") + "; empty = the query"},
	{KeyStrategy, string(StrategyReactive), "reactive, override, max, weighted or schedule"},
	{KeyDryRun, "false", "decide and report, never write replicas"},
	{KeyPaused, "false", "neither evaluate nor scale"},
	{KeyOverrideThreshold, "2", "override strategy: use reactive when |reactive-predictive| exceeds this"},
	{KeyPredictiveWeight, "0.7", "weighted strategy: weight of the predictive input, 0 <= w <= 1"},
	{KeyPredictiveHours, "09:00-17:59", "schedule strategy: HH:MM-HH:MM window in which the predictive input is used"},
	{KeyTimezone, "UTC", "schedule strategy: IANA time zone of predictive-hours"},
	{KeyPredictor, string(PredictorBuiltin), "builtin (forecast from Prometheus history), external (the controller's --predictor-url) or none; with strategy reactive it is only scored (shadow mode)"},
	{KeyPredictiveHorizon, "5m", "how far ahead the predictor forecasts, 1s to 24h"},
	{KeyProfile, ProfileSeed, "seed (the built-in defaults) or recommended (defaults measured to serve more at equal cost, see docs); explicit settings override a profile's"},
}

// Settings returns every per-Deployment setting in the order the docs show
// them (a copy).
func Settings() []Setting { return slices.Clone(settings) }

// MaxInterval and MaxCooldown bound the interval and the cooldowns: a
// longer one cannot mean what it says for an autoscaler (87600h is a
// typo, not a policy).
const (
	MaxInterval = time.Hour
	MaxCooldown = 24 * time.Hour
)

// unknownKeys names the autoscale.io/ annotations that are no setting, with
// the setting each is likely a typo of.
func unknownKeys(annotations map[string]string) []string {
	var out []string
	for k := range annotations {
		key, ok := strings.CutPrefix(k, AnnotationPrefix)
		if !ok || key == KeyReactive || key == KeyStatus || slices.ContainsFunc(settings, func(s Setting) bool { return s.Key == key }) {
			continue
		}
		w := fmt.Sprintf("unknown annotation %s", k)
		if near := nearestKey(key); near != "" {
			w += fmt.Sprintf(" (did you mean %s%s?)", AnnotationPrefix, near)
		}
		out = append(out, w+"; it is ignored")
	}
	slices.Sort(out)
	return out
}

// nearestKey is the setting key within edit distance 2 of key ("": none).
func nearestKey(key string) string {
	best, bestD := "", 3
	for _, s := range settings {
		if d := editDistance(key, s.Key); d < bestD {
			best, bestD = s.Key, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (short keys only).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// MaxReplicasLimit bounds min-replicas and max-replicas.
const MaxReplicasLimit = 10000

// The profiles: named sets of defaults.
const (
	ProfileSeed        = "seed"
	ProfileRecommended = "recommended"
)

// Profiles maps a profile to the defaults it sets (keys without prefix).
// A profile chosen on a Deployment overrides the controller-wide defaults;
// one chosen controller-wide is overridden by them. Annotations override
// both.
var profiles = map[string]map[string]string{
	ProfileSeed: {},
	ProfileRecommended: {
		KeyInterval:          "15s",
		KeyEMAAlpha:          "1",
		KeyScaleUpCooldown:   "0s",
		KeyScaleDownCooldown: "0s",
		KeyLeadTime:          "60s",
		KeyScaleDownStab:     "2m",
		KeyQuery:             FastQuery,
		// The built-in forecaster's peak over a replica's start-up (the
		// lead time) plus one interval, never below the reactive need.
		KeyPredictor:         string(PredictorBuiltin),
		KeyStrategy:          string(StrategyMax),
		KeyPredictiveHorizon: "75s",
	},
}

// Strategy names how the reactive and predictive inputs are combined.
type Strategy string

// The strategies of docs/REFERENCE.md section 4.
const (
	StrategyReactive Strategy = "reactive"
	StrategyOverride Strategy = "override"
	StrategyMax      Strategy = "max"
	StrategyWeighted Strategy = "weighted"
	StrategySchedule Strategy = "schedule"
)

// PredictorKind names where a target's predictive input comes from.
type PredictorKind string

// The predictor kinds.
const (
	PredictorBuiltin  PredictorKind = "builtin"
	PredictorExternal PredictorKind = "external"
	PredictorNone     PredictorKind = "none"
)

// Spec is the validated scaling policy of one target.
type Spec struct {
	// Replica bounds: 1 <= MinReplicas (default 1) <= MaxReplicas (default
	// 10) <= MaxReplicasLimit.
	MinReplicas int32
	MaxReplicas int32
	// Table holds the hysteresis thresholds in requests per second (default
	// SeedTable, or one generated from target-rps-per-replica).
	Table Table

	// Cooldowns: the least time from the last scale action to the next up
	// or down (default 60 s each).
	ScaleUpCooldown   time.Duration
	ScaleDownCooldown time.Duration
	// EMAAlpha is the weight of the newest sample in the smoothed rate, in
	// (0, 1] (default 0.7).
	EMAAlpha float64
	// Interval is the evaluation period, >= 1 s (default 30 s).
	Interval time.Duration
	// ScaleDownStabilization: a scale-down goes no lower than the highest
	// reactive recommendation of this window, at most 1 h (default 0: off).
	ScaleDownStabilization time.Duration
	// Lead: scale-ups are decided for the smoothed rate plus its trend this
	// far ahead, at most 10 min (default 0: off).
	Lead time.Duration

	Service string             // {{.Service}} in Query (default: the workload's name)
	Query   *template.Template // PromQL template (default DefaultQuery)
	// Source is the built-in metric source Query comes from (nil: a
	// custom query), which the controller may answer for many targets with
	// one grouped query; Instant: Query is its irate form (the recommended
	// profile's), else its rate over 1m.
	Source  *MetricSource
	Instant bool

	Strategy Strategy // default StrategyReactive
	// OverrideThreshold (override strategy): the largest |reactive -
	// predictive| in replicas for which the predictive input is used
	// (default 2).
	OverrideThreshold int32
	// PredictiveWeight (weighted strategy): the weight of the predictive
	// input, in [0, 1] (default 0.7).
	PredictiveWeight float64
	// PredictiveHours (schedule strategy): when, in Location (default UTC),
	// the predictive input is used (default 09:00-17:59).
	PredictiveHours ClockWindow
	Location        *time.Location
	Predictor       PredictorKind // default PredictorBuiltin
	// Horizon is how far ahead the predictor forecasts, 1 s to 24 h
	// (default 5 min).
	Horizon time.Duration

	DryRun bool // decide and report, never write replicas (default false)
	Paused bool // neither evaluate nor scale (default false)

	// Warnings name annotations that mean nothing here (an unknown
	// autoscale.io/ key, with the known one it is likely a typo of). The
	// spec is valid without them; the controller reports them.
	Warnings []string
	// Reach is the most replicas the table ever asks for: MaxReplicas,
	// unless its last row's UP is inf below it. SizingWarning, when not
	// empty, says why Reach < MaxReplicas and what to set; the controller
	// reports it as a TableBelowMax Warning (the spec stays valid: the
	// table is what was asked for, the silence was the fault).
	Reach         int32
	SizingWarning string
}

// ClockWindow is a daily window of wall-clock minutes, both ends inclusive.
// A window whose end is before its start wraps past midnight.
type ClockWindow struct{ From, To int } // minutes since midnight

// Contains reports whether t (in its own location) falls inside the window.
func (w ClockWindow) Contains(t time.Time) bool {
	m := t.Hour()*60 + t.Minute()
	if w.From <= w.To {
		return m >= w.From && m <= w.To
	}
	return m >= w.From || m <= w.To
}

// FieldError says which setting was wrong, the value seen and the rule broken.
type FieldError struct {
	Key    string // annotation key without prefix
	Value  string
	Source string // "annotation" or "default"
	Rule   string
}

func (e *FieldError) Error() string {
	name := AnnotationPrefix + e.Key
	if e.Source != "annotation" {
		name = "default " + e.Key
	}
	rule := e.Rule
	if len(rule) > 4*maxQuoted {
		rule = strings.ToValidUTF8(rule[:4*maxQuoted], "") + "..."
	}
	return fmt.Sprintf("%s=%s: %s", name, quoteShort(e.Value), rule)
}

// maxQuoted is how much of a refused value an error quotes: enough to
// recognise it, and an Event or status that carries the error stays far
// below what the API server accepts however long the annotation is.
const maxQuoted = 256

func quoteShort(v string) string {
	if len(v) <= maxQuoted {
		return strconv.Quote(v)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return fmt.Sprintf("%q... (%d bytes)", v[:cut], len(v))
}

// ErrInvalidSpec is wrapped by every error Parse returns.
var ErrInvalidSpec = errors.New("invalid autoscaling settings")

type specError struct{ errs []error }

func (e *specError) Error() string {
	parts := make([]string, len(e.errs))
	for i, err := range e.errs {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

func (e *specError) Unwrap() []error { return append([]error{ErrInvalidSpec}, e.errs...) }

// Managed reports whether annotations opt a Deployment in.
func Managed(annotations map[string]string) bool {
	return annotations[AnnotationPrefix+KeyReactive] == "true"
}

// Parse builds the spec of Deployment name from its annotations, falling back
// to defaults (keys without prefix, from flags or the config file) and then to
// the built-in defaults of Settings. Every problem found is reported; the
// error wraps ErrInvalidSpec and one *FieldError per problem.
func Parse(name string, annotations, defaults map[string]string) (*Spec, error) {
	p := parser{annotations: annotations, defaults: defaults}
	p.noneEmpty()
	if v, src := p.lookup(KeyProfile); profiles[v] == nil {
		p.fail(KeyProfile, "must be seed or recommended")
	} else {
		p.profile, p.profileFromAnnotation = profiles[v], src == "annotation"
	}
	s := &Spec{
		MinReplicas:       p.replicas(KeyMinReplicas),
		MaxReplicas:       p.replicas(KeyMaxReplicas),
		EMAAlpha:          p.float(KeyEMAAlpha, func(v float64) bool { return v > 0 && v <= 1 }, "must be a number with 0 < alpha <= 1"),
		Strategy:          Strategy(p.get(KeyStrategy)),
		OverrideThreshold: p.int32(KeyOverrideThreshold, 0),
		PredictiveWeight:  p.float(KeyPredictiveWeight, func(v float64) bool { return v >= 0 && v <= 1 }, "must be a number with 0 <= w <= 1"),
		DryRun:            p.bool(KeyDryRun),
		Paused:            p.bool(KeyPaused),
	}
	s.Warnings = unknownKeys(annotations)
	s.Service = p.service(name)
	p.timing(s)
	if s.MaxReplicas < s.MinReplicas && !p.failed(KeyMinReplicas, KeyMaxReplicas) {
		p.fail(KeyMaxReplicas, fmt.Sprintf("must be >= min-replicas (%d)", s.MinReplicas))
	}
	p.predictive(s)
	s.Table = p.table(s.MaxReplicas)
	s.Reach, s.SizingWarning = p.reach(s)
	s.Query, s.Source, s.Instant = p.query(name, s.Service)
	s.PredictiveHours = p.window(KeyPredictiveHours)
	if loc, err := time.LoadLocation(p.get(KeyTimezone)); err != nil {
		p.fail(KeyTimezone, "must be an IANA time zone name such as UTC or Europe/Berlin")
	} else {
		s.Location = loc
	}
	if len(p.errs) > 0 {
		return nil, &specError{errs: p.errs}
	}
	return s, nil
}

// noneEmpty fails every setting annotated with an empty value: set but
// empty is not "the default", it is a value that says nothing, most likely
// a template that rendered nothing.
func (p *parser) noneEmpty() {
	for _, st := range settings {
		if v, ok := p.annotations[AnnotationPrefix+st.Key]; ok && strings.TrimSpace(v) == "" {
			p.fail(st.Key, "is empty; remove the annotation to use the default")
		}
	}
}

// service is the value of {{.Service}}: the workload's name by default. It
// is a label value in every built-in query, so a DNS label, as Kubernetes
// names a Service, and nothing that could close the string it is pasted
// into.
func (p *parser) service(name string) string {
	svc := p.get(KeyService)
	if svc == "" {
		return name
	}
	if !IsDNSLabel(svc) {
		p.fail(KeyService, "must be a DNS label (lowercase letters, digits and '-', at most 63), the name of a Service")
	}
	return svc
}

// timing parses the durations of s: the interval, the cooldowns, the
// scale-down stabilization and the lead time, each within its bounds.
func (p *parser) timing(s *Spec) {
	s.Interval = p.durationIn(KeyInterval, time.Second, MaxInterval)
	s.ScaleDownStabilization = p.durationIn(KeyScaleDownStab, 0, time.Hour)
	s.Lead = p.durationIn(KeyLeadTime, 0, 10*time.Minute)
	cooldown := p.durationIn(KeyCooldown, 0, MaxCooldown)
	s.ScaleUpCooldown, s.ScaleDownCooldown = cooldown, cooldown
	if p.get(KeyScaleUpCooldown) != "" {
		s.ScaleUpCooldown = p.durationIn(KeyScaleUpCooldown, 0, MaxCooldown)
	}
	if p.get(KeyScaleDownCooldown) != "" {
		s.ScaleDownCooldown = p.durationIn(KeyScaleDownCooldown, 0, MaxCooldown)
	}
}

// predictive parses the strategy, the predictor and its horizon.
func (p *parser) predictive(s *Spec) {
	s.Strategy = Strategy(p.get(KeyStrategy))
	switch s.Strategy {
	case StrategyReactive, StrategyOverride, StrategyMax, StrategyWeighted, StrategySchedule:
	default:
		p.fail(KeyStrategy, "must be one of reactive, override, max, weighted, schedule")
	}
	s.Predictor = PredictorKind(p.get(KeyPredictor))
	switch s.Predictor {
	case PredictorBuiltin, PredictorExternal, PredictorNone:
	default:
		p.fail(KeyPredictor, "must be one of builtin, external, none")
	}
	s.Horizon = p.durationIn(KeyPredictiveHorizon, time.Second, 24*time.Hour)
	if _, src := p.lookup(KeyStrategy); src == "profile" && s.Predictor == PredictorNone {
		// A profile's strategy yields to predictor none set elsewhere: the
		// profile without its forecast, not an error.
		s.Strategy = StrategyReactive
	}
	if s.Strategy != StrategyReactive && s.Predictor == PredictorNone && !p.failed(KeyStrategy, KeyPredictor) {
		p.fail(KeyStrategy, fmt.Sprintf("strategy %s needs a predictor, but predictor is none", s.Strategy))
	}
}

// RenderQuery fills the query template for a Deployment. Every field is
// checked to be a Kubernetes name (namespace and service DNS labels, the
// workload a DNS subdomain) and escaped as the inside of a PromQL string,
// so that no value can end the label matcher it is pasted into and select
// another namespace's series.
func (s *Spec) RenderQuery(namespace, deployment string) (string, error) {
	f := QueryFields{Namespace: namespace, Deployment: deployment, Service: s.Service}
	switch {
	case !IsDNSLabel(f.Namespace):
		return "", fmt.Errorf("namespace %q is not a DNS label", f.Namespace)
	case !IsDNSSubdomain(f.Deployment):
		return "", fmt.Errorf("workload name %q is not a DNS subdomain", f.Deployment)
	case !IsDNSLabel(f.Service):
		return "", fmt.Errorf("service %q is not a DNS label", f.Service)
	}
	var b strings.Builder
	err := s.Query.Execute(&b, QueryFields{Namespace: EscapeString(f.Namespace), Deployment: EscapeString(f.Deployment), Service: EscapeString(f.Service)})
	return b.String(), err
}

// CheckWorkload reports, as an invalid setting, what makes the spec
// unusable for the workload namespace/name that Parse cannot see: a
// metric source that cannot tell its target's series from another
// namespace's (MetricSource.Admits).
func (s *Spec) CheckWorkload(namespace, name string) error {
	if s.Source == nil {
		return nil
	}
	if err := s.Source.Admits(QueryFields{Namespace: namespace, Deployment: name, Service: s.Service}); err != nil {
		return &specError{errs: []error{&FieldError{Key: KeyMetricSource, Value: s.Source.Name, Source: "annotation", Rule: err.Error()}}}
	}
	return nil
}

// EscapeString escapes s for the inside of a double-quoted PromQL string
// (PromQL's escapes are Go's): quotes, backslashes and control characters
// become escape sequences.
func EscapeString(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

var (
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// IsDNSLabel reports whether s is an RFC 1123 label, as Kubernetes names
// namespaces and Services.
func IsDNSLabel(s string) bool { return len(s) <= 63 && dnsLabel.MatchString(s) }

// IsDNSSubdomain reports whether s is an RFC 1123 subdomain, as Kubernetes
// names Deployments and StatefulSets.
func IsDNSSubdomain(s string) bool { return len(s) <= 253 && dnsSubdomain.MatchString(s) }

const queryRule = "must be a non-empty PromQL template using only {{.Namespace}}, {{.Deployment}} and {{.Service}}"

// MaxQueryLength bounds a query template: a PromQL expression a person
// writes is far shorter, and every Event and status that quotes it stays
// small.
const MaxQueryLength = 4096

var (
	// queryAction is the only action a query template may hold: one field,
	// written {{.Field}} with optional spaces inside the braces.
	queryAction = regexp.MustCompile(`\{\{ *\.(Namespace|Deployment|Service) *\}\}`)
	// queryDelims are the characters of a template delimiter; any left
	// once the allowed actions are removed could open or close another.
	queryDelims = regexp.MustCompile(`\{\{|\}\}`)
)

// CheckQueryTemplate judges a query template on its raw text, before it is
// parsed or run: text/template is a language (range, define, template,
// printf) and a workload's annotation must not be able to make the
// controller loop, recurse or allocate. The only actions allowed are
// {{.Namespace}}, {{.Deployment}} and {{.Service}}; any other "{{" or "}}"
// left once those are removed is refused, so the parser never sees
// another action.
func CheckQueryTemplate(q string) error {
	if len(q) > MaxQueryLength {
		return fmt.Errorf("is %d bytes, longer than the %d a query may be", len(q), MaxQueryLength)
	}
	if rest := queryAction.ReplaceAllString(q, " "); queryDelims.MatchString(rest) {
		return errors.New(queryRule + "; no other template action, not even a \"{{\" or \"}}\" of its own")
	}
	return nil
}

// QueryFields are the fields a query template may use.
type QueryFields struct{ Namespace, Deployment, Service string }

// Cooldown returns the cooldown that gates an action in direction a.
func (s *Spec) Cooldown(a Action) time.Duration {
	if a == ScaleDown {
		return s.ScaleDownCooldown
	}
	return s.ScaleUpCooldown
}

type parser struct {
	annotations, defaults map[string]string
	// profile is the chosen profile's defaults; profileFromAnnotation:
	// chosen on the Deployment (it then overrides controller defaults).
	profile               map[string]string
	profileFromAnnotation bool
	errs                  []error
}

// lookup returns the effective value of key and where it came from:
// the annotation, else the profile chosen by annotation, else the
// controller default, else the profile chosen there, else built in.
func (p *parser) lookup(key string) (value, source string) {
	if v, ok := p.annotations[AnnotationPrefix+key]; ok {
		return strings.TrimSpace(v), "annotation"
	}
	if v, ok := p.profile[key]; ok && p.profileFromAnnotation {
		return v, "profile"
	}
	if v, ok := p.defaults[key]; ok {
		return strings.TrimSpace(v), "default"
	}
	if v, ok := p.profile[key]; ok {
		return v, "profile"
	}
	for _, s := range settings {
		if s.Key == key {
			return s.Default, "built-in default"
		}
	}
	return "", "built-in default"
}

// set reports whether any of keys is set somewhere, not built in.
func (p *parser) set(keys ...string) bool {
	return slices.ContainsFunc(keys, func(k string) bool { _, src := p.lookup(k); return src != "built-in default" })
}

func (p *parser) get(key string) string { v, _ := p.lookup(key); return v }

func (p *parser) fail(key, rule string) {
	v, src := p.lookup(key)
	p.errs = append(p.errs, &FieldError{Key: key, Value: v, Source: src, Rule: rule})
}

func (p *parser) failed(keys ...string) bool {
	for _, err := range p.errs {
		var fe *FieldError
		if errors.As(err, &fe) {
			for _, k := range keys {
				if fe.Key == k {
					return true
				}
			}
		}
	}
	return false
}

func (p *parser) int32(key string, min int32) int32 {
	v, err := strconv.ParseInt(p.get(key), 10, 32)
	if err != nil || int32(v) < min {
		p.fail(key, fmt.Sprintf("must be an integer >= %d", min))
		return min
	}
	return int32(v)
}

// replicas is a replica bound, 1 to MaxReplicasLimit: a generated table
// has a row per replica, so an unbounded one would let one annotation
// exhaust the controller.
func (p *parser) replicas(key string) int32 {
	v := p.int32(key, 1)
	if v > MaxReplicasLimit {
		p.fail(key, fmt.Sprintf("must be at most %d", MaxReplicasLimit))
		return MaxReplicasLimit
	}
	return v
}

func (p *parser) float(key string, ok func(float64) bool, rule string) float64 {
	v, err := strconv.ParseFloat(p.get(key), 64)
	if err != nil || math.IsNaN(v) || !ok(v) {
		p.fail(key, rule)
		return 0
	}
	return v
}

func (p *parser) duration(key string, min time.Duration) time.Duration {
	d, err := time.ParseDuration(p.get(key))
	if err != nil || d < min {
		p.fail(key, fmt.Sprintf("must be a Go duration >= %s, such as 30s or 2m", min))
		return min
	}
	return d
}

// durationIn is a duration of key from min to max.
func (p *parser) durationIn(key string, min, max time.Duration) time.Duration {
	d := p.duration(key, min)
	if d > max {
		p.fail(key, "must be at most "+shortDuration(max))
	}
	return d
}

// shortDuration writes d without its zero minutes and seconds ("1h", not
// "1h0m0s").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (p *parser) bool(key string) bool {
	v, err := strconv.ParseBool(p.get(key))
	if err != nil {
		p.fail(key, "must be true or false")
	}
	return v
}

// table resolves thresholds / target-rps-per-replica. An annotation of either
// kind overrides a controller default of either kind; setting both at the
// same level is ambiguous and rejected.
func (p *parser) table(maxReplicas int32) Table {
	thr, thrSrc := p.lookup(KeyThresholds)
	tgt, tgtSrc := p.lookup(KeyTargetRPSPerReplica)
	useTarget := tgt != "" && (thr == "" || (tgtSrc == "annotation" && thrSrc != "annotation"))
	if thr != "" && tgt != "" && thrSrc == tgtSrc {
		p.fail(KeyTargetRPSPerReplica, "set either thresholds or target-rps-per-replica, not both")
		return nil
	}
	ratio := p.float(KeyScaleDownRatio, func(v float64) bool { return v > 0 && v < 1 }, "must be a number with 0 < ratio < 1")
	if useTarget {
		target := p.float(KeyTargetRPSPerReplica, func(v float64) bool { return v > 0 && !math.IsInf(v, 0) }, "must be a positive number")
		if target > 0 && ratio > 0 {
			return GenerateTable(target, ratio, maxReplicas)
		}
		return nil
	}
	if thr == "" {
		thr = SeedTable
	}
	t, err := ParseTable(thr)
	if err != nil {
		p.fail(KeyThresholds, err.Error())
	}
	return t
}

// reach is the most replicas s's table asks for, and, when that is below
// max-replicas, a warning that says so and names the setting that sizes
// the table.
func (p *parser) reach(s *Spec) (int32, string) {
	if len(s.Table) == 0 || s.MaxReplicas <= 0 {
		return s.MaxReplicas, ""
	}
	last := s.Table[len(s.Table)-1]
	if !math.IsInf(last.Up, 1) || last.Replicas >= s.MaxReplicas {
		// A finite last UP goes on past the table as far as allowed.
		return s.MaxReplicas, ""
	}
	n := last.Replicas
	if !p.set(KeyMaxReplicas, KeyProfile, KeyThresholds) {
		// Every built-in default: the seed contract, which asks for
		// nothing the seed table cannot do. The status shows the reach.
		return n, ""
	}
	fix := fmt.Sprintf("set %s%s to the requests per second one replica should carry (about 70 %% of what it serves)", AnnotationPrefix, KeyTargetRPSPerReplica)
	thr, _ := p.lookup(KeyThresholds)
	if thr != "" {
		return n, fmt.Sprintf("the thresholds end at %d replicas with UP=inf, below max-replicas %d: it never scales above %d; add rows, end on a finite UP, or %s",
			n, s.MaxReplicas, n, fix)
	}
	msg := fmt.Sprintf("no sizing set: the built-in seed table (%s) never asks for more than %d replicas, below max-replicas %d; %s", SeedTable, n, s.MaxReplicas, fix)
	if v, _ := p.lookup(KeyProfile); v == ProfileRecommended {
		msg = "profile recommended sets timing, query and forecast, not size: " + msg
	}
	return n, msg
}

// query returns the query's template and, when it is a built-in source's,
// the source and whether it is the instant (irate) form. A metric-source
// outranks a query set at a lower level (a controller default under an
// annotation); at the same level the two are an error. The built-in
// queries (the default's and the recommended profile's) are the http
// source's, and with another source they become its rate or irate.
func (p *parser) query(name, service string) (*template.Template, *MetricSource, bool) {
	q, qSrc := p.lookup(KeyQuery)
	builtin := q == DefaultQuery || q == FastQuery
	var src *MetricSource
	if builtin {
		src, _ = MetricSourceNamed(DefaultMetricSource)
	}
	if ms, msSrc := p.lookup(KeyMetricSource); ms != "" {
		named, ok := MetricSourceNamed(ms)
		switch {
		case !ok:
			p.fail(KeyMetricSource, "must be one of "+strings.Join(MetricSourceNames(), ", "))
			return nil, nil, false
		case named.Shared && named.ExporterNamespace == "":
			p.fail(KeyMetricSource, fmt.Sprintf("its exporter counts for every namespace: the controller needs --metric-source-namespace %s=<the namespace it runs in>", named.Name))
			return nil, nil, false
		case builtin || p.rank(msSrc) > p.rank(qSrc):
			src, q = named, named.Query(q == FastQuery)
		case p.rank(msSrc) == p.rank(qSrc):
			p.fail(KeyMetricSource, "set either metric-source or query, not both")
			return nil, nil, false
		default:
			src = nil // the query, set closer to the workload, wins
		}
	}
	if err := CheckQueryTemplate(q); err != nil {
		p.fail(KeyQuery, err.Error())
		return nil, nil, false
	}
	t, err := template.New(KeyQuery).Option("missingkey=error").Parse(q)
	if err == nil {
		// Execute once so that a reference to an unknown field fails now, as
		// an annotation error, not at every evaluation.
		err = t.Execute(&strings.Builder{}, QueryFields{Namespace: "ns", Deployment: name, Service: service})
	}
	if err != nil || strings.TrimSpace(q) == "" {
		p.fail(KeyQuery, queryRule)
		return nil, nil, false
	}
	return t, src, src != nil && q == src.Query(true)
}

// rank orders the places a setting comes from, the workload's own first:
// its annotation, the profile it chose, the controller's default, the
// profile chosen there, built in.
func (p *parser) rank(source string) int {
	switch source {
	case "annotation":
		return 4
	case "profile":
		if p.profileFromAnnotation {
			return 3
		}
		return 1
	case "default":
		return 2
	}
	return 0
}

func (p *parser) window(key string) ClockWindow {
	from, to, ok := strings.Cut(p.get(key), "-")
	f, err1 := parseClock(from)
	t, err2 := parseClock(to)
	if !ok || err1 != nil || err2 != nil {
		p.fail(key, "must be HH:MM-HH:MM, such as 09:00-17:59")
	}
	return ClockWindow{From: f, To: t}
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}
