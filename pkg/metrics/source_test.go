package metrics

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
)

func newSource(t *testing.T, srv *promtest.Server, rec *Recorder) *Source {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return NewSource(promv1.NewAPI(c), 200*time.Millisecond, rec)
}

func TestRateClassifiesEveryAwkwardAnswer(t *testing.T) {
	tests := []struct {
		name       string
		answer     promtest.Answer
		want       float64
		wantReason Reason // "" = good sample
		wantText   string
	}{
		{"one series", promtest.Value(42.5), 42.5, "", ""},
		{"scalar", promtest.Answer{Body: `{"status":"success","data":{"resultType":"scalar","result":[` + nowTS() + `,"7"]}}`}, 7, "", ""},
		{"zero is data", promtest.Value(0), 0, "", ""},
		{"bad query (400)", promtest.Answer{Status: 400, Body: `{"status":"error","errorType":"bad_data","error":"parse error"}`}, 0, ReasonQueryError, "parse error"},
		{"server error (503)", promtest.Answer{Status: 503}, 0, ReasonQueryError, "failed"},
		{"timeout", promtest.Answer{Delay: 2 * time.Second, Values: []string{"1"}}, 0, ReasonQueryError, "deadline exceeded"},
		{"garbage body", promtest.Answer{Body: `<html>proxy error</html>`}, 0, ReasonQueryError, "failed"},
		{"empty", promtest.Answer{Values: nil}, 0, ReasonEmpty, "returned no series"},
		{"NaN", promtest.Answer{Values: []string{"NaN"}}, 0, ReasonNaN, "returned NaN"},
		{"+Inf", promtest.Answer{Values: []string{"+Inf"}}, 0, ReasonInf, "returned +Inf"},
		{"-Inf", promtest.Answer{Values: []string{"-Inf"}}, 0, ReasonInf, "returned -Inf"},
		{"negative", promtest.Answer{Values: []string{"-3"}}, 0, ReasonNegative, "negative rate -3"},
		{"two series", promtest.Answer{Values: []string{"1", "2"}}, 0, ReasonMultipleSeries, "returned 2 series"},
		// Prometheus would still read a 3-minute-old sample from its 5m
		// default lookback; the query asks for a 1m one.
		{"sample older than maxAge", promtest.Answer{Values: []string{"5"}, Age: 3 * time.Minute}, 0, ReasonEmpty, "no sample in the last 1m0s"},
		{"sample within maxAge", promtest.Answer{Values: []string{"5"}, Age: 50 * time.Second}, 5, "", ""},
		{"scalar stamped in the past", promtest.Answer{Body: `{"status":"success","data":{"resultType":"scalar","result":[` + ts(time.Now().Add(-2*time.Minute)) + `,"7"]}}`}, 0, ReasonStale, "older than 1m0s"},
		{"matrix", promtest.Answer{Body: `{"status":"success","data":{"resultType":"matrix","result":[]}}`}, 0, ReasonUnsupportedType, "returned a matrix"},
		// Thanos query answers with the stores it reached and a warning
		// for each it did not: part of the sum, not less traffic.
		{"partial answer (warnings)", promtest.Answer{Body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[` + nowTS() + `,"12"]}]},"warnings":["receive series from store 127.0.0.1:10901: rpc error: code = Unavailable"]}`}, 0, ReasonPartial, "answered in part"},
		{"infos are not warnings", promtest.Answer{Body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[` + nowTS() + `,"12"]}]},"infos":["PromQL info: metric might not be a counter"]}`}, 12, "", ""},
		{"string (rejected by the client)", promtest.Answer{Body: `{"status":"success","data":{"resultType":"string","result":[1,"x"]}}`}, 0, ReasonQueryError, "unexpected value type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := promtest.New()
			defer srv.Close()
			srv.Set(tc.answer)
			reg := prometheus.NewPedanticRegistry()
			rec := NewRecorder(reg)
			got, err := newSource(t, srv, rec).Rate(context.Background(), "q", time.Now(), time.Minute)
			if tc.wantReason == "" {
				if err != nil || got != tc.want {
					t.Fatalf("RPS = %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			var nd *NoDataError
			if !errors.As(err, &nd) || !errors.Is(err, ErrNoData) {
				t.Fatalf("RPS error = %v (value %v), want a NoDataError", err, got)
			}
			if nd.Reason != tc.wantReason || !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q (reason %s), want reason %s and text %q", err, nd.Reason, tc.wantReason, tc.wantText)
			}
			if n := testutil.ToFloat64(rec.queryErrors.WithLabelValues(string(tc.wantReason))); n != 1 {
				t.Errorf("metric_query_errors_total{reason=%q} = %v, want 1", tc.wantReason, n)
			}
		})
	}
}

func nowTS() string { return ts(time.Now()) }

func ts(t time.Time) string { return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64) }

func TestMaxAgeIsTwoIntervalsAndAtLeastAMinute(t *testing.T) {
	for _, tc := range []struct{ interval, want time.Duration }{
		{5 * time.Second, time.Minute}, {30 * time.Second, time.Minute}, {45 * time.Second, 90 * time.Second}, {5 * time.Minute, 10 * time.Minute},
	} {
		if got := MaxAge(tc.interval); got != tc.want {
			t.Errorf("MaxAge(%v) = %v, want %v", tc.interval, got, tc.want)
		}
	}
}

func TestHistory(t *testing.T) {
	srv := promtest.New()
	defer srv.Close()
	src := newSource(t, srv, nil)
	end := time.Now()
	srv.Set(promtest.Answer{History: []string{"1", "2.5", "4"}})
	got, err := src.History(context.Background(), "q", end, 30*time.Second, 5)
	if err != nil || len(got) != 3 || got[0].RPS != 1 || got[2].RPS != 4 || got[2].T != float64(end.Unix()) || got[2].T-got[1].T != 30 {
		t.Fatalf("History = %v, %v; want 1, 2.5, 4 at 30 s steps ending at %d", got, err, end.Unix())
	}
	srv.Set(promtest.Answer{})
	if got, err := src.History(context.Background(), "q", end, 30*time.Second, 5); err != nil || len(got) != 0 {
		t.Errorf("no history = %v, %v; want none and no error", got, err)
	}
	srv.Set(promtest.Answer{Status: 503, Body: `{"status":"error","errorType":"internal","error":"down"}`, History: []string{"1"}})
	if _, err := src.History(context.Background(), "q", end, 30*time.Second, 5); err == nil {
		t.Error("a failed range query gave no error")
	}
	srv.Set(promtest.Answer{Body: `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[` + ts(end) + `,"3"]]}]},"warnings":["store unreachable"]}`})
	if got, err := src.History(context.Background(), "q", end, 30*time.Second, 5); err == nil || !strings.Contains(err.Error(), "store unreachable") {
		t.Errorf("a range answer with warnings = %v, %v; want an error naming the warning (a history with holes is not learned from)", got, err)
	}
}
