package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

// sample is one second of the timeline.
type sample struct {
	at             time.Duration // since the scenario started
	rps            float64
	shed           float64 // requests per second the pods answered 503
	spec, ready    int32
	event, alertOf string
}

// watcher follows the Deployment, its Events and its request rate.
type watcher struct {
	env       *localenv.Env
	client    kubernetes.Interface
	ns, name  string
	query     string
	start     time.Time
	stepStart time.Time
	samples   []sample
	seen      map[types.UID]bool
	// activeAlerts are the alerts Alertmanager had active at the last sample.
	activeAlerts map[string]bool
	changes      []time.Time // when spec.replicas was seen to change
	notes        []sample
	// first and last are the first and the latest sample.
	first, last sample
}

func newWatcher(env *localenv.Env, ns, name, query string) (*watcher, error) {
	c, err := env.Client()
	if err != nil {
		return nil, err
	}
	return &watcher{env: env, client: c, ns: ns, name: name, query: query, seen: map[types.UID]bool{}}, nil
}

// serve creates the watched service as demo-app pods on the node, each
// serving capacity requests a second, with the annotations, behind a
// Service; waits for its first pod; and starts a load generator on the
// host sending to the Service. It returns the generator's address.
func (w *watcher) serve(ctx context.Context, binDir string, annotations map[string]string) (string, error) {
	d := localenv.ServingDeployment(w.ns, w.name, w.name, 1, annotations, "--capacity", fmt.Sprint(capacity))
	if _, err := w.client.AppsV1().Deployments(w.ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	svc, err := w.client.CoreV1().Services(w.ns).Create(ctx, localenv.ServiceFor(d), metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		d, err := w.client.AppsV1().Deployments(w.ns).Get(ctx, w.name, metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas >= 1, nil
	})
	if err != nil {
		return "", fmt.Errorf("%s's first pod not Ready: %w\nkubelet:\n%s", w.name, err, w.env.Logs("kubelet", 20))
	}
	return startLoad(ctx, w.env, binDir, w.name, "http://"+svc.Spec.ClusterIP+"/")
}

func (w *watcher) header() {
	w.start = time.Now()
	fmt.Printf("\n%-6s %8s %8s   %-10s %-6s %-11s %-10s %s\n", "TIME", "RPS", "SHED", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AUTOSCALER")
}

func (w *watcher) note(s string) {
	fmt.Printf("%-6s ---- %s\n", clock(time.Since(w.start)), s)
	w.notes = append(w.notes, sample{at: time.Since(w.start), event: s})
}

func (w *watcher) elapsedInStep() time.Duration { return time.Since(w.stepStart) }
func (w *watcher) replicas() int32              { return w.last.spec }
func (w *watcher) ready() int32                 { return w.last.ready }

// follow samples every second until done or timeout, printing a line when
// the replicas change, an Event arrives, or every 5 s.
func (w *watcher) follow(ctx context.Context, timeout time.Duration, done func(*watcher) bool) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		s, err := w.sample(ctx)
		if err != nil {
			return err
		}
		changed := s.spec != w.last.spec || s.ready != w.last.ready
		if changed || s.event != "" || int(s.at.Seconds())%5 == 0 {
			fmt.Printf("%-6s %8.1f %8.1f   %-10s %-6s %-11d %-10d %s\n", clock(s.at), s.rps, s.shed, w.name,
				fmt.Sprintf("%d/%d", s.ready, s.spec), s.spec, s.ready, s.event)
		}
		w.samples = append(w.samples, s)
		w.last = s
		if done(w) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("step did not finish within %s; logs in %s", timeout, w.env.Dir)
		}
	}
}

func (w *watcher) sample(ctx context.Context) (sample, error) {
	s := sample{at: time.Since(w.start)}
	d, err := w.client.AppsV1().Deployments(w.ns).Get(ctx, w.name, metav1.GetOptions{})
	if err != nil {
		return s, err
	}
	s.spec, s.ready = *d.Spec.Replicas, d.Status.ReadyReplicas
	s.rps, _ = localenv.Query(ctx, w.env.PrometheusURL, w.query)
	s.shed, _ = localenv.Query(ctx, w.env.PrometheusURL, fmt.Sprintf(`sum(rate(http_requests_total{namespace=%q,service=%q,code="503"}[10s]))`, w.ns, w.name))
	evs, err := w.client.CoreV1().Events(w.ns).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{"involvedObject.name": w.name, "involvedObject.kind": "Deployment"}.String()})
	if err != nil {
		return s, err
	}
	var msgs []string
	for _, e := range evs.Items {
		if w.seen[e.UID] || e.Source.Component != "reactive-autoscaler" {
			continue
		}
		w.seen[e.UID] = true
		msgs = append(msgs, e.Reason+": "+e.Message)
	}
	active := map[string]bool{}
	for _, a := range firingAlerts(w.env.AlertmanagerURL) {
		if !strings.Contains(a, fmt.Sprintf("{service=%q}", w.name)) {
			continue // another service's
		}
		active[a] = true
		if !w.activeAlerts[a] { // newly firing (again)
			msgs = append([]string{"ALERT " + a + " firing"}, msgs...)
		}
	}
	w.activeAlerts = active
	s.event = strings.Join(msgs, " | ")
	if len(w.samples) == 0 {
		w.first = s
	} else if s.spec != w.last.spec {
		w.changes = append(w.changes, time.Now())
	}
	return s, nil
}

