// Package predictstub is a predictor speaking docs/REFERENCE.md section 4's protocol,
// for tests and the demo (cmd/predictor-stub serves it). Its mode can be
// changed while it runs: POST /mode?mode=fail.
package predictstub

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// Modes.
const (
	// Echo predicts the current rate: rps = currentRPS.
	Echo = "echo"
	// Fixed answers Replicas whatever the load.
	Fixed = "fixed"
	// Lag predicts the rate measured Lag before the request (from its
	// history): a model that is always that late.
	Lag = "lag"
	// Trace predicts Trace(t + horizon), t being the last history sample's
	// time: perfect foresight when Trace is what the service will see.
	Trace = "trace"
	// Fail answers 500.
	Fail = "fail"
	// Timeout answers after Delay (default 1 min), or when the caller gives up.
	Timeout = "timeout"
	// Garbage answers 200 with a body that is not a valid answer.
	Garbage = "garbage"
)

// Modes lists every mode.
var Modes = []string{Echo, Fixed, Lag, Trace, Fail, Timeout, Garbage}

// Stub is an http.Handler serving POST /predict and POST /mode.
type Stub struct {
	mu         sync.Mutex
	mode       string
	Replicas   int32                     // Fixed
	PerReplica float64                   // replicas = ceil(rps / PerReplica), when > 0
	LagBy      time.Duration             // Lag
	Trace      func(t time.Time) float64 // Trace
	Delay      time.Duration             // Timeout
	requests   int
}

// New returns a stub in mode.
func New(mode string) *Stub { return &Stub{mode: mode} }

// SetMode switches the mode.
func (s *Stub) SetMode(mode string) {
	s.mu.Lock()
	s.mode = mode
	s.mu.Unlock()
}

// Requests returns how many predictions were asked for.
func (s *Stub) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/mode":
		s.serveMode(w, r)
	case "/predict":
		s.servePredict(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Stub) serveMode(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	mode := r.FormValue("mode")
	valid := false
	for _, m := range Modes {
		valid = valid || m == mode
	}
	if !valid {
		http.Error(w, fmt.Sprintf("mode must be one of %v", Modes), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := r.FormValue("replicas"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			http.Error(w, "replicas must be an integer", http.StatusBadRequest)
			return
		}
		s.Replicas = int32(n)
	}
	s.mode = mode
	fmt.Fprintln(w, mode)
}

func (s *Stub) servePredict(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	var req scaler.PredictRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests++
	mode, fixed, per, lag, trace, delay := s.mode, s.Replicas, s.PerReplica, s.LagBy, s.Trace, s.Delay
	s.mu.Unlock()

	var rps float64
	switch mode {
	case Fail:
		http.Error(w, "the model is down", http.StatusInternalServerError)
		return
	case Timeout:
		if delay == 0 {
			delay = time.Minute
		}
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		rps = req.CurrentRPS
	case Garbage:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"replicas": "a few", "rps": -1}`)
		return
	case Fixed:
		writeAnswer(w, map[string]any{"replicas": fixed})
		return
	case Lag:
		rps = req.CurrentRPS
		if n := len(req.History); n > 0 {
			at := req.History[n-1].T - lag.Seconds()
			for _, h := range req.History {
				if h.T <= at {
					rps = h.RPS
				}
			}
			if req.History[0].T > at {
				rps = req.History[0].RPS
			}
		}
	case Trace:
		if trace == nil || len(req.History) == 0 {
			http.Error(w, "trace mode needs a trace and a history", http.StatusInternalServerError)
			return
		}
		last := req.History[len(req.History)-1].T
		at := time.Unix(0, int64(last*1e9)).Add(time.Duration(req.HorizonSeconds) * time.Second)
		rps = trace(at)
	default: // Echo
		rps = req.CurrentRPS
	}
	replicas := req.CurrentReplicas
	if per > 0 {
		replicas = int32(max(1, math.Ceil(rps/per)))
	}
	writeAnswer(w, map[string]any{"replicas": replicas, "rps": rps})
}

func writeAnswer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
