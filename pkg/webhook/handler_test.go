package webhook

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	"k8s.io/klog/v2"
	clocktesting "k8s.io/utils/clock/testing"
)

// fakeTargets is a controller with managed Deployments shop/frontend
// (service frontend) and shop/api, other/api (service api).
type fakeTargets struct {
	mu     sync.Mutex
	ready  bool
	spikes []string
}

var managedSet = map[string]string{"shop/frontend": "frontend", "shop/api": "api", "other/api": "api", "shop/cache": "cache"}

func (f *fakeTargets) Ready() bool { return f.ready }
func (f *fakeTargets) Managed(ns, name string) bool {
	_, ok := managedSet[ns+"/"+name]
	return ok
}
func (f *fakeTargets) ByService(ns, svc string) []string {
	var out []string
	for k, s := range managedSet {
		if s == svc && (ns == "" || strings.HasPrefix(k, ns+"/")) {
			out = append(out, k)
		}
	}
	return out
}
func (f *fakeTargets) Spike(ns, name string, _ time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.Managed(ns, name) {
		return false
	}
	f.spikes = append(f.spikes, ns+"/"+name)
	return true
}
func (f *fakeTargets) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.spikes)
}

type fakeMonitor struct {
	mu       sync.Mutex
	codes    map[int]int
	outcomes map[string]int
}

func (m *fakeMonitor) ObserveWebhook(code int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.codes[code]++
}
func (m *fakeMonitor) ObserveAlert(o string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outcomes[o]++
}

const token = "s3cret-token"

func newTestHandler(t *testing.T) (*Handler, *fakeTargets, *fakeMonitor, *clocktesting.FakeClock, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	tf, err := NewTokenFile(path, clk)
	if err != nil {
		t.Fatal(err)
	}
	targets := &fakeTargets{ready: true}
	mon := &fakeMonitor{codes: map[int]int{}, outcomes: map[string]int{}}
	h := NewHandler(Config{Targets: targets, Token: tf, Monitor: mon, Clock: clk, Logger: klog.Background()})
	return h, targets, mon, clk, path
}

// payload is a notification as Alertmanager sends it (see its docs), with
// fields this handler does not know (truncatedAlerts, an unknown one).
func payload(status string, alerts ...string) string {
	return fmt.Sprintf(`{"receiver":"reactive-autoscaler","status":%q,"alerts":[%s],
"groupLabels":{"alertname":"RequestRateSpike"},"commonLabels":{"alertname":"RequestRateSpike"},"commonAnnotations":{},
"externalURL":"http://alertmanager:9093","version":"4","groupKey":"{}:{alertname=\"RequestRateSpike\"}","truncatedAlerts":0,
"someFutureField":{"x":1}}`, status, strings.Join(alerts, ","))
}

func alert(status, fingerprint string, labels map[string]string) string {
	l, _ := json.Marshal(labels)
	return fmt.Sprintf(`{"status":%q,"labels":%s,"annotations":{"summary":"spike"},"startsAt":"2026-11-26T11:59:58Z",
"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus:9090/graph","fingerprint":%q}`, status, l, fingerprint)
}

