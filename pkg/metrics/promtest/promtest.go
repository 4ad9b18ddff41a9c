// Package promtest is an httptest Prometheus for tests: it answers the
// instant-query API with whatever the test sets, including the awkward cases
// (errors, 5xx, hangs, empty results, NaN, Inf, many series, stale samples).
package promtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Answer is how the server replies to the next queries.
type Answer struct {
	Status int           // HTTP status; 0 means 200
	Body   string        // raw body; empty means built from Values
	Delay  time.Duration // wait before answering (honours the client's cancel)
	// Values are the sample values of a vector result, one series each;
	// "NaN", "+Inf" and "-Inf" are allowed as Prometheus writes them.
	Values []string
	// Age is how old the newest sample of each series is at the query
	// time. As in Prometheus, an instant result is stamped with the
	// evaluation time whatever its sample's age, and a series whose sample
	// is older than the lookback delta (the query's lookback_delta, else
	// Prometheus' default of 5m) is left out of the result.
	Age time.Duration
	// History are the values a range query returns (one series, one value
	// per step, oldest first); empty means an empty matrix.
	History []string
	// Model, when set, answers every query from a model of the world: the
	// value of query at the (millisecond-rounded) evaluation time; false
	// is no sample (an empty result, or a step left out of a range).
	Model func(query string, at time.Time) (float64, bool)
	// Grouped, when set, is a query grouped by namespace and service, keyed
	// "namespace/service" (a key without "/" is a service alone): one series per
	// service with this value, for instant queries, and for range queries
	// that value at every step.
	Grouped map[string]string
	// GroupLabels name the labels of Grouped's keys, a part each between
	// "/" (one label: the whole key); empty = namespace and service.
	GroupLabels []string
}

// Value is an Answer with one series of value v.
func Value(v float64) Answer { return Answer{Values: []string{strconv.FormatFloat(v, 'f', -1, 64)}} }

// Server is a fake Prometheus. The zero Answer is one series of value 0.
type Server struct {
	*httptest.Server
	mu      sync.Mutex
	answer  Answer
	byQuery map[string]Answer
	queries atomic.Int64
	ranges  atomic.Int64
	last    atomic.Value // string
	// answered is signalled after every query received (WaitQueries).
	answered chan struct{}
}

