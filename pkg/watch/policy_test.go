package watch

import (
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/autoscale-io/reactive-autoscaler/pkg/metrics/promtest"
)

const tenantQuery = `sum(rate(secret_requests_total{tenant="other"}[1m]))`

// TestTheQueryPolicyBoundsWhatAnEditorMayQuery: with --query-policy=off a
// Deployment's own query is refused with an InvalidAnnotation Event and
// never sent to Prometheus; with allowlist only the listed templates run;
// the built-in queries always do.
func TestTheQueryPolicyBoundsWhatAnEditorMayQuery(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		h := newHarnessWith(t, harnessOptions{queryPolicy: QueryOff},
			managed("custom", 1, "query", tenantQuery), managed("plain", 1), managed("fast", 1, "profile", "recommended"),
			managed("mesh", 1, "metric-source", "istio"))
		h.prom.Set(promtest.Value(45))
		h.evaluate("custom", interval)
		if q := h.prom.Queries(); q != 0 {
			t.Errorf("%d queries sent for a refused custom query", q)
		}
		if ev := h.drainEvents(); !hasEvent(ev, "Warning InvalidAnnotation autoscale.io/query=") || !strings.Contains(strings.Join(ev, " "), "--query-policy=off") {
			t.Errorf("events %q, want InvalidAnnotation naming the policy", ev)
		}
		for _, name := range []string{"plain", "fast", "mesh"} { // built-in queries, a metric source's too
			h.evaluate(name, 0)
			if r := h.replicas(name); r == 1 {
				t.Errorf("%s (a built-in query) was not scaled at 45 RPS", name)
			}
		}
		if r := h.replicas("custom"); r != 1 {
			t.Errorf("custom was scaled to %d", r)
		}
	})
	t.Run("allowlist", func(t *testing.T) {
		allowed := `sum(rate(http_requests_total{app="{{.Deployment}}"}[1m]))`
		h := newHarnessWith(t, harnessOptions{queryPolicy: QueryAllowList, allowedQueries: []string{allowed}},
			managed("listed", 1, "query", allowed), managed("custom", 1, "query", tenantQuery))
		h.prom.Set(promtest.Value(45))
		h.evaluate("listed", interval)
		h.evaluate("custom", 0)
		if h.replicas("listed") == 1 || h.replicas("custom") != 1 {
			t.Errorf("listed %d, custom %d replicas: want listed scaled, custom untouched", h.replicas("listed"), h.replicas("custom"))
		}
		if !strings.Contains(h.prom.LastQuery(), `app="listed"`) {
			t.Errorf("last query %q", h.prom.LastQuery())
		}
		if ev := h.drainEvents(); !strings.Contains(strings.Join(ev, " "), "not one of this controller's --allowed-queries") {
			t.Errorf("events %q", ev)
		}
	})
}

func TestTheMinimumIntervalIsEnforced(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{minInterval: 10 * time.Second}, managed("eager", 1, "interval", "1s"), managed("calm", 1, "interval", "10s"))
	h.prom.Set(promtest.Value(45))
	h.evaluate("eager", interval)
	if q := h.prom.Queries(); q != 0 || h.replicas("eager") != 1 {
		t.Errorf("an interval below the minimum was evaluated: %d queries, %d replicas", q, h.replicas("eager"))
	}
	if ev := h.drainEvents(); !strings.Contains(strings.Join(ev, " "), "must be at least this controller's minimum 10s") {
		t.Errorf("events %q", ev)
	}
	h.evaluate("calm", 0)
	if h.replicas("calm") == 1 {
		t.Error("an interval at the minimum was refused")
	}
}

// TestAnnotationChangesDoNotRunTheQueryMoreOftenThanTheMinimumInterval:
// 20 changes of an annotation (even one the controller does not know)
// right after an evaluation queue the next one no sooner than
// --min-interval after it started, as one item.
func TestAnnotationChangesDoNotRunTheQueryMoreOftenThanTheMinimumInterval(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{minInterval: 30 * time.Second}, managed("tenant", 1, "interval", "1m"))
	// The evaluation queued when the target appeared, as a worker runs
	// it: the next periodic one is due a minute later.
	start := h.clock.Now()
	h.ctrl.processNextWorkItem(h.ctx)
	if q := h.prom.Queries(); q == 0 {
		t.Fatal("the first evaluation queried nothing")
	}
	for i := range 20 {
		d, err := h.client.AppsV1().Deployments("shop").Get(h.ctx, "tenant", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d.Annotations["autoscale.io/nonce"] = strconv.Itoa(i)
		if _, err := h.client.AppsV1().Deployments("shop").Update(h.ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		h.observe() // each change reaches the handlers
	}
	h.ctrl.mu.Lock()
	due := h.ctrl.due["shop/tenant"]
	h.ctrl.mu.Unlock()
	if want := start.Add(30 * time.Second); !due.Equal(want) {
		t.Errorf("after 20 annotation changes the next evaluation is due %v, want %v (the minimum interval after the last)", due, want)
	}
	if n := h.ctrl.queue.Len(); n != 0 {
		t.Errorf("%d evaluations ready at once after annotation changes, want none before the minimum interval", n)
	}
	h.advance(30 * time.Second)
	if n := h.ctrl.queue.Len(); n != 1 {
		t.Errorf("%d evaluations queued at the minimum interval after the changes, want 1", n)
	}
}

// TestATraefikNameAnotherNamespaceCouldProduceIsNotManaged: namespace
// shop's service payments-api on Traefik is also namespace shop-payments'
// service api; the workload is not managed (InvalidAnnotation), nothing
// is queried and its replicas are left alone.
func TestATraefikNameAnotherNamespaceCouldProduceIsNotManaged(t *testing.T) {
	h := newHarness(t, managed("payments", 4, "metric-source", "traefik", "service", "payments-api"))
	h.prom.Set(promtest.Value(0))
	h.evaluate("payments", interval)
	if ev := h.drainEvents(); !hasEvent(ev, `Warning InvalidAnnotation autoscale.io/metric-source="traefik": traefik names a target shop-payments-api, which another namespace could produce too`) {
		t.Errorf("events %q", ev)
	}
	if h.prom.Queries() != 0 || h.replicas("payments") != 4 {
		t.Errorf("queried %d times, %d replicas; want nothing queried and 4 left", h.prom.Queries(), h.replicas("payments"))
	}
}
