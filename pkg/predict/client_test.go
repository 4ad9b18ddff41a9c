package predict

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/predict/predictstub"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

var request = scaler.PredictRequest{
	Namespace: "shop", Deployment: "frontend", Service: "frontend", HorizonSeconds: 300,
	CurrentReplicas: 2, CurrentRPS: 45,
	History: []scaler.Sample{{T: 1000, RPS: 30}, {T: 1030, RPS: 40}, {T: 1060, RPS: 45}},
}

func TestClientSendsTheSpecRequest(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/predict" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s (%s), want POST /predict as JSON", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Error(err)
		}
		w.Write([]byte(`{"replicas": 4, "rps": 70.5, "confidence": 0.9, "model": "tgn-ppo"}`))
	}))
	defer srv.Close()
	p, err := (&Client{URL: srv.URL + "/", Timeout: time.Second}).Predict(context.Background(), request)
	if err != nil {
		t.Fatal(err)
	}
	if !p.HasReplicas || p.Replicas != 4 || !p.HasRPS || p.RPS != 70.5 || p.Source != "external" {
		t.Errorf("prediction = %+v", p)
	}
	for _, k := range []string{"namespace", "deployment", "service", "horizonSeconds", "currentReplicas", "currentRPS", "history"} {
		if _, ok := got[k]; !ok {
			t.Errorf("request lacks %q: %v", k, got)
		}
	}
	if h, _ := got["history"].([]any); len(h) != 3 || h[2].(map[string]any)["t"] != 1060.0 || h[2].(map[string]any)["rps"] != 45.0 {
		t.Errorf("history = %v, want [{t, rps}...] oldest first", got["history"])
	}
}

func TestClientFailures(t *testing.T) {
	body := func(s string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(s)) }
	}
	stub := func(mode string) http.Handler {
		s := predictstub.New(mode)
		s.Delay = time.Minute
		return s
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name    string
		handler http.Handler // nil: the closed server
		url     string
		reason  Reason
		msg     string
	}{
		{"model down (500)", stub(predictstub.Fail), "", ReasonHTTPStatus, "answered 500 Internal Server Error"},
		{"no answer in time", stub(predictstub.Timeout), "", ReasonTimeout, "no answer within 200ms"},
		{"garbage", stub(predictstub.Garbage), "", ReasonInvalidAnswer, `is not the JSON object`},
		{"not JSON", body("<html>oops</html>"), "", ReasonInvalidAnswer, "is not the JSON object"},
		{"no replicas", body(`{"rps": 3}`), "", ReasonInvalidAnswer, `answer has no "replicas"`},
		{"fractional replicas", body(`{"replicas": 3.5}`), "", ReasonInvalidAnswer, "got 3.5"},
		{"negative replicas", body(`{"replicas": -1}`), "", ReasonInvalidAnswer, "got -1"},
		{"absurd replicas", body(`{"replicas": 1e12}`), "", ReasonInvalidAnswer, "got 1e12"},
		{"negative rps", body(`{"replicas": 2, "rps": -3}`), "", ReasonInvalidAnswer, `"rps" must be a finite number >= 0, got -3`},
		{"huge rps", body(`{"replicas": 2, "rps": 1e400}`), "", ReasonInvalidAnswer, `"rps" must be a finite number`},
		{"confidence out of range", body(`{"replicas": 2, "confidence": 7}`), "", ReasonInvalidAnswer, `"confidence" must be a number from 0 to 1`},
		{"two objects", body(`{"replicas": 2}{"replicas": 3}`), "", ReasonInvalidAnswer, "data after its JSON object"},
		{"too large", body(`{"replicas": 2, "pad": "` + strings.Repeat("x", MaxResponseBytes) + `"}`), "", ReasonTooLarge, "larger than 65536 bytes"},
		{"a redirect is not followed", http.RedirectHandler("http://127.0.0.1:1/elsewhere", http.StatusTemporaryRedirect), "", ReasonHTTPStatus, "answered 307"},
		{"unreachable", nil, closed.URL, ReasonUnreachable, "connection refused"},
		{"no URL configured", nil, "-", ReasonNotConfigured, "no --predictor-url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url
			if tc.handler != nil {
				srv := httptest.NewServer(tc.handler)
				defer srv.Close()
				url = srv.URL
			}
			if url == "-" {
				url = ""
			}
			start := time.Now()
			_, err := (&Client{URL: url, Timeout: 200 * time.Millisecond}).Predict(context.Background(), request)
			if err == nil {
				t.Fatal("no error")
			}
			if ReasonOf(err) != tc.reason || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q (reason %q), want reason %q containing %q", err, ReasonOf(err), tc.reason, tc.msg)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("the call took %v; the timeout is 200ms", took)
			}
		})
	}
}

func TestAnswersOutsideTheBoundsAreKept(t *testing.T) {
	// 0 and 50 are honest answers outside a target's [min, max]: the
	// decision bounds them and names them in its reason (pkg/scaler tests).
	for _, in := range []string{`{"replicas": 0}`, `{"replicas": 50}`} {
		if _, err := Decode([]byte(in)); err != nil {
			t.Errorf("Decode(%s): %v", in, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"replicas": 3}`, `{"replicas": 3, "rps": 1.5, "confidence": 0.2}`, `{"replicas": 3.0}`,
		`{"replicas": "3"}`, `[]`, `null`, `{"replicas": 9223372036854775808}`, `{"replicas": 1, "rps": 1e309}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Decode(data)
		if err != nil {
			return
		}
		if !p.HasReplicas || p.Replicas < 0 || p.Replicas > MaxReplicas {
			t.Fatalf("accepted %q as %+v", data, p)
		}
		if p.HasRPS && (p.RPS < 0 || math.IsNaN(p.RPS) || math.IsInf(p.RPS, 0)) {
			t.Fatalf("accepted rps %v from %q", p.RPS, data)
		}
	})
}