// New starts a fake Prometheus; Close it when done.
func New() *Server {
	s := &Server{answer: Value(0), byQuery: map[string]Answer{}, answered: make(chan struct{}, 1)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Set makes every query (without an answer of its own) get a.
func (s *Server) Set(a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = a
}

// SetFor makes query q get a.
func (s *Server) SetFor(q string, a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byQuery[q] = a
}

// RangeQueries returns how many range queries were answered.
func (s *Server) RangeQueries() int64 { return s.ranges.Load() }

func parseTime(t string) time.Time {
	if f, err := strconv.ParseFloat(t, 64); err == nil {
		return time.Unix(0, int64(f*1e9))
	}
	if p, err := time.Parse(time.RFC3339Nano, t); err == nil {
		return p
	}
	return time.Time{}
}

// DefaultLookback is Prometheus' default lookback delta
// (--query.lookback-delta).
const DefaultLookback = 5 * time.Minute

// lookback is the request's lookback_delta (a duration or a number of
// seconds, as Prometheus takes it), else DefaultLookback.
func lookback(r *http.Request) time.Duration {
	v := r.Form.Get("lookback_delta")
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
		return time.Duration(f * float64(time.Second))
	}
	return DefaultLookback
}

// Queries returns how many queries were answered or attempted.
func (s *Server) Queries() int64 { return s.queries.Load() }

// WaitQueries waits until the server has received at least n queries,
// for at most d, and reports whether it has: for queries made off the
// caller's path (a read in the background).
func (s *Server) WaitQueries(n int64, d time.Duration) bool {
	deadline := time.After(d)
	for s.queries.Load() < n {
		select {
		case <-s.answered:
		case <-deadline:
			return false
		}
	}
	return true
}

// LastQuery returns the text of the latest query.
func (s *Server) LastQuery() string { q, _ := s.last.Load().(string); return q }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" && r.URL.Path != "/api/v1/query_range" {
		http.NotFound(w, r)
		return
	}
	s.queries.Add(1)
	select {
	case s.answered <- struct{}{}:
	default:
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q := r.Form.Get("query")
	s.last.Store(q)
	s.mu.Lock()
	a, ok := s.byQuery[q]
	if !ok {
		a = s.answer
	}
	s.mu.Unlock()
	if a.Delay > 0 {
		select {
		case <-time.After(a.Delay):
		case <-r.Context().Done():
			return
		}
	}
	ts := parseTime(r.Form.Get("time"))
	if ts.IsZero() {
		ts = parseTime(r.Form.Get("end"))
	}
	if ts.IsZero() {
		ts = time.Now()
	}
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	body := a.Body
	if a.Model != nil && body == "" && status == http.StatusOK {
		body = modelBody(a.Model, q, r)
	}
	if body == "" && status == http.StatusOK && r.URL.Path == "/api/v1/query_range" {
		s.ranges.Add(1)
		body = rangeBody(a, r, ts)
	} else if body == "" && status == http.StatusOK && a.Age > lookback(r) {
		body = `{"status":"success","data":{"resultType":"vector","result":[]}}`
	} else if body == "" && status == http.StatusOK && a.Grouped != nil {
		at := float64(ts.UnixMilli()) / 1000
		result := ""
		for svc, v := range a.Grouped {
			if result != "" {
				result += ","
			}
			result += fmt.Sprintf(`{"metric":%s,"value":[%.3f,%q]}`, groupLabels(svc, a.GroupLabels), at, v)
		}
		body = fmt.Sprintf(`{"status":"success","data":{"resultType":"vector","result":[%s]}}`, result)
	} else if body == "" && status == http.StatusOK {
		at := float64(ts.UnixMilli()) / 1000
		result := ""
		for i, v := range a.Values {
			if i > 0 {
				result += ","
			}
			result += fmt.Sprintf(`{"metric":{"series":"%d"},"value":[%.3f,%q]}`, i, at, v)
		}
		body = fmt.Sprintf(`{"status":"success","data":{"resultType":"vector","result":[%s]}}`, result)
	} else if body == "" {
		body = fmt.Sprintf(`{"status":"error","errorType":"internal","error":"fake prometheus answered %d"}`, status)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

// modelBody answers an instant or range query from model.
func modelBody(model func(string, time.Time) (float64, bool), q string, r *http.Request) string {
	point := func(at time.Time) (string, bool) {
		at = at.Round(time.Millisecond)
		v, ok := model(q, at)
		if !ok {
			return "", false
		}
		return fmt.Sprintf(`[%.3f,%q]`, float64(at.UnixMilli())/1000, strconv.FormatFloat(v, 'f', -1, 64)), true
	}
	if r.URL.Path == "/api/v1/query" {
		p, ok := point(parseTime(r.Form.Get("time")))
		if !ok {
			return `{"status":"success","data":{"resultType":"vector","result":[]}}`
		}
		return fmt.Sprintf(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":%s}]}}`, p)
	}
	start, end := parseTime(r.Form.Get("start")).Round(time.Millisecond), parseTime(r.Form.Get("end")).Round(time.Millisecond)
	stepS, err := strconv.ParseFloat(r.Form.Get("step"), 64)
	if err != nil || stepS <= 0 {
		stepS = 1
	}
	step := time.Duration(stepS * float64(time.Second)).Round(time.Millisecond)
	var pts []string
	for at := start; !at.After(end); at = at.Add(step) {
		if p, ok := point(at); ok {
			pts = append(pts, p)
		}
	}
	if len(pts) == 0 {
		return `{"status":"success","data":{"resultType":"matrix","result":[]}}`
	}
	return fmt.Sprintf(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[%s]}]}}`, strings.Join(pts, ","))
}

// groupLabels is the label set of a grouped series' key.
func groupLabels(key string, names []string) string {
	if len(names) == 1 {
		return fmt.Sprintf(`{%q:%q}`, names[0], key)
	}
	if parts := strings.SplitN(key, "/", len(names)); len(names) > 1 && len(parts) == len(names) {
		labels := make([]string, len(names))
		for i, n := range names {
			labels[i] = fmt.Sprintf("%q:%q", n, parts[i])
		}
		return "{" + strings.Join(labels, ",") + "}"
	}
	if ns, svc, ok := strings.Cut(key, "/"); ok {
		return fmt.Sprintf(`{"namespace":%q,"service":%q}`, ns, svc)
	}
	return fmt.Sprintf(`{"service":%q}`, key)
}

// rangeBody answers a range query from a's Grouped or History.
func rangeBody(a Answer, r *http.Request, ts time.Time) string {
	step, err := strconv.ParseFloat(r.Form.Get("step"), 64)
	if err != nil || step <= 0 {
		step = 1
	}
	if a.Grouped != nil {
		start := parseTime(r.Form.Get("start"))
		series := ""
		for svc, v := range a.Grouped {
			pts := ""
			for t := float64(start.Unix()); t <= float64(ts.Unix()); t += step {
				if pts != "" {
					pts += ","
				}
				pts += fmt.Sprintf(`[%.3f,%q]`, t, v)
			}
			if series != "" {
				series += ","
			}
			series += fmt.Sprintf(`{"metric":%s,"values":[%s]}`, groupLabels(svc, a.GroupLabels), pts)
		}
		return fmt.Sprintf(`{"status":"success","data":{"resultType":"matrix","result":[%s]}}`, series)
	}
	points := ""
	for i, v := range a.History {
		if i > 0 {
			points += ","
		}
		points += fmt.Sprintf(`[%.3f,%q]`, float64(ts.Unix())-step*float64(len(a.History)-1-i), v)
	}
	result := ""
	if len(a.History) > 0 {
		result = fmt.Sprintf(`{"metric":{},"values":[%s]}`, points)
	}
	return fmt.Sprintf(`{"status":"success","data":{"resultType":"matrix","result":[%s]}}`, result)
}
