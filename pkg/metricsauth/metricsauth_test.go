package metricsauth

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
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
	t.Helper()
	var reviews, checks atomic.Int32
	users := map[string]string{"prom": "system:serviceaccount:monitoring:prometheus", "intruder": "system:serviceaccount:shop:web"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apis/authentication.k8s.io/v1/tokenreviews", func(w http.ResponseWriter, r *http.Request) {
		reviews.Add(1)
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
	g, err := New(client, klog.Background())
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
