package scaler

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestParseTable(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Table
		wantErr string
	}{
		{"seed table", SeedTable, Table{{1, 10, 0}, {2, 30, 8}, {3, 60, 25}, {4, 100, 50}, {5, math.Inf(1), 90}}, ""},
		{"rows in any order, spaces allowed", " 2:30/8 , 1:10/0", Table{{1, 10, 0}, {2, 30, 8}}, ""},
		{"INF in any case", "1:Inf/0", Table{{1, math.Inf(1), 0}}, ""},
		{"empty", "", nil, `entry 1 "" is not of the form R:UP/DOWN`},
		{"missing slash", "1:10", nil, `entry 1 "1:10" is not of the form R:UP/DOWN`},
		{"replicas not an integer", "x:10/0", nil, `entry 1 "x:10/0": replicas "x" is not an integer`},
		{"UP not a number", "1:ten/0", nil, `entry 1 "1:ten/0": UP "ten" is not a finite number or inf`},
		{"DOWN may not be inf", "1:10/inf", nil, `entry 1 "1:10/inf": DOWN "inf" is not a finite number`},
		{"negative", "1:10/-1", nil, `entry 1 "1:10/-1": DOWN "-1" is negative`},
		{"NaN", "1:NaN/0", nil, `entry 1 "1:NaN/0": UP "NaN" is not a finite number or inf`},
		{"gap in replica counts", "1:10/0,3:30/8", nil, "replica counts must run 1..N without gaps: expected row 2, found 3"},
		{"not starting at 1", "2:10/0", nil, "replica counts must run 1..N without gaps: expected row 1, found 2"},
		{"duplicate row", "1:10/0,1:20/0", nil, "replica counts must run 1..N without gaps: expected row 2, found 1"},
		{"UP not increasing", "1:10/0,2:10/5", nil, "UP must strictly increase: row 1 has UP 10, row 2 has UP 10"},
		{"inf before the last row", "1:inf/0,2:30/5", nil, "UP must strictly increase: row 1 has UP inf, row 2 has UP 30"},
		{"no hysteresis gap", "1:10/0,2:30/10", nil, "hysteresis gap: DOWN(2)=10 must be below UP(1)=10"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTable(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("ParseTable(%q) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTable(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if back, err := ParseTable(got.String()); err != nil || !cmp.Equal(back, got) {
				t.Errorf("String() %q does not parse back: %v", got.String(), err)
			}
		})
	}
}

func TestGenerateTable(t *testing.T) {
	got := GenerateTable(50, 0.8, 3)
	want := Table{{1, 50, 0}, {2, 100, 40}, {3, 150, 80}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("generated table invalid: %v", err)
	}
}

