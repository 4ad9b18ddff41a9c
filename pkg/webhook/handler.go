// Package webhook is the spike fast path: POST /webhook/alertmanager takes
// Alertmanager's notifications, maps each firing alert to the managed
// Deployments it names, and asks the controller to evaluate them at once.
// It never waits on Prometheus or the API server: it only queues.
package webhook

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	amwebhook "github.com/prometheus/alertmanager/notify/webhook"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics"
)

// Path is where the handler is served.
const Path = "/webhook/alertmanager"

// MaxBodyBytes bounds a notification's size (413 above 1 MiB).
const MaxBodyBytes = 1 << 20

// MaxAlerts bounds the alerts of one notification (413 above): a
// receiver's max_alerts keeps Alertmanager below it.
const MaxAlerts = 1000

// MaxDedupEntries bounds the notifications remembered for deduplication;
// past it the oldest is forgotten (at worst, one evaluation too many).
const MaxDedupEntries = 10000

// Targets is what the handler needs of the controller.
type Targets interface {
	// Ready reports whether triggers can be taken now (else 503).
	Ready() bool
	// Managed reports whether namespace/name is an opted-in Deployment (or
	// StatefulSet).
	Managed(namespace, name string) bool
	// ByService lists managed Deployments (namespace/name) of a service,
	// within namespace, or in every namespace when it is "".
	ByService(namespace, service string) []string
	// Spike queues an immediate spike evaluation; false if not managed.
	Spike(namespace, name string, receivedAt time.Time) bool
}

// Monitor records the webhook's metrics; alert outcomes are the
// metrics.Alert* label values.
type Monitor interface {
	ObserveWebhook(code int)
	ObserveAlert(outcome string)
}

// Handler serves POST /webhook/alertmanager.
type Handler struct {
	targets Targets
	token   *TokenFile
	monitor Monitor
	clock   clock.PassiveClock
	dedup   *dedup
	logger  klog.Logger
}

// Config wires a Handler.
type Config struct {
	Targets Targets
	Token   *TokenFile
	Monitor Monitor
	Clock   clock.PassiveClock // optional
	// DedupWindow is how long an identical notification (same group key
	// and firing alerts, as Alertmanager HA peers deliver) is ignored.
	DedupWindow time.Duration
	Logger      klog.Logger
}

// NewHandler builds the handler.
func NewHandler(cfg Config) *Handler {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = 30 * time.Second
	}
	return &Handler{targets: cfg.Targets, token: cfg.Token, monitor: cfg.Monitor, clock: cfg.Clock,
		dedup: &dedup{window: cfg.DedupWindow, max: MaxDedupEntries, seen: map[[sha256.Size]byte]time.Time{}}, logger: cfg.Logger}
}

