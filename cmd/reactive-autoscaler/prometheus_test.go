package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics"
	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
)

// seenRequest is what a multi-tenant Prometheus front (Mimir, Cortex,
// Thanos) would check on a request.
type seenRequest struct{ path, tenant, authorization string }

// recordingFront records every request's credentials and passes it on to
// the fake Prometheus.
func recordingFront(t *testing.T, prom *promtest.Server) (*httptest.Server, func() []seenRequest) {
	t.Helper()
	var mu sync.Mutex
	var seen []seenRequest
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, seenRequest{r.URL.Path, r.Header.Get("X-Scope-OrgID"), r.Header.Get("Authorization")})
		mu.Unlock()
		prom.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	return front, func() []seenRequest {
		mu.Lock()
		defer mu.Unlock()
		out := seen
		seen = nil
		return out
	}
}

// TestPrometheusHTTPConfigReachesEveryQuery: the config file's
// prometheusHTTPConfig (a tenant header and a bearer token file) is on every
// request the controller makes: a target's own query, the grouped query,
// and both range queries of the warm-up; a rotated token file is read
// without a restart.
func TestPrometheusHTTPConfigReachesEveryQuery(t *testing.T) {
	prom := promtest.New()
	defer prom.Close()
	prom.SetFor(scaler.GroupedDefaultQuery, promtest.Answer{Grouped: map[string]string{"shop/web": "7"}, History: []string{"6", "7"}})
	prom.Set(promtest.Answer{Values: []string{"5"}, History: []string{"4", "5"}})
	front, seen := recordingFront(t, prom)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parse(t, fmt.Sprintf(`prometheusURL: %s
prometheusHTTPConfig:
  authorization:
    credentials_file: %s
  http_headers:
    X-Scope-OrgID:
      values: [tenant-a]
`, front.URL, tokenFile))
	if err != nil {
		t.Fatal(err)
	}
	client, err := prometheusClient(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, now := context.Background(), time.Now()
	src := metrics.NewSource(promv1.NewAPI(client), 2*time.Second, nil)
	batch := metrics.NewBatch(src, scaler.GroupedDefaultQuery, "namespace", "service")
	queryAll := func() {
		t.Helper()
		if v, err := src.Rate(ctx, "sum(rate(http_requests_total[1m]))", now, time.Minute); err != nil || v != 5 {
			t.Fatalf("a target's query: %v, %v", v, err)
		}
		if v, err := batch.Rate(ctx, "shop/web", now, time.Minute); err != nil || v != 7 {
			t.Fatalf("the grouped query: %v, %v", v, err)
		}
		if h, err := src.History(ctx, "sum(rate(http_requests_total[1m]))", now, 30*time.Second, 2); err != nil || len(h) == 0 {
			t.Fatalf("a target's range query: %v, %v", h, err)
		}
		if h, err := batch.History(ctx, "shop/web", now, 30*time.Second, 2); err != nil || len(h) == 0 {
			t.Fatalf("the grouped range query: %v, %v", h, err)
		}
		now = now.Add(time.Minute) // a new tick: the batch asks again
	}
	check := func(token string) {
		t.Helper()
		reqs := seen()
		paths := map[string]int{}
		for _, r := range reqs {
			paths[r.path]++
			if r.tenant != "tenant-a" || r.authorization != "Bearer "+token {
				t.Errorf("%s arrived with X-Scope-OrgID %q and Authorization %q, want tenant-a and Bearer %s", r.path, r.tenant, r.authorization, token)
			}
		}
		if paths["/api/v1/query"] != 2 || paths["/api/v1/query_range"] != 2 {
			t.Errorf("requests %v, want 2 instant and 2 range queries", paths)
		}
	}
	queryAll()
	check("s3cr3t")
	if err := os.WriteFile(tokenFile, []byte("rotated"), 0o600); err != nil {
		t.Fatal(err)
	}
	queryAll()
	check("rotated")
}

// TestHTTPConfigIsReadStrictly: a misspelt key in the block is an error
// naming it, as in Prometheus' own configuration.
func TestHTTPConfigIsReadStrictly(t *testing.T) {
	_, err := parse(t, "prometheusURL: http://p:9090\nprometheusHTTPConfig:\n  basic_auth:\n    username: a\n    pasword: b\n")
	if err == nil || !strings.Contains(err.Error(), "pasword") {
		t.Errorf("a misspelt key: %v, want an error naming it", err)
	}
	_, err = parse(t, "prometheusURL: http://p:9090\npredictorHTTPConfig:\n  bearer_token: a\n  bearer_token_file: b\n")
	if err == nil {
		t.Error("a bearer token and a token file at once were accepted")
	}
}