func TestParseDefaults(t *testing.T) {
	s, err := Parse("frontend", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.MinReplicas != 1 || s.MaxReplicas != 10 || s.EMAAlpha != 0.7 || s.Interval != 30*time.Second ||
		s.ScaleUpCooldown != time.Minute || s.ScaleDownCooldown != time.Minute || s.Strategy != StrategyReactive ||
		s.Service != "frontend" || s.Table.String() != SeedTable || s.DryRun || s.Paused ||
		s.OverrideThreshold != 2 || s.PredictiveWeight != 0.7 || s.Location != time.UTC {
		t.Errorf("defaults not as docs/REFERENCE.md section 1 says: %+v", s)
	}
	q, err := s.RenderQuery("shop", "frontend")
	if want := `sum(rate(http_requests_total{namespace="shop",service="frontend"}[1m]))`; err != nil || q != want {
		t.Errorf("RenderQuery = %q, %v; want %q", q, err, want)
	}
}

func TestParsePrecedence(t *testing.T) {
	defaults := map[string]string{KeyMaxReplicas: "20", KeyCooldown: "2m", KeyTargetRPSPerReplica: "10"}
	s, err := Parse("api", map[string]string{
		"autoscale.io/cooldown":             "30s",
		"autoscale.io/scale-up-cooldown":    "5s",
		"autoscale.io/thresholds":           "1:10/0,2:20/5",
		"autoscale.io/service":              "api-svc",
		"autoscale.io/query":                `sum(rate(x{namespace="{{.Namespace}}",deployment="{{.Deployment}}",service="{{.Service}}"}[30s]))`,
		"autoscale.io/unrelated":            "ignored",
		"not-ours.example.com/min-replicas": "7",
	}, defaults)
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxReplicas != 20 || s.ScaleUpCooldown != 5*time.Second || s.ScaleDownCooldown != 30*time.Second || s.MinReplicas != 1 {
		t.Errorf("precedence annotation > default > built-in broken: %+v", s)
	}
	if s.Table.String() != "1:10/0,2:20/5" {
		t.Errorf("an annotated table must override a default target-rps-per-replica, got %s", s.Table)
	}
	q, _ := s.RenderQuery("shop", "api")
	if want := `sum(rate(x{namespace="shop",deployment="api",service="api-svc"}[30s]))`; q != want {
		t.Errorf("query = %q, want %q", q, want)
	}
	s, err = Parse("api", map[string]string{"autoscale.io/target-rps-per-replica": "25", "autoscale.io/max-replicas": "4"}, map[string]string{KeyThresholds: "1:10/0"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Table.String() != "1:25/0,2:50/20,3:75/40,4:100/60" {
		t.Errorf("an annotated target-rps-per-replica must override a default table, got %s", s.Table)
	}
}

// TestParseErrors covers each rule of docs/REFERENCE.md section 1: the error names the
// annotation, the value and the rule.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		ann     map[string]string
		wantErr string
	}{
		{map[string]string{"autoscale.io/min-replicas": "0"}, `autoscale.io/min-replicas="0": must be an integer >= 1`},
		{map[string]string{"autoscale.io/min-replicas": "two"}, `autoscale.io/min-replicas="two": must be an integer >= 1`},
		{map[string]string{"autoscale.io/min-replicas": "5", "autoscale.io/max-replicas": "3"}, `autoscale.io/max-replicas="3": must be >= min-replicas (5)`},
		{map[string]string{"autoscale.io/thresholds": "1:10/0,2:30/10"}, `autoscale.io/thresholds="1:10/0,2:30/10": hysteresis gap: DOWN(2)=10 must be below UP(1)=10`},
		{map[string]string{"autoscale.io/thresholds": "1:10/0", "autoscale.io/target-rps-per-replica": "5"}, `autoscale.io/target-rps-per-replica="5": set either thresholds or target-rps-per-replica, not both`},
		{map[string]string{"autoscale.io/target-rps-per-replica": "-5"}, `autoscale.io/target-rps-per-replica="-5": must be a positive number`},
		{map[string]string{"autoscale.io/scale-down-ratio": "1"}, `autoscale.io/scale-down-ratio="1": must be a number with 0 < ratio < 1`},
		{map[string]string{"autoscale.io/cooldown": "soon"}, `autoscale.io/cooldown="soon": must be a Go duration >= 0s`},
		{map[string]string{"autoscale.io/scale-down-cooldown": "-1s"}, `autoscale.io/scale-down-cooldown="-1s": must be a Go duration >= 0s`},
		{map[string]string{"autoscale.io/ema-alpha": "0"}, `autoscale.io/ema-alpha="0": must be a number with 0 < alpha <= 1`},
		{map[string]string{"autoscale.io/ema-alpha": "NaN"}, `autoscale.io/ema-alpha="NaN": must be a number with 0 < alpha <= 1`},
		{map[string]string{"autoscale.io/interval": "100ms"}, `autoscale.io/interval="100ms": must be a Go duration >= 1s`},
		{map[string]string{"autoscale.io/query": `rate(x{a="{{.Pod}}"}[1m])`}, `autoscale.io/query="rate(x{a=\"{{.Pod}}\"}[1m])": must be a non-empty PromQL template`},
		{map[string]string{"autoscale.io/query": `{{`}, `autoscale.io/query="{{": must be a non-empty PromQL template`},
		{map[string]string{"autoscale.io/strategy": "magic"}, `autoscale.io/strategy="magic": must be one of reactive, override, max, weighted, schedule`},
		{map[string]string{"autoscale.io/dry-run": "yes please"}, `autoscale.io/dry-run="yes please": must be true or false`},
		{map[string]string{"autoscale.io/predictive-weight": "1.5"}, `autoscale.io/predictive-weight="1.5": must be a number with 0 <= w <= 1`},
		{map[string]string{"autoscale.io/predictive-hours": "9-5"}, `autoscale.io/predictive-hours="9-5": must be HH:MM-HH:MM`},
		{map[string]string{"autoscale.io/timezone": "Mars/Olympus"}, `autoscale.io/timezone="Mars/Olympus": must be an IANA time zone name`},
		{map[string]string{"autoscale.io/predictor": "http://evil.example/"}, `autoscale.io/predictor="http://evil.example/": must be one of builtin, external, none`},
		{map[string]string{"autoscale.io/predictive-horizon": "0s"}, `autoscale.io/predictive-horizon="0s": must be a Go duration >= 1s`},
		{map[string]string{"autoscale.io/predictive-horizon": "48h"}, `autoscale.io/predictive-horizon="48h": must be at most 24h`},
		{map[string]string{"autoscale.io/strategy": "max", "autoscale.io/predictor": "none"}, `autoscale.io/strategy="max": strategy max needs a predictor, but predictor is none`},
	}
	for _, tc := range tests {
		t.Run(tc.wantErr, func(t *testing.T) {
			_, err := Parse("frontend", tc.ann, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse(%v) error = %v, want it to contain %q", tc.ann, err, tc.wantErr)
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("error does not wrap ErrInvalidSpec")
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Source != "annotation" {
				t.Errorf("error carries no *FieldError from an annotation: %#v", err)
			}
		})
	}
}

func TestParseReportsEveryProblemAndNamesDefaults(t *testing.T) {
	_, err := Parse("frontend", map[string]string{"autoscale.io/ema-alpha": "2"}, map[string]string{KeyInterval: "never"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{`autoscale.io/ema-alpha="2"`, `default interval="never"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestManaged(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "True": false, "false": false, "": false} {
		if got := Managed(map[string]string{"autoscale.io/reactive": v}); got != want {
			t.Errorf("Managed(reactive=%q) = %v, want %v", v, got, want)
		}
	}
	if Managed(nil) {
		t.Error("absent annotation must not opt in")
	}
}

func FuzzParseTable(f *testing.F) {
	for _, s := range []string{SeedTable, "1:10/0", "1:inf/0,2:1/0", "", ",", "1:1e308/0,2:inf/1e307", "2:30/8,1:10/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tbl, err := ParseTable(s)
		if err != nil {
			return
		}
		if err := tbl.Validate(); err != nil {
			t.Fatalf("ParseTable(%q) accepted an invalid table: %v", s, err)
		}
		// Every accepted table yields a recommendation within 1..N+ for any rate.
		for _, rps := range []float64{0, 1, 1e9, math.MaxFloat64} {
			for c := int32(1); c <= int32(len(tbl))+1; c++ {
				if r, _ := tbl.Recommend(c, rps, 100); r < 1 {
					t.Fatalf("Recommend(%d, %v) = %d on %q", c, rps, r, s)
				}
			}
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add("1", "10", SeedTable, "60s", "0.7", "30s", DefaultQuery)
	f.Add("0", "x", "1:1/1", "-1s", "NaN", "0s", "{{")
	f.Add("1", "10", SeedTable, "60s", "0.7", "30s", "{{range 3}}{{$.Deployment}}{{end}}up")
	f.Fuzz(func(t *testing.T, min, max, thresholds, cooldown, alpha, interval, query string) {
		s, err := Parse("d", map[string]string{
			"autoscale.io/min-replicas": min, "autoscale.io/max-replicas": max, "autoscale.io/thresholds": thresholds,
			"autoscale.io/cooldown": cooldown, "autoscale.io/ema-alpha": alpha, "autoscale.io/interval": interval,
			"autoscale.io/query": query,
		}, nil)
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("error does not wrap ErrInvalidSpec: %v", err)
			}
			return
		}
		if s.MinReplicas < 1 || s.MaxReplicas < s.MinReplicas || s.EMAAlpha <= 0 || s.EMAAlpha > 1 || s.Interval < time.Second {
			t.Fatalf("accepted an invalid spec: %+v", s)
		}
		// An accepted query renders in one pass over its text: no action
		// may loop or repeat, so the longest rendering is every byte a
		// field of the longest name.
		if r, err := s.RenderQuery("ns", strings.Repeat("d", 253)); err == nil && len(r) > len(query)*253 {
			t.Fatalf("query of %d bytes rendered to %d", len(query), len(r))
		}
		// A valid spec never decides below min or above max.
		d, _ := Decide(t0, s, State{}, Input{Current: s.MinReplicas, RPS: 1e6})
		if d.Desired < s.MinReplicas || d.Desired > s.MaxReplicas {
			t.Fatalf("desired %d outside [%d, %d]", d.Desired, s.MinReplicas, s.MaxReplicas)
		}
	})
}

// TestReferenceListsEverySetting: docs/REFERENCE.md's annotation table has
// a row for every setting, with its built-in default.
func TestReferenceListsEverySetting(t *testing.T) {
	data, err := os.ReadFile("../../docs/REFERENCE.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // key -> its table row
	for _, line := range strings.Split(string(data), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		for _, k := range strings.Split(cells[1], ",") {
			if k = strings.TrimSpace(k); strings.HasPrefix(k, "`") {
				rows[strings.Trim(k, "`")] = line
			}
		}
	}
	for _, s := range Settings() {
		row, ok := rows[s.Key]
		if !ok {
			t.Errorf("docs/REFERENCE.md has no row for %s", s.Key)
			continue
		}
		if !strings.Contains(row, s.Default) {
			t.Errorf("docs/REFERENCE.md's row for %s does not give its default %q: %s", s.Key, s.Default, row)
		}
	}
}

// hostileService is the injection the audit found: a service value that
// closes its label matcher and adds another namespace's series.
const hostileService = `x"}[1m])) or sum(rate(http_requests_total{namespace="other",service="payments"}[1m])) or vector(0) or sum(rate(y{a="`

func TestAServiceThatIsNotADNSLabelIsRejected(t *testing.T) {
	for _, svc := range []string{hostileService, "Web", "web_1", "-web", strings.Repeat("a", 64), "a\nb", "web.default"} {
		_, err := Parse("web", map[string]string{AnnotationPrefix + KeyReactive: "true", AnnotationPrefix + KeyService: svc}, nil)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Key != KeyService {
			t.Errorf("service %q: error %v, want a FieldError on %s", svc, err, KeyService)
		}
	}
	if s, err := Parse("web", map[string]string{AnnotationPrefix + KeyService: "web-1"}, nil); err != nil || s.Service != "web-1" {
		t.Errorf("service web-1: %v, %+v", err, s)
	}
}

func TestRenderQueryRefusesNamesThatAreNotKubernetesNames(t *testing.T) {
	s, err := Parse("web", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q, err := s.RenderQuery("shop", "web.v2"); err != nil || q != `sum(rate(http_requests_total{namespace="shop",service="web"}[1m]))` {
		t.Errorf("RenderQuery(shop, web.v2) = %q, %v", q, err)
	}
	for _, tc := range []struct{ ns, name, svc string }{
		{`shop"} or up{namespace="other`, "web", "web"},
		{"shop", `web"}`, "web"},
		{"shop", "web", hostileService},
	} {
		s.Service = tc.svc
		if q, err := s.RenderQuery(tc.ns, tc.name); err == nil {
			t.Errorf("RenderQuery(%q, %q) with service %q = %q, want an error", tc.ns, tc.name, tc.svc, q)
		}
	}
}

func TestEscapeString(t *testing.T) {
	for in, want := range map[string]string{`web`: `web`, `a"b`: `a\"b`, `a\b`: `a\\b`, "a\nb": `a\nb`, "\x1b[2J": `\x1b[2J`} {
		if got := EscapeString(in); got != want {
			t.Errorf("EscapeString(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAnnotationsThatCannotMeanWhatTheySayAreNotSilent(t *testing.T) {
	ann := func(kv ...string) map[string]string {
		m := map[string]string{AnnotationPrefix + KeyReactive: "true"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[AnnotationPrefix+kv[i]] = kv[i+1]
		}
		return m
	}
	s, err := Parse("web", ann("colldown", "5m", "max-replica", "20", "notes", "hello", "status", "{}"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"unknown annotation autoscale.io/colldown (did you mean autoscale.io/cooldown?); it is ignored",
		"unknown annotation autoscale.io/max-replica (did you mean autoscale.io/max-replicas?); it is ignored",
		"unknown annotation autoscale.io/notes; it is ignored",
	}
	if diff := cmp.Diff(want, s.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	for kv, rule := range map[[2]string]string{
		{KeyThresholds, ""}:         "is empty",
		{KeyThresholds, "  "}:       "is empty",
		{KeyService, ""}:            "is empty",
		{KeyInterval, "87600h"}:     "at most 1h",
		{KeyCooldown, "8760h"}:      "at most 24h",
		{KeyScaleUpCooldown, "48h"}: "at most 24h",
	} {
		_, err := Parse("web", ann(kv[0], kv[1]), nil)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Key != kv[0] || !strings.Contains(fe.Rule, rule) {
			t.Errorf("%s=%q: %v, want a FieldError %q", kv[0], kv[1], err, rule)
		}
	}
}

func TestATableThatCannotReachMaxReplicasSaysSo(t *testing.T) {
	for _, c := range []struct {
		name      string
		ann       []string
		defaults  map[string]string
		reach     int32
		wantStart string // "" = no warning
	}{
		{"every built-in default: the seed contract", nil, nil, 5, ""},
		{"max-replicas above the seed table", []string{KeyMaxReplicas, "20"}, nil, 5, "no sizing set: the built-in seed table"},
		{"max-replicas from the controller's defaults", nil, map[string]string{KeyMaxReplicas: "20"}, 5, "no sizing set"},
		{"profile recommended without a size", []string{KeyProfile, "recommended"}, nil, 5, "profile recommended sets timing, query and forecast, not size"},
		{"profile recommended with a size", []string{KeyProfile, "recommended", KeyMaxReplicas, "20", KeyTargetRPSPerReplica, "17.5"}, nil, 20, ""},
		{"thresholds ending on inf below max", []string{KeyThresholds, "1:10/0,2:inf/5", KeyMaxReplicas, "4"}, nil, 2, "the thresholds end at 2 replicas with UP=inf, below max-replicas 4"},
		{"thresholds ending on a finite UP go on", []string{KeyThresholds, "1:10/0,2:20/5", KeyMaxReplicas, "4"}, nil, 4, ""},
		{"max-replicas at the table's end", []string{KeyMaxReplicas, "5"}, nil, 5, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			ann := map[string]string{AnnotationPrefix + KeyReactive: "true"}
			for i := 0; i+1 < len(c.ann); i += 2 {
				ann[AnnotationPrefix+c.ann[i]] = c.ann[i+1]
			}
			s, err := Parse("web", ann, c.defaults)
			if err != nil {
				t.Fatal(err)
			}
			if s.Reach != c.reach {
				t.Errorf("reach %d, want %d", s.Reach, c.reach)
			}
			switch {
			case c.wantStart == "" && s.SizingWarning != "":
				t.Errorf("warning %q, want none", s.SizingWarning)
			case c.wantStart != "" && !strings.HasPrefix(s.SizingWarning, c.wantStart):
				t.Errorf("warning %q, want it to start %q", s.SizingWarning, c.wantStart)
			case c.wantStart != "" && !strings.Contains(s.SizingWarning, AnnotationPrefix+KeyTargetRPSPerReplica):
				t.Errorf("warning %q does not name the setting that sizes the table", s.SizingWarning)
			}
		})
	}
}

// TestAQueryTemplateMayOnlyNameFields: text/template is a language, and an
// annotation must not run one inside the controller (a range of 3e9 held a
// worker for 51 s of CPU; a printf width allocates what it says). The query
// is judged on its raw text before it is parsed: only {{.Namespace}},
// {{.Deployment}} and {{.Service}} actions, every other one refused with
// the annotation's error, and the error quotes a bounded part of the value.
func TestAQueryTemplateMayOnlyNameFields(t *testing.T) {
	hostile := []string{
		`{{range 3}}{{end}}up`,
		`{{range 3000000000}}{{end}}up`,
		`{{range 300000000}}{{$.Deployment}}{{end}}up`,
		`{{printf "%0999999999d" 1}}up`,
		`{{define "q"}}{{template "q"}}{{end}}{{template "q"}}up`,
		`up{namespace="{{.Namespace | printf "%s"}}"}`,
		`up{namespace="{{with .Namespace}}{{.}}{{end}}"}`,
		`up{namespace="{{- .Namespace -}}"}`,
		`{{/* a comment */}}up`,
		`{{"up"}}`,
		`{{{.Namespace}}`,
		`up{namespace="{{.Namespace}}"}}}`,
		`up{namespace="{{.Namespace}}{{"}`,
		`sum(rate(x[1m]))` + strings.Repeat(" + 0", MaxQueryLength/4),
	}
	for _, q := range hostile {
		_, err := Parse("web", map[string]string{"autoscale.io/query": q}, nil)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Key != KeyQuery || fe.Source != "annotation" {
			t.Errorf("query %.60q: error %v, want the query annotation refused", q, err)
			continue
		}
		if n := len(err.Error()); n > 2*maxQuoted+len(queryRule)+200 {
			t.Errorf("query %.60q: the error is %d bytes; an Event that quotes it must stay small", q, n)
		}
	}
	allowed := []string{
		`sum(rate(http_requests_total{namespace="{{ .Namespace }}",service=~"{{.Service}}|{{.Deployment}}"}[5m]))`,
		`up{job="a{1}"} + on() vector({{.Deployment}})`,
		DefaultQuery, FastQuery,
	}
	for _, name := range MetricSourceNames() {
		src, _ := MetricSourceNamed(name)
		allowed = append(allowed, src.Query(false), src.Query(true))
	}
	for _, q := range allowed {
		if _, err := Parse("web", map[string]string{"autoscale.io/query": q}, nil); err != nil {
			t.Errorf("query %q refused: %v", q, err)
		}
	}
}

// TestALongValueIsQuotedShort: an annotation may hold 256 KiB; the error
// that names it goes into an Event and the workload's status, which must
// stay within what the API server accepts, so it quotes the value's start
// and says how long it was.
func TestALongValueIsQuotedShort(t *testing.T) {
	long := strings.Repeat("é", 20<<10) // 40 KiB, a rune cut in half would be invalid UTF-8
	_, err := Parse("web", map[string]string{"autoscale.io/thresholds": long, "autoscale.io/cooldown": long}, nil)
	if err == nil {
		t.Fatal("a 40 KiB threshold table was accepted")
	}
	msg := err.Error()
	if len(msg) > 4*maxQuoted+1000 {
		t.Errorf("the error is %d bytes for two 40 KiB values", len(msg))
	}
	if !strings.Contains(msg, fmt.Sprintf("(%d bytes)", len(long))) || !utf8.ValidString(msg) {
		t.Errorf("the error does not say how long the value was, or is not UTF-8: %.300s", msg)
	}
}
