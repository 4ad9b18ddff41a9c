package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
)

// TestALongGroupedReadIsMadeOfDayLongQueries: a read of two days and an
// hour at a 1-minute step is range queries of at most RangeChunk each, and
// every target gets each step's value once, in order, at its own time; a
// target with a gap has the gap left out, as in one query.
func TestALongGroupedReadIsMadeOfDayLongQueries(t *testing.T) {
	end := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	gapFrom, gapTo := end.Add(-30*time.Hour), end.Add(-29*time.Hour)
	var mu sync.Mutex
	var spans []time.Duration
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f := func(k string) float64 { v, _ := strconv.ParseFloat(r.Form.Get(k), 64); return v }
		start, stop, step := f("start"), f("end"), f("step")
		mu.Lock()
		spans = append(spans, time.Duration((stop-start)*float64(time.Second)))
		mu.Unlock()
		var a, b, c []string
		for ts := start; ts <= stop; ts += step {
			// a's value is its minute of the day: each step tells where it is.
			a = append(a, fmt.Sprintf(`[%.3f,"%d"]`, ts, int(ts)/60%1440))
			if at := time.Unix(int64(ts), 0); at.Before(gapFrom) || !at.Before(gapTo) {
				b = append(b, fmt.Sprintf(`[%.3f,"7"]`, ts))
			}
			if !time.Unix(int64(ts), 0).Before(end.Add(-3 * time.Hour)) {
				c = append(c, fmt.Sprintf(`[%.3f,"9"]`, ts))
			}
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"matrix","result":[`+
			`{"metric":{"namespace":"shop","service":"a"},"values":[%s]},{"metric":{"namespace":"shop","service":"b"},"values":[%s]},`+
			`{"metric":{"namespace":"shop","service":"c"},"values":[%s]}]}}`,
			strings.Join(a, ","), strings.Join(b, ","), strings.Join(c, ","))
	}))
	defer srv.Close()
	c, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	batch := NewBatch(NewSource(promv1.NewAPI(c), time.Second, nil), "grouped", "namespace", "service")
	n := 2*1440 + 60
	got, err := batch.History(context.Background(), "shop/a", end, time.Minute, n)
	if err != nil {
		t.Fatal(err)
	}
	if want := (n + int(RangeChunk/time.Minute)) / int(RangeChunk/time.Minute); len(spans) != want {
		t.Fatalf("%d range queries, want %d", len(spans), want)
	}
	for _, sp := range spans {
		if sp >= RangeChunk {
			t.Errorf("a range query spans %v, want less than %v", sp, RangeChunk)
		}
	}
	if len(got) != n+1 {
		t.Fatalf("a: %d samples, want %d", len(got), n+1)
	}
	for i, s := range got {
		at := end.Add(-time.Duration(n-i) * time.Minute)
		if s.T != float64(at.Unix()) || s.RPS != float64(at.Unix()/60%1440) {
			t.Fatalf("a's sample %d = %+v, want %v at %d", i, s, float64(at.Unix()/60%1440), at.Unix())
		}
	}
	gb, err := batch.History(context.Background(), "shop/b", end, time.Minute, n)
	if err != nil {
		t.Fatal(err)
	}
	if queries := len(spans); queries != (n+int(RangeChunk/time.Minute))/int(RangeChunk/time.Minute) {
		t.Errorf("b's read ran more queries (%d in all), want the shared answer", queries)
	}
	if len(gb) != n+1-60 {
		t.Errorf("b: %d samples, want %d (an hour's gap left out)", len(gb), n+1-60)
	}
	for _, s := range gb {
		if at := time.Unix(int64(s.T), 0); !at.Before(gapFrom) && at.Before(gapTo) {
			t.Fatalf("b has a sample in its gap: %+v", s)
		}
	}
}

// TestAYoungSeriesKeepsOnlyWhatItHas: in a long read, a series that
// starts three hours before the end holds three hours of values, not the
// whole span's.
func TestAYoungSeriesKeepsOnlyWhatItHas(t *testing.T) {
	end := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f := func(k string) float64 { v, _ := strconv.ParseFloat(r.Form.Get(k), 64); return v }
		var c []string
		for ts := f("start"); ts <= f("end"); ts += f("step") {
			if !time.Unix(int64(ts), 0).Before(end.Add(-3 * time.Hour)) {
				c = append(c, fmt.Sprintf(`[%.3f,"9"]`, ts))
			}
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"namespace":"shop","service":"c"},"values":[%s]}]}}`, strings.Join(c, ","))
	}))
	defer srv.Close()
	cl, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	batch := NewBatch(NewSource(promv1.NewAPI(cl), time.Second, nil), "grouped", "namespace", "service")
	n := 7 * 1440
	res, err := batch.runChunked(context.Background(), end, time.Minute, n)
	if err != nil {
		t.Fatal(err)
	}
	d := res.dense["shop/c"]
	if len(d.values) != 181 || d.first != n-180 {
		t.Errorf("a 3-hour series holds %d values from step %d, want 181 from %d", len(d.values), d.first, n-180)
	}
	if got := res.of("shop/c"); len(got) != 181 || got[0].T != float64(end.Add(-3*time.Hour).Unix()) || got[180].RPS != 9 {
		t.Errorf("its samples: %d, first at %v", len(got), got[0].T)
	}
}