// Reply is the JSON body of a 200 answer.
type Reply struct {
	Queued    []string `json:"queued"`
	Unknown   int      `json:"unknownTargets"`
	Resolved  int      `json:"resolved"`
	Duplicate bool     `json:"duplicate,omitempty"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	received := h.clock.Now()
	code, reply, err := h.serve(r, received)
	if h.monitor != nil {
		h.monitor.ObserveWebhook(code)
	}
	if err != nil {
		switch code {
		case http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", `Bearer realm="reactive-autoscaler"`)
		case http.StatusServiceUnavailable:
			// Alertmanager keeps its connections alive; closing this one
			// lets its retry open a new connection, which a Service may
			// route to the leader.
			w.Header().Set("Connection", "close")
		}
		h.logger.V(2).Info("Webhook request refused", "code", code, "err", err)
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(reply)
}

func (h *Handler) serve(r *http.Request, received time.Time) (int, *Reply, error) {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, nil, fmt.Errorf("use POST")
	}
	// The scheme is case-insensitive (RFC 9110, section 11.1).
	scheme, bearer, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !h.token.Valid(bearer) {
		return http.StatusUnauthorized, nil, fmt.Errorf("a valid bearer token is required")
	}
	if !h.targets.Ready() {
		// Alertmanager retries 5xx, so the trigger is not lost: it reaches
		// this replica again, or the leader, once one is ready.
		return http.StatusServiceUnavailable, nil, fmt.Errorf("not ready to take triggers (not the leader, or starting)")
	}
	body, err := readBody(r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, nil, fmt.Errorf("body larger than %d bytes", MaxBodyBytes)
		}
		return http.StatusBadRequest, nil, fmt.Errorf("reading the body: %w", err)
	}
	msg, err := Decode(body)
	if err != nil {
		return http.StatusBadRequest, nil, err
	}
	if len(msg.Alerts) > MaxAlerts {
		return http.StatusRequestEntityTooLarge, nil, fmt.Errorf("%d alerts in one notification, at most %d: set max_alerts in the receiver", len(msg.Alerts), MaxAlerts)
	}
	return http.StatusOK, h.process(msg, received), nil
}

func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
}

// process triggers the targets of the firing alerts of one notification.
func (h *Handler) process(msg *amwebhook.Message, received time.Time) *Reply {
	reply := &Reply{Queued: []string{}}
	var firing []int
	for i, a := range msg.Alerts {
		if a.Status == "firing" {
			firing = append(firing, i)
		} else {
			reply.Resolved++
			h.observe(metrics.AlertResolved)
		}
	}
	if len(firing) == 0 {
		return reply
	}
	if !h.dedup.first(notificationKey(msg, firing), received) {
		reply.Duplicate = true
		for range firing {
			h.observe(metrics.AlertDuplicate)
		}
		h.logger.V(2).Info("Duplicate notification ignored", "groupKey", msg.GroupKey)
		return reply
	}
	queued := map[string]bool{}
	var firstUnknown map[string]string
	for _, i := range firing {
		a := msg.Alerts[i]
		keys := MapTargets(a.Labels, h.targets)
		if len(keys) == 0 {
			if reply.Unknown == 0 {
				firstUnknown = a.Labels
			}
			reply.Unknown++
			h.observe(metrics.AlertUnknownTarget)
			continue
		}
		for _, k := range keys {
			if queued[k] {
				continue
			}
			ns, name, _ := strings.Cut(k, "/")
			if h.targets.Spike(ns, name, received) {
				queued[k] = true
				reply.Queued = append(reply.Queued, k)
				h.logger.V(1).Info("Spike evaluation queued", "alert", a.Labels["alertname"], "deployment", k)
			}
		}
		h.observe(metrics.AlertQueued)
	}
	if reply.Unknown > 0 {
		// One line per notification, however many alerts it carries.
		h.logger.Info("Firing alerts name no managed Deployment", "count", reply.Unknown, "groupKey", msg.GroupKey, "firstLabels", firstUnknown)
	}
	sort.Strings(reply.Queued)
	return reply
}

func (h *Handler) observe(outcome string) {
	if h.monitor != nil {
		h.monitor.ObserveAlert(outcome)
	}
}

// Decode parses an Alertmanager webhook notification (version "4"; unknown
// fields are ignored) and checks what the handler relies on.
func Decode(body []byte) (*amwebhook.Message, error) {
	var msg amwebhook.Message
	if err := json.Unmarshal(body, &msg); err != nil {
		return nil, fmt.Errorf("malformed notification: %w", err)
	}
	if msg.Data == nil || msg.Version == "" {
		return nil, fmt.Errorf("malformed notification: no version or alerts")
	}
	if msg.Version != "4" {
		return nil, fmt.Errorf("unsupported notification version %q, want \"4\"", msg.Version)
	}
	for i, a := range msg.Alerts {
		if a.Status != "firing" && a.Status != "resolved" {
			return nil, fmt.Errorf("alert %d: status %q, want firing or resolved", i, a.Status)
		}
	}
	return &msg, nil
}

// MapTargets names the managed workloads an alert is about: labels
// namespace + deployment (or statefulset, or workload, any kind) name one
// directly; otherwise
// service (within namespace when given) names every managed workload of
// that service.
func MapTargets(labels map[string]string, t Targets) []string {
	ns, dep, svc := labels["namespace"], labels["deployment"], labels["service"]
	for _, l := range []string{"statefulset", "workload"} {
		if dep == "" {
			dep = labels[l]
		}
	}
	if dep != "" && ns != "" {
		if t.Managed(ns, dep) {
			return []string{ns + "/" + dep}
		}
		return nil
	}
	if svc != "" {
		return t.ByService(ns, svc)
	}
	return nil
}

// notificationKey identifies a notification for deduplication: its group
// key and the fingerprints (and start times) of its firing alerts.
func notificationKey(msg *amwebhook.Message, firing []int) string {
	parts := make([]string, 0, len(firing))
	for _, i := range firing {
		a := msg.Alerts[i]
		fp := a.Fingerprint
		if fp == "" {
			fp = fmt.Sprint(a.Labels.SortedPairs())
		}
		parts = append(parts, fp+"@"+a.StartsAt.UTC().Format(time.RFC3339Nano))
	}
	sort.Strings(parts)
	return msg.GroupKey + "|" + strings.Join(parts, ",")
}

// dedup remembers notifications for a window, by the SHA-256 of their key
// (a key can be as large as a notification), at most max of them, oldest
// first in order so that forgetting costs nothing per request.
type dedup struct {
	window time.Duration
	max    int
	mu     sync.Mutex
	seen   map[[sha256.Size]byte]time.Time
	order  []seenKey // by time received
}

type seenKey struct {
	hash [sha256.Size]byte
	at   time.Time
}

// first reports whether key was not seen within the window, and records it.
func (d *dedup) first(key string, now time.Time) bool {
	h := sha256.Sum256([]byte(key))
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.order) > 0 && (now.Sub(d.order[0].at) > d.window || len(d.order) >= d.max) {
		if old := d.order[0]; d.seen[old.hash].Equal(old.at) {
			delete(d.seen, old.hash)
		}
		d.order = d.order[1:]
	}
	if at, ok := d.seen[h]; ok && now.Sub(at) <= d.window {
		return false
	}
	d.seen[h] = now
	d.order = append(d.order, seenKey{h, now})
	return true
}
