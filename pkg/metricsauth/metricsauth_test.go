package metricsauth

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// fakeCluster is an API server answering the two reviews (the delegating
// authenticator posts with the REST client, which a fake clientset lacks).
// It knows two tokens: "prom" (user prometheus, allowed to get /metrics) and
// "intruder" (a valid user with no such right).
func fakeCluster(t *testing.T) (kubernetes.Interface, *atomic.Int32, *atomic.Int32) {
	return fakeClusterGated(t, &atomic.Pointer[chan struct{}]{})
}

// fakeClusterGated is fakeCluster whose token reviews, once begun, wait
// until the channel gate points to is closed (none: they do not wait).
func fakeClusterGated(t *testing.T, gate *atomic.Pointer[chan struct{}]) (kubernetes.Interface, *atomic.Int32, *atomic.Int32) {
	t.Helper()
	var reviews, checks atomic.Int32
	users := map[string]string{"prom": "system:serviceaccount:monitoring:prometheus", "intruder": "system:serviceaccount:shop:web"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apis/authentication.k8s.io/v1/tokenreviews", func(w http.ResponseWriter, r *http.Request) {
		reviews.Add(1)
		if g := gate.Load(); g != nil {
			<-*g
		}
		var tr authenticationv1.TokenReview
		if err := json.NewDecoder(r.Body).Decode(&tr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if u, ok := users[tr.Spec.Token]; ok {
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: u}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(tr)
	})
	mux.HandleFunc("POST /apis/authorization.k8s.io/v1/subjectaccessreviews", func(w http.ResponseWriter, r *http.Request) {
		checks.Add(1)
		var sar authorizationv1.SubjectAccessReview
		if err := json.NewDecoder(r.Body).Decode(&sar); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		nr := sar.Spec.NonResourceAttributes
		sar.Status.Allowed = sar.Spec.User == users["prom"] && nr != nil && nr.Path == "/metrics" && nr.Verb == "get"
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(sar)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return client, &reviews, &checks
}

func TestOnlyAnAuthorizedIdentityReadsMetrics(t *testing.T) {
	client, reviews, checks := fakeCluster(t)
	g, err := New(client, klog.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "the metrics") })))
	defer srv.Close()
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, tc := range []struct {
		what, path, token string
		want              int
	}{
		{"no token", "/metrics", "", http.StatusUnauthorized},
		{"a token the API server rejects", "/metrics", "forged", http.StatusUnauthorized},
		{"a user without the right", "/metrics", "intruder", http.StatusForbidden},
		{"the allowed user, another path", "/debug", "prom", http.StatusForbidden},
		{"the allowed user", "/metrics", "prom", http.StatusOK},
	} {
		code, body := get(tc.path, tc.token)
		if code != tc.want {
			t.Errorf("%s: HTTP %d (%s), want %d", tc.what, code, body, tc.want)
		}
		if code == http.StatusOK && body != "the metrics" {
			t.Errorf("%s: body %q", tc.what, body)
		}
		if code != http.StatusOK && body == "the metrics" {
			t.Errorf("%s: the metrics were served with HTTP %d", tc.what, code)
		}
	}
	// Scrapes are cached: ten more cost no review.
	r, c := reviews.Load(), checks.Load()
	for range 10 {
		if code, _ := get("/metrics", "prom"); code != http.StatusOK {
			t.Fatalf("repeated scrape: HTTP %d", code)
		}
	}
	if reviews.Load() != r || checks.Load() != c {
		t.Errorf("10 cached scrapes cost %d token reviews and %d access reviews, want 0", reviews.Load()-r, checks.Load()-c)
	}
}

// TestAFloodOfReviewsIsBounded: methods other than GET and HEAD and
// oversized tokens cost no review; at most DefaultMaxInFlight requests are
// under review at once, the rest get 429 at once; a scraper allowed
// before is served while the reviews are full.
func TestAFloodOfReviewsIsBounded(t *testing.T) {
	var gate atomic.Pointer[chan struct{}]
	client, reviews, checks := fakeClusterGated(t, &gate)
	g, err := New(client, klog.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "the metrics") })))
	defer srv.Close()
	do := func(method, token string) int {
		req, _ := http.NewRequest(method, srv.URL+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Prometheus is allowed once, while reviews answer.
	if code := do(http.MethodGet, "prom"); code != http.StatusOK {
		t.Fatalf("the allowed scraper: HTTP %d", code)
	}
	if code := do(http.MethodHead, "prom"); code != http.StatusOK {
		t.Errorf("HEAD by the allowed scraper: HTTP %d", code)
	}
	r0, c0 := reviews.Load(), checks.Load()
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, "PATCH", "BREW", http.MethodOptions} {
		if code := do(m, "forged-"+m); code != http.StatusMethodNotAllowed {
			t.Errorf("%s: HTTP %d, want 405", m, code)
		}
	}
	if code := do(http.MethodGet, strings.Repeat("x", MaxTokenBytes+1)); code != http.StatusUnauthorized {
		t.Errorf("an oversized token: HTTP %d, want 401", code)
	}
	if reviews.Load() != r0 || checks.Load() != c0 {
		t.Errorf("refused methods and an oversized token cost %d token and %d access reviews, want 0", reviews.Load()-r0, checks.Load()-c0)
	}

	// Now reviews hang: a flood of random tokens.
	hang := make(chan struct{})
	gate.Store(&hang)
	r0 = reviews.Load()
	codes := make(chan int, 50)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { codes <- do(http.MethodGet, fmt.Sprintf("random-%d", i)) })
	}
	// Every request beyond the slots is answered 429 without waiting.
	limited := 0
	for limited < 50-DefaultMaxInFlight {
		if code := <-codes; code == http.StatusTooManyRequests {
			limited++
		} else {
			t.Fatalf("HTTP %d while the reviews were full, want 429", code)
		}
	}
	if n := reviews.Load() - r0; n > DefaultMaxInFlight {
		t.Errorf("%d token reviews at once, want at most %d", n, DefaultMaxInFlight)
	}
	if code := do(http.MethodGet, "prom"); code != http.StatusOK {
		t.Errorf("the scraper allowed before: HTTP %d while the reviews were full, want 200", code)
	}
	close(hang)
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusUnauthorized {
			t.Errorf("a random token under review: HTTP %d, want 401", code)
		}
	}
}