// shedSince returns the most requests per second shed since t, and the
// latest.
func (w *watcher) shedSince(t time.Time) (peak, last float64) {
	for _, s := range w.samples {
		if w.start.Add(s.at).Before(t) {
			continue
		}
		peak = max(peak, s.shed)
	}
	return peak, w.last.shed
}

// firstChangeSince returns how long after t the replicas first changed.
func (w *watcher) firstChangeSince(t time.Time) (time.Duration, bool) {
	for _, c := range w.changes {
		if c.After(t) {
			return c.Sub(t), true
		}
	}
	return 0, false
}

// firingAlerts lists Alertmanager's active alerts as "name{labels}".
func firingAlerts(base string) []string {
	resp, err := http.Get(base + "/api/v2/alerts?active=true")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var alerts []struct {
		Labels map[string]string `json:"labels"`
	}
	if json.NewDecoder(resp.Body).Decode(&alerts) != nil {
		return nil
	}
	var out []string
	for _, a := range alerts {
		out = append(out, fmt.Sprintf("%s{service=%q}", a.Labels["alertname"], a.Labels["service"]))
	}
	return out
}

func (w *watcher) distinctReplicas() int {
	seen := map[int32]bool{}
	for _, s := range w.samples {
		seen[s.spec] = true
	}
	return len(seen)
}

func (w *watcher) scaledDown() bool {
	peak := int32(0)
	for _, s := range w.samples {
		peak = max(peak, s.spec)
		if s.spec < peak {
			return true
		}
	}
	return false
}

func (w *watcher) actionSummary() string {
	var steps []string
	last := int32(-1)
	for _, s := range w.samples {
		if s.spec != last {
			steps = append(steps, fmt.Sprintf("%d (at %s)", s.spec, clock(s.at)))
			last = s.spec
		}
	}
	return strings.Join(steps, " -> ")
}

func clock(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

// writeSVG plots the request rate and the replicas over time.
func (w *watcher) writeSVG(path string) error {
	const width, height, left, right, top, bottom = 900.0, 420.0, 60.0, 60.0, 40.0, 50.0
	if len(w.samples) == 0 {
		return fmt.Errorf("no samples to plot")
	}
	maxT := w.samples[len(w.samples)-1].at.Seconds()
	maxRPS, maxRep := 1.0, int32(1)
	for _, s := range w.samples {
		maxRPS = max(maxRPS, s.rps)
		maxRep = max(maxRep, s.spec)
	}
	maxRPS *= 1.1
	x := func(t float64) float64 { return left + t/maxT*(width-left-right) }
	yR := func(v float64) float64 { return height - bottom - v/maxRPS*(height-top-bottom) }
	yN := func(n int32) float64 { return height - bottom - float64(n)/float64(maxRep+1)*(height-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="22" font-size="15">reactive-autoscaler demo: requests, shed and replicas of %s</text>`+"\n", left, w.name)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`, left, height-bottom, width-right, height-bottom)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top, left, height-bottom)
	for i := 0; i <= 4; i++ {
		v := maxRPS * float64(i) / 4
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end" fill="#1f77b4">%.0f</text>`, left-6, yR(v)+4, v)
	}
	for n := int32(0); n <= maxRep; n++ {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#d62728">%d</text>`, width-right+6, yN(n)+4, n)
	}
	for t := 0.0; t <= maxT; t += 30 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%s</text>`, x(t), height-bottom+16, clock(time.Duration(t)*time.Second))
	}
	fmt.Fprintf(&b, "\n"+`<text x="%.0f" y="%.0f" text-anchor="middle">time since the scenario started</text>`, (left+width-right)/2, height-10)
	fmt.Fprintf(&b, `<text x="14" y="%.0f" fill="#1f77b4" transform="rotate(-90 14 %.0f)">requests per second (Prometheus, rate over 10 s)</text>`, height/2+120, height/2+120)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#d62728" transform="rotate(90 %.0f %.0f)">replicas (spec)</text>`+"\n", width-14, height/2-40, width-14, height/2-40)
	var rps, shed, rep strings.Builder
	for i, s := range w.samples {
		fmt.Fprintf(&rps, "%.1f,%.1f ", x(s.at.Seconds()), yR(s.rps))
		fmt.Fprintf(&shed, "%.1f,%.1f ", x(s.at.Seconds()), yR(s.shed))
		if i > 0 { // a step line: hold the previous count until this sample
			fmt.Fprintf(&rep, "%.1f,%.1f ", x(s.at.Seconds()), yN(w.samples[i-1].spec))
		}
		fmt.Fprintf(&rep, "%.1f,%.1f ", x(s.at.Seconds()), yN(s.spec))
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="%s"/>`+"\n", rps.String())
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#ff7f0e" stroke-width="2" points="%s"/>`+"\n", shed.String())
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#1f77b4">requests/s</text><text x="%.0f" y="%.0f" fill="#ff7f0e">shed/s (503: over the pods' capacity)</text>`+"\n",
		width-right-330, top-6, width-right-250, top-6)
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#d62728" stroke-width="2.5" points="%s"/>`+"\n", rep.String())
	for _, n := range w.notes {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#999" stroke-dasharray="4 3"/>`, x(n.at.Seconds()), top, x(n.at.Seconds()), height-bottom)
	}
	b.WriteString("\n</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