// TestARangeAnswerKeepsOnlyItsTargetsSeries: a grouped range answer holds
// every series of the metric, and whoever runs an exporter can add some
// (1,000 foreign series held 43.8 MB for a week's read). A short and a
// long (chunked) read keep only the series of the Batch's Keys; without
// Keys, at most MaxHistorySeries.
func TestARangeAnswerKeepsOnlyItsTargetsSeries(t *testing.T) {
	end := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	foreign := 1000
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f := func(k string) float64 { v, _ := strconv.ParseFloat(r.Form.Get(k), 64); return v }
		var values []string
		for ts := f("start"); ts <= f("end"); ts += f("step") {
			values = append(values, fmt.Sprintf(`[%.3f,"5"]`, ts))
		}
		vs := strings.Join(values, ",")
		series := []string{fmt.Sprintf(`{"metric":{"namespace":"shop","service":"a"},"values":[%s]}`, vs)}
		for i := range foreign {
			series = append(series, fmt.Sprintf(`{"metric":{"namespace":"attacker","service":"s%d"},"values":[%s]}`, i, vs))
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"matrix","result":[%s]}}`, strings.Join(series, ","))
	}))
	defer srv.Close()
	cl, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	held := func(b *Batch) int {
		n := 0
		for _, r := range b.ranges {
			if r.val != nil {
				n += len(r.val.samples) + len(r.val.dense)
			}
		}
		return n
	}
	for _, n := range []int{10, 7 * 24 * 6} { // 10 minutes; a week at 10 minutes, in chunks
		batch := NewBatch(NewSource(promv1.NewAPI(cl), time.Second, nil), "grouped", "namespace", "service")
		batch.Keys = func() map[string]bool { return map[string]bool{"shop/a": true, "shop/gone": true} }
		step := time.Minute
		if n > 10 {
			step = 10 * time.Minute
		}
		got, err := batch.History(context.Background(), "shop/a", end, step, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n+1 {
			t.Errorf("n=%d: shop/a has %d samples, want %d", n, len(got), n+1)
		}
		if h := held(batch); h != 1 {
			t.Errorf("n=%d: the answer holds %d series, want 1 (shop/a's; the %d foreign ones dropped)", n, h, foreign)
		}
		if got, _ := batch.History(context.Background(), "attacker/s1", end, step, n); len(got) != 0 {
			t.Errorf("n=%d: a foreign key read %d samples from the shared answer", n, len(got))
		}
	}
	foreign = MaxHistorySeries + 10
	batch := NewBatch(NewSource(promv1.NewAPI(cl), time.Second, nil), "grouped", "namespace", "service")
	if _, err := batch.History(context.Background(), "shop/a", end, time.Minute, 2); err != nil {
		t.Fatal(err)
	}
	if h := held(batch); h != MaxHistorySeries {
		t.Errorf("without Keys the answer holds %d series, want at most %d", h, MaxHistorySeries)
	}
}

// TestAGroupedAnswerWithWarningsIsNoData: a store that fans out (Thanos
// query) answers the grouped query with the series it reached and a
// warning for the stores it did not. Every target reads that as no data
// (reason partial), the service that is in the answer too, since its sum
// may be missing pods; and the range read fails rather than teach the
// forecaster a history with holes.
func TestAGroupedAnswerWithWarningsIsNoData(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.URL.Path == "/api/v1/query_range" {
			fmt.Fprintf(w, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"namespace":"shop","service":"a"},"values":[[%s,"9"]]}]},"warnings":["store 2 unreachable"]}`, r.Form.Get("end"))
			return
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"namespace":"shop","service":"a"},"value":[%s,"9"]}]},"warnings":["store 2 unreachable","store 3 unreachable"]}`, r.Form.Get("time"))
	}))
	defer srv.Close()
	cl, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	batch := NewBatch(NewSource(promv1.NewAPI(cl), time.Second, nil), "grouped", "namespace", "service")
	now := time.Now()
	for _, key := range []string{"shop/a", "shop/b"} {
		v, err := batch.Rate(context.Background(), key, now, time.Minute)
		var nd *NoDataError
		if !errors.As(err, &nd) || nd.Reason != ReasonPartial || !strings.Contains(err.Error(), "store 2 unreachable (and 1 more)") {
			t.Errorf("%s: Rate = %v, %v; want no data, reason partial, naming the first warning and counting the other", key, v, err)
		}
	}
	if got, err := batch.History(context.Background(), "shop/a", now, time.Minute, 10); err == nil || !strings.Contains(err.Error(), "store 2 unreachable") {
		t.Errorf("History = %v, %v; want an error naming the warning", got, err)
	}
}