func post(h http.Handler, body, auth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestReplyCodes(t *testing.T) {
	good := payload("firing", alert("firing", "a1", map[string]string{"alertname": "RequestRateSpike", "namespace": "shop", "deployment": "frontend"}))
	tests := []struct {
		name     string
		method   string
		body     string
		auth     string
		notReady bool
		want     int
	}{
		{"queued", http.MethodPost, good, "Bearer " + token, false, http.StatusOK},
		{"no credentials", http.MethodPost, good, "", false, http.StatusUnauthorized},
		{"wrong token", http.MethodPost, good, "Bearer nope", false, http.StatusUnauthorized},
		{"scheme in lower case", http.MethodPost, good, "bearer " + token, false, http.StatusOK},
		{"another scheme", http.MethodPost, good, "Basic " + token, false, http.StatusUnauthorized},
		{"basic auth is not a bearer token", http.MethodPost, good, "Basic " + token, false, http.StatusUnauthorized},
		{"token prefix only", http.MethodPost, good, "Bearer " + token[:5], false, http.StatusUnauthorized},
		{"not JSON", http.MethodPost, "{not json", "Bearer " + token, false, http.StatusBadRequest},
		{"no version", http.MethodPost, `{"alerts":[]}`, "Bearer " + token, false, http.StatusBadRequest},
		{"version 3", http.MethodPost, strings.Replace(good, `"version":"4"`, `"version":"3"`, 1), "Bearer " + token, false, http.StatusBadRequest},
		{"bad alert status", http.MethodPost, payload("firing", alert("burning", "a1", nil)), "Bearer " + token, false, http.StatusBadRequest},
		{"labels of the wrong type", http.MethodPost, strings.Replace(good, `"labels":{`, `"labels":[{`, 1), "Bearer " + token, false, http.StatusBadRequest},
		{"over 1 MiB", http.MethodPost, good[:len(good)-1] + `,"pad":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, "Bearer " + token, false, http.StatusRequestEntityTooLarge},
		{"not ready", http.MethodPost, good, "Bearer " + token, true, http.StatusServiceUnavailable},
		{"unauthenticated and not ready: 401 first", http.MethodPost, good, "", true, http.StatusUnauthorized},
		{"GET", http.MethodGet, "", "Bearer " + token, false, http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, targets, mon, _, _ := newTestHandler(t)
			targets.ready = !tc.notReady
			r := httptest.NewRequest(tc.method, Path, strings.NewReader(tc.body))
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("code %d (%s), want %d", w.Code, w.Body, tc.want)
			}
			if mon.codes[tc.want] != 1 {
				t.Errorf("webhook_requests_total{code=%d} not counted: %v", tc.want, mon.codes)
			}
			if wantSpikes := map[bool]int{true: 1, false: 0}[tc.want == http.StatusOK]; targets.count() != wantSpikes {
				t.Errorf("%d spikes queued, want %d", targets.count(), wantSpikes)
			}
			if tc.want == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if closes := w.Header().Get("Connection") == "close"; closes != (tc.want == http.StatusServiceUnavailable) {
				t.Errorf("Connection: close = %v; a 503 closes its connection so that the retry may reach the leader, nothing else does", closes)
			}
		})
	}
}

func TestMapping(t *testing.T) {
	h, targets, mon, _, _ := newTestHandler(t)
	body := payload("firing",
		alert("firing", "f1", map[string]string{"namespace": "shop", "deployment": "frontend"}),
		alert("firing", "f2", map[string]string{"service": "api"}),                        // every namespace
		alert("firing", "f3", map[string]string{"service": "api", "namespace": "other"}),  // already queued
		alert("firing", "f4", map[string]string{"namespace": "shop", "deployment": "db"}), // not managed
		alert("firing", "f5", map[string]string{"alertname": "NoTarget"}),
		alert("resolved", "f6", map[string]string{"namespace": "shop", "deployment": "frontend"}),
		alert("firing", "f7", map[string]string{"namespace": "shop", "statefulset": "cache"}), // a StatefulSet
	)
	w := post(h, body, "Bearer "+token)
	var reply Reply
	if err := json.Unmarshal(w.Body.Bytes(), &reply); err != nil || w.Code != http.StatusOK {
		t.Fatalf("%d %s %v", w.Code, w.Body, err)
	}
	want := Reply{Queued: []string{"other/api", "shop/api", "shop/cache", "shop/frontend"}, Unknown: 2, Resolved: 1}
	if diff := cmp.Diff(want, reply); diff != "" {
		t.Errorf("reply (-want +got):\n%s", diff)
	}
	if targets.count() != 4 {
		t.Errorf("%d spikes, want one per target: %v", targets.count(), targets.spikes)
	}
	if diff := cmp.Diff(map[string]int{"queued": 4, "unknown_target": 2, "resolved": 1}, mon.outcomes); diff != "" {
		t.Errorf("alert outcomes (-want +got):\n%s", diff)
	}
}

func TestResolvedAlertsTriggerNothing(t *testing.T) {
	h, targets, _, _, _ := newTestHandler(t)
	w := post(h, payload("resolved", alert("resolved", "r1", map[string]string{"namespace": "shop", "deployment": "frontend"})), "Bearer "+token)
	if w.Code != http.StatusOK || targets.count() != 0 {
		t.Errorf("code %d, %d spikes for a resolved alert", w.Code, targets.count())
	}
}

// TestDuplicatesCauseOneEvaluation posts the same notification from many
// goroutines, as Alertmanager HA peers may: one evaluation is queued.
func TestDuplicatesCauseOneEvaluation(t *testing.T) {
	h, targets, mon, clk, _ := newTestHandler(t)
	body := payload("firing", alert("firing", "d1", map[string]string{"namespace": "shop", "deployment": "frontend"}))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if w := post(h, body, "Bearer "+token); w.Code != http.StatusOK {
				t.Errorf("code %d", w.Code)
			}
		})
	}
	wg.Wait()
	if targets.count() != 1 || mon.outcomes["duplicate"] != 19 {
		t.Fatalf("%d evaluations queued (%d duplicates) for 20 identical posts, want 1", targets.count(), mon.outcomes["duplicate"])
	}
	// The same alerts renotified after the window trigger again.
	clk.Step(31 * time.Second)
	post(h, body, "Bearer "+token)
	if targets.count() != 2 {
		t.Errorf("a renotification after the dedup window was dropped")
	}
	// A different set of firing alerts in the same group is not a duplicate.
	post(h, payload("firing", alert("firing", "d1", map[string]string{"namespace": "shop", "deployment": "frontend"}),
		alert("firing", "d2", map[string]string{"service": "api"})), "Bearer "+token)
	if targets.count() != 5 {
		t.Errorf("spikes = %d, want 5 after a changed notification", targets.count())
	}
}

func TestTokenIsReloadedWhenTheFileChanges(t *testing.T) {
	h, _, _, clk, path := newTestHandler(t)
	body := payload("firing", alert("firing", "t1", map[string]string{"namespace": "shop", "deployment": "frontend"}))
	if err := os.WriteFile(path, []byte("rotated-token-longer"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk.Step(2 * time.Second)
	if w := post(h, body, "Bearer "+token); w.Code != http.StatusUnauthorized {
		t.Errorf("old token still accepted after rotation: %d", w.Code)
	}
	if w := post(h, body, "Bearer rotated-token-longer"); w.Code != http.StatusOK {
		t.Errorf("new token refused: %d", w.Code)
	}
	// An emptied file keeps the last good token rather than opening up.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	clk.Step(2 * time.Second)
	if w := post(h, payload("firing", alert("firing", "t2", map[string]string{"service": "api"})), "Bearer "); w.Code != http.StatusUnauthorized {
		t.Errorf("an empty token was accepted: %d", w.Code)
	}
}

func TestNewTokenFileRejectsEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	_ = os.WriteFile(path, []byte("  \n"), 0o600)
	if _, err := NewTokenFile(path, nil); err == nil {
		t.Error("an empty token file was accepted")
	}
	if _, err := NewTokenFile(filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Error("a missing token file was accepted")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(payload("firing", alert("firing", "a", map[string]string{"namespace": "shop", "deployment": "frontend"}))))
	f.Add([]byte(payload("resolved", alert("resolved", "b", map[string]string{"service": "api"}))))
	f.Add([]byte(`{"version":"4","alerts":null}`))
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","labels":null}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, err := Decode(body)
		if err != nil {
			return
		}
		if msg.Version != "4" || msg.Data == nil {
			t.Fatalf("accepted %q", body)
		}
		// Whatever was accepted can be mapped and processed without panic.
		h, _, _, _, _ := newTestHandler(t)
		h.process(msg, time.Now())
	})
}

func FuzzMapTargets(f *testing.F) {
	f.Add("shop", "frontend", "")
	f.Add("", "", "api")
	f.Add("other", "", "api")
	f.Add("", "frontend", "")
	f.Fuzz(func(t *testing.T, ns, dep, svc string) {
		labels := map[string]string{"namespace": ns, "deployment": dep, "service": svc}
		for _, k := range MapTargets(labels, &fakeTargets{}) {
			if _, ok := managedSet[k]; !ok {
				t.Fatalf("mapped %v to unmanaged %s", labels, k)
			}
		}
	})
}

// TestDedupIsBoundedAndKeepsNoKeys: distinct notifications with 4 KiB
// keys are remembered by hash, and no more than MaxDedupEntries of them;
// the newest are still deduplicated.
func TestDedupIsBoundedAndKeepsNoKeys(t *testing.T) {
	d := &dedup{window: time.Minute, max: MaxDedupEntries, seen: map[[sha256.Size]byte]time.Time{}}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	pad := strings.Repeat("x", 4096)
	n := MaxDedupEntries + 500
	for i := range n {
		if !d.first(fmt.Sprintf("%d|%s", i, pad), t0.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("notification %d taken for a duplicate", i)
		}
	}
	if len(d.seen) != MaxDedupEntries {
		t.Errorf("%d notifications remembered, want at most %d", len(d.seen), MaxDedupEntries)
	}
	if d.first(fmt.Sprintf("%d|%s", n-1, pad), t0.Add(time.Duration(n)*time.Millisecond)) {
		t.Error("the newest notification is not deduplicated")
	}
	if !d.first(fmt.Sprintf("%d|%s", 0, pad), t0.Add(time.Duration(n)*time.Millisecond)) {
		t.Error("the oldest notification, forgotten to keep the bound, is taken as a duplicate")
	}
}

// TestUnknownTargetsAreLoggedOncePerNotification: 200 alerts naming no
// managed Deployment are counted, and logged in one line.
func TestUnknownTargetsAreLoggedOncePerNotification(t *testing.T) {
	h, targets, mon, _, _ := newTestHandler(t)
	var lines atomic.Int32
	h.logger = funcr.New(func(string, string) { lines.Add(1) }, funcr.Options{})
	var alerts []string
	for i := range 200 {
		alerts = append(alerts, alert("firing", fmt.Sprintf("u%d", i), map[string]string{"service": fmt.Sprintf("nobody-%d", i)}))
	}
	w := post(h, payload("firing", alerts...), "Bearer "+token)
	var reply Reply
	if err := json.Unmarshal(w.Body.Bytes(), &reply); err != nil || w.Code != http.StatusOK {
		t.Fatalf("code %d, %v", w.Code, err)
	}
	if reply.Unknown != 200 || mon.outcomes["unknown_target"] != 200 || targets.count() != 0 {
		t.Errorf("unknown %d, metric %d, spikes %d; want 200, 200, 0", reply.Unknown, mon.outcomes["unknown_target"], targets.count())
	}
	if n := lines.Load(); n != 1 {
		t.Errorf("%d log lines for one notification, want 1", n)
	}
}

func TestTooManyAlertsIsRefused(t *testing.T) {
	h, targets, _, _, _ := newTestHandler(t)
	var alerts []string
	for i := range MaxAlerts + 1 {
		alerts = append(alerts, fmt.Sprintf(`{"status":"firing","labels":{"service":"s%d"}}`, i))
	}
	w := post(h, payload("firing", alerts...), "Bearer "+token)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "max_alerts") || targets.count() != 0 {
		t.Errorf("code %d body %q, %d spikes; want 413 naming max_alerts", w.Code, w.Body.String(), targets.count())
	}
}
