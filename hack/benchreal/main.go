// Command benchreal (make bench-real) replays one segment of a real
// request-rate trace, at the same time, to three identical Deployments of
// demo-app pods on a real node: one scaled by ours (the recommended
// profile), one by the real HorizontalPodAutoscaler of
// kube-controller-manager reading Prometheus through prometheus-adapter,
// one by real KEDA (its Prometheus scaler). Both peers run at the best
// configuration the simulator found for them (simulate.TunedHPA) on the
// same query as ours. The pods serve a fixed capacity and shed (503) the
// rest; the load generators count every answer. It prints, per policy,
// the requests shed and failed, the replica-seconds and the replicas over
// time, and beside each the simulator's model of that policy on the same
// segment, with the start-up time measured in this run: where the model
// and the real autoscaler part, the model is wrong.
//
// It needs root (a real node) and the tools hack/tools/build.sh builds
// (node, prometheus-adapter, keda); it takes the segment's length plus
// about three minutes.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
	"github.com/autoscale-io/reactive-autoscaler/pkg/simulate"
)

type config struct {
	bin, trace, jsonOut string
	from, length        time.Duration
	capacity, knob      float64
	peak                float64
	scrape, startup     time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "bin", "directory with the built tools, binaries and images")
	flag.StringVar(&c.trace, "trace", "testdata/traces/twitter-stream-week1.csv", "the real trace a segment of which is replayed")
	flag.DurationVar(&c.from, "from", -1, "where the segment starts in the trace (-1: the most variable segment of its first day, see pickSegment)")
	flag.DurationVar(&c.length, "length", 25*time.Minute, "the segment's length")
	flag.Float64Var(&c.capacity, "capacity", 10, "requests per second one pod serves; it sheds the rest")
	flag.Float64Var(&c.knob, "knob", 0.7, "the share of a pod's capacity every policy aims to use (target = capacity x knob)")
	flag.Float64Var(&c.peak, "peak", 70, "the segment is scaled so that its highest 10 s rate is this many requests per second")
	flag.DurationVar(&c.scrape, "scrape", 15*time.Second, "Prometheus' scrape interval")
	flag.DurationVar(&c.startup, "startup", simulate.DefaultWorld.Startup, "how long a new pod takes to become Ready (its readiness probe's initial delay), as an application warming up; demo-app alone is Ready in about a second")
	flag.StringVar(&c.jsonOut, "json", "", "also write the run (series included) as JSON to this file")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "benchreal:", err)
		os.Exit(1)
	}
}

// The three policies, each on its own Deployment and Service.
const (
	namespace = "bench"
	ours      = "ours"
	hpa       = "hpa"
	keda      = "keda"
)

var policies = []string{ours, hpa, keda}

// warmup is how long the segment's first rate is sent before the
// autoscalers start.
const warmup = 3 * time.Minute

// model is the simulator's policy for each real one. Ours runs the
// recommended profile without its forecast: a segment of minutes has no
// daily history in this Prometheus to learn from.
var model = map[string]string{ours: simulate.PolicyRecommendedReactive, hpa: simulate.PolicyHPATuned, keda: simulate.PolicyKEDATuned}

func run(ctx context.Context, c config) (err error) {
	seg, err := segment(c)
	if err != nil {
		return err
	}
	target := c.capacity * c.knob
	initial := max(1, int32(math.Ceil(seg.RPS[0]/target)))
	fmt.Printf("Segment: %s, %s long, scaled to a %.0f RPS peak (mean %.1f); %g RPS a pod, target %g a pod, %d replicas at the start\n",
		seg.Name, c.length, c.peak, mean(seg.RPS), c.capacity, target, initial)

	if c.bin, err = filepath.Abs(c.bin); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "reactive-autoscaler-bench-real-")
	if err != nil {
		return err
	}
	before := localenv.ReadHostState()
	env, err := localenv.Start(ctx, localenv.Options{
		BinDir: c.bin, Dir: dir, KeepDir: true, ControllerManager: true, Peers: true, Log: os.Stderr,
		Node:       &localenv.NodeOptions{Images: []string{filepath.Join(c.bin, "pause-image.tar"), filepath.Join(c.bin, "demo-app-image.tar")}},
		Prometheus: &localenv.PrometheusOptions{ScrapeInterval: c.scrape},
	})
	if err != nil {
		return err
	}
	defer func() {
		env.Stop()
		fmt.Printf("Logs of every component are in %s\n", dir)
		if diff := cmp.Diff(before, localenv.ReadHostState(env.Dir)); diff != "" {
			err = errors.Join(err, fmt.Errorf("the host differs from before the run (-before +after):\n%s", diff))
		}
	}()
	client, err := env.Client()
	if err != nil {
		return err
	}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	loads := map[string]string{}
	for _, p := range policies {
		var ann map[string]string
		if p == ours {
			ann = map[string]string{"autoscale.io/reactive": "true", "autoscale.io/profile": "recommended",
				"autoscale.io/target-rps-per-replica": fmt.Sprint(target), "autoscale.io/max-replicas": fmt.Sprint(simulate.MaxReplicas),
				"autoscale.io/predictor": "none", "autoscale.io/strategy": "reactive"}
		}
		if loads[p], err = serve(ctx, env, client, c, "web-"+p, initial, ann); err != nil {
			return err
		}
	}
	// The service is already running at the segment's first rate when
	// the segment starts, as the model assumes: the load runs for longer
	// than any autoscaler's look back (ours warms its smoothed rate and
	// trend from the last minutes) before they start, so that none of them
	// reads the rise from idle pods as a trend.
	fmt.Printf("Warming up: %.1f RPS to each Service for %s before the autoscalers start...\n", seg.RPS[0], warmup)
	for _, p := range policies {
		if err := setLoad(loads[p], seg.RPS[0]); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(warmup):
	}
	if err := startPeers(ctx, env, c, target); err != nil {
		return err
	}
	if err := startOurs(ctx, env, c); err != nil {
		return err
	}
	fmt.Printf("Replaying %s to the three Services at once...\n", c.length)
	rec := newRecorder(client)
	recCtx, stopRec := context.WithCancel(ctx)
	recDone := make(chan struct{})
	go func() { rec.run(recCtx); close(recDone) }()
	start := time.Now()
	rec.start = start
	for i, rps := range seg.RPS {
		at := start.Add(time.Duration(i) * seg.Step)
		select {
		case <-ctx.Done():
			stopRec()
			return ctx.Err()
		case <-time.After(time.Until(at)):
		}
		for _, p := range policies {
			if err := setLoad(loads[p], rps); err != nil {
				stopRec()
				return err
			}
		}
		if i%int(time.Minute/seg.Step) == 0 {
			fmt.Printf("  %5s  %6.1f RPS   replicas %s\n", clock(time.Since(start)), rps, rec.now())
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(start.Add(seg.Duration()))):
	}
	counts := map[string]status{}
	for _, p := range policies {
		_ = setLoad(loads[p], 0)
		if counts[p], err = loadStatus(loads[p]); err != nil {
			stopRec()
			return err
		}
	}
	stopRec()
	<-recDone
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return report(c, seg, initial, rec, counts)
}

// segment reads the trace, cuts the segment and scales it.
func segment(c config) (*simulate.Trace, error) {
	f, err := os.Open(c.trace)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr, err := simulate.ReadCSV(filepath.Base(c.trace), f)
	if err != nil {
		return nil, err
	}
	n := int(c.length / tr.Step)
	from := int(c.from / tr.Step)
	if c.from < 0 {
		from = pickSegment(tr, n)
	}
	if from < 0 || from+n > len(tr.RPS) || n < 1 {
		return nil, fmt.Errorf("the segment [%s, %s) is outside the trace (%s)", c.from, c.from+c.length, tr.Duration())
	}
	rps := slices.Clone(tr.RPS[from : from+n])
	last := 0.0
	for i, v := range rps { // an outage's rows: the demand went on
		if math.IsNaN(v) {
			rps[i] = last
		}
		last = rps[i]
	}
	peak := slices.Max(rps)
	if peak <= 0 {
		return nil, fmt.Errorf("the segment has no traffic")
	}
	for i := range rps {
		rps[i] *= c.peak / peak
	}
	name := fmt.Sprintf("%s from %s", strings.TrimSuffix(tr.Name, ".csv"), time.Duration(from)*tr.Step)
	return &simulate.Trace{Name: name, Step: tr.Step, RPS: rps}, nil
}

// pickSegment is the rule that chooses the segment when -from is not
// given, written before any run: the segment starts five minutes before
// the steepest rise of the trace's first day (the minute whose mean is
// the highest multiple of the five minutes' before it), so that it holds
// a steady start, the rise, and what follows it; minutes with a zero or
// missing row (the trace's collection gaps, not demand) are left out.
func pickSegment(tr *simulate.Trace, n int) int {
	day := min(len(tr.RPS), int(24*time.Hour/tr.Step))
	perMinute := int(time.Minute / tr.Step)
	var means []float64
	for m := 0; m+perMinute <= day; m += perMinute {
		rows := tr.RPS[m : m+perMinute]
		if slices.ContainsFunc(rows, func(v float64) bool { return v == 0 || math.IsNaN(v) }) {
			means = append(means, math.NaN())
			continue
		}
		means = append(means, mean(rows))
	}
	best, bestRise := 0, 0.0
	for m := 5; m < len(means); m++ {
		before := means[m-5 : m]
		if math.IsNaN(means[m]) || slices.ContainsFunc(before, math.IsNaN) {
			continue
		}
		if rise := means[m] / mean(before); rise > bestRise {
			best, bestRise = m-5, rise
		}
	}
	return min(best*perMinute, max(0, len(tr.RPS)-n))
}

func mean(v []float64) float64 {
	sum, n := 0.0, 0
	for _, x := range v {
		if !math.IsNaN(x) {
			sum, n = sum+x, n+1
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// serve creates a Deployment of demo-app pods at capacity behind a
// Service, waits until its pods are Ready, and starts a load generator on
// the host that sends to the Service; it returns the generator's address.
func serve(ctx context.Context, env *localenv.Env, client kubernetes.Interface, c config, name string, replicas int32, ann map[string]string) (string, error) {
	d := localenv.ServingDeployment(namespace, name, name, replicas, ann, "--capacity", fmt.Sprint(c.capacity))
	d.Spec.Template.Spec.Containers[0].ReadinessProbe.InitialDelaySeconds = int32(c.startup.Seconds())
	if _, err := client.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	svc, err := client.CoreV1().Services(namespace).Create(ctx, localenv.ServiceFor(d), metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas >= replicas, nil
	})
	if err != nil {
		return "", fmt.Errorf("%s's pods not Ready: %w\nkubelet:\n%s", name, err, env.Logs("kubelet", 20))
	}
	port, err := localenv.FreePort()
	if err != nil {
		return "", err
	}
	app := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := env.StartProcess("load-"+name, filepath.Join(c.bin, "demo-app"), nil, "serve", "--listen", app,
		"--service", "load-"+name, "--target", "http://"+svc.Spec.ClusterIP+"/")
	if err != nil {
		return "", err
	}
	return "http://" + app, localenv.WaitReady(ctx, "http://"+app+"/load", p, 30*time.Second)
}

// query is every policy's metric: the recommended profile's (FastQuery),
// for one Service.
func query(service string) string {
	return fmt.Sprintf(`sum(irate(http_requests_total{namespace=%q,service=%q}[1m]))`, namespace, service)
}

// startOurs runs the controller binary on the host, managing the bench
// namespace (one replica, no leader election: the peers run one too).
func startOurs(ctx context.Context, env *localenv.Env, c config) error {
	port, err := localenv.FreePort()
	if err != nil {
		return err
	}
	p, err := env.StartProcess("reactive-autoscaler", filepath.Join(c.bin, "reactive-autoscaler"), nil, "run",
		"--kubeconfig", env.Kubeconfig, "--namespace", namespace, "--prometheus-url", env.PrometheusURL,
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port), "--leader-elect=false", "-v=2")
	if err != nil {
		return err
	}
	return localenv.WaitReady(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", port), p, 30*time.Second)
}

// behavior is simulate.TunedHPA's as an HPA's spec.behavior: no
// stabilization, up by the larger of 300 % and 4 pods per 15 s, down by
// at most half per 15 s, a 5 % tolerance both ways.
func behavior() map[string]any {
	t := simulate.TunedHPA
	return localenv.HPABehavior(t.Behavior.UpPercent, t.Behavior.UpPods, t.Behavior.DownPercent, t.Tolerance)
}

// startPeers runs prometheus-adapter and KEDA and creates the HPA and
// the ScaledObject, both aiming at target requests per second a pod.
func startPeers(ctx context.Context, env *localenv.Env, c config, target float64) error {
	if simulate.TunedHPA.Window != time.Minute || !simulate.TunedHPA.Instant {
		return fmt.Errorf("the real peers' query is irate over 1m; simulate.TunedHPA asks for another: update localenv.AdapterRequestRate and query")
	}
	if err := env.StartPrometheusAdapter(ctx, localenv.AdapterRequestRate); err != nil {
		return err
	}
	if err := env.StartKEDA(ctx); err != nil {
		return err
	}
	if err := env.ApplyObjects(ctx,
		localenv.HPA(namespace, "web-"+hpa, target, simulate.MaxReplicas, behavior()),
		localenv.ScaledObject(namespace, "web-"+keda, env.PrometheusURL, query("web-"+keda), target, simulate.MaxReplicas, behavior())); err != nil {
		return err
	}
	// Both HPAs must read their metric before the replay starts.
	client, err := env.Client()
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, name := range []string{"web-" + hpa, "keda-hpa-web-" + keda} {
			h, err := client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil || len(h.Status.CurrentMetrics) == 0 {
				return false, nil
			}
		}
		return true, nil
	})
}

type status struct {
	Sent    int64 `json:"sent"`
	Dropped int64 `json:"dropped"`
	Served  int64 `json:"served"`
	Shed    int64 `json:"shed"`
	Failed  int64 `json:"failed"`
}

func setLoad(base string, rps float64) error {
	resp, err := http.PostForm(base+"/load", url.Values{"profile": {"steady"}, "rps": {fmt.Sprint(rps)}, "duration": {"1h"}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("setting the load at %s: %s", base, resp.Status)
	}
	return nil
}

func loadStatus(base string) (status, error) {
	var s status
	resp, err := http.Get(base + "/load")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// recorder samples every Deployment's replicas (spec and ready) every
// second, and every pod's start-up (created to Ready).
type recorder struct {
	client kubernetes.Interface
	start  time.Time

	mu      sync.Mutex
	series  map[string][]sample
	startup map[string]time.Duration // by pod UID
}

type sample struct {
	At            time.Duration `json:"atSeconds"`
	Replicas      int32         `json:"replicas"`
	Ready         int32         `json:"ready"`
	ModelReplicas int32         `json:"modelReplicas"`
	ModelReady    int32         `json:"modelReady"`
}

func newRecorder(client kubernetes.Interface) *recorder {
	return &recorder{client: client, series: map[string][]sample{}, startup: map[string]time.Duration{}}
}

func (r *recorder) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		r.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *recorder) sample(ctx context.Context) {
	at := time.Since(r.start).Truncate(time.Second)
	for _, p := range policies {
		d, err := r.client.AppsV1().Deployments(namespace).Get(ctx, "web-"+p, metav1.GetOptions{})
		if err != nil {
			continue
		}
		r.mu.Lock()
		r.series[p] = append(r.series[p], sample{At: at, Replicas: *d.Spec.Replicas, Ready: d.Status.ReadyReplicas})
		r.mu.Unlock()
	}
	pods, err := r.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pod := range pods.Items {
		for _, cond := range pod.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && pod.CreationTimestamp.Time.After(r.start) {
				r.startup[string(pod.UID)] = cond.LastTransitionTime.Sub(pod.CreationTimestamp.Time)
			}
		}
	}
}

// now is the latest replicas of each policy, for the progress lines.
func (r *recorder) now() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for _, p := range policies {
		if s := r.series[p]; len(s) > 0 {
			parts = append(parts, fmt.Sprintf("%s %d (%d ready)", p, s[len(s)-1].Replicas, s[len(s)-1].Ready))
		}
	}
	return strings.Join(parts, ", ")
}

// medianStartup is the median start-up of the pods created during the
// run (the model's World.Startup).
func (r *recorder) medianStartup() (time.Duration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var d []time.Duration
	for _, v := range r.startup {
		d = append(d, v)
	}
	if len(d) == 0 {
		return 0, 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2], len(d)
}

// result is one policy's real run beside its model.
type result struct {
	Policy         string   `json:"policy"`
	Model          string   `json:"model"`
	Demand         float64  `json:"demandRequests"`
	Sent           int64    `json:"sent"`
	Shed           int64    `json:"shed"`
	Failed         int64    `json:"failed"`
	UnservedShare  float64  `json:"unservedShare"`
	ReplicaSeconds float64  `json:"replicaSeconds"`
	Peak           int32    `json:"peakReplicas"`
	ModelUnserved  float64  `json:"modelUnservedShare"`
	ModelReplicaS  float64  `json:"modelReplicaSeconds"`
	ModelPeak      int32    `json:"modelPeakReplicas"`
	WorstGap       int32    `json:"worstGapReplicas"`
	WorstGapAt     float64  `json:"worstGapAtSeconds"`
	MeanAbsGap     float64  `json:"meanAbsGapReplicas"`
	Series         []sample `json:"series"`
}

func report(c config, seg *simulate.Trace, initial int32, rec *recorder, counts map[string]status) error {
	startup, pods := rec.medianStartup()
	if pods == 0 {
		startup = simulate.DefaultWorld.Startup
	}
	world := simulate.DefaultWorld.WithScrape(c.scrape)
	world.Capacity, world.Startup, world.Initial = c.capacity, startup.Round(time.Second), initial
	var only []string
	for _, p := range policies {
		only = append(only, model[p])
	}
	scores, err := simulate.Compare(simulate.Options{World: world, Utilization: c.knob, Alerting: simulate.DefaultAlerting, Only: only}, seg)
	if err != nil {
		return err
	}
	fmt.Printf("\nMedian pod start-up in this run (created to Ready, %d pods): %s; the model uses it.\n", pods, startup.Round(100*time.Millisecond))
	var results []result
	for i, p := range policies {
		s, m := counts[p], scores[i]
		res := result{Policy: p, Model: m.Policy, Demand: m.DemandRequests, Sent: s.Sent + s.Dropped, Shed: s.Shed, Failed: s.Failed + s.Dropped,
			ModelUnserved: m.UnservedShare, ModelReplicaS: m.ReplicaSeconds, ModelPeak: m.PeakReplicas}
		if res.Sent > 0 {
			res.UnservedShare = float64(res.Shed+res.Failed) / float64(res.Sent)
		}
		rec.mu.Lock()
		series := slices.Clone(rec.series[p])
		rec.mu.Unlock()
		var gapSum float64
		for j, smp := range series {
			if smp.At >= seg.Duration() {
				series = series[:j]
				break
			}
			idx := min(len(m.Series)-1, int(smp.At/world.Tick))
			series[j].ModelReplicas, series[j].ModelReady = m.Series[idx].Replicas, m.Series[idx].Ready
			gap := smp.Replicas - m.Series[idx].Replicas
			if abs32(gap) > abs32(res.WorstGap) {
				res.WorstGap, res.WorstGapAt = gap, smp.At.Seconds()
			}
			gapSum += math.Abs(float64(gap))
			res.Peak = max(res.Peak, smp.Replicas)
			if j > 0 {
				res.ReplicaSeconds += float64(series[j-1].Replicas) * (smp.At - series[j-1].At).Seconds()
			}
		}
		if len(series) > 0 {
			res.MeanAbsGap = gapSum / float64(len(series))
		}
		res.Series = series
		results = append(results, res)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tsent\tshed\tfailed\tunserved\treplica-s\tpeak\t| model\tunserved\treplica-s\tpeak\t| worst gap\tat\tmean |gap|\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f %%\t%.0f\t%d\t| %s\t%.2f %%\t%.0f\t%d\t| %+d\t%s\t%.2f\t\n", r.Policy, r.Sent, r.Shed, r.Failed,
			100*r.UnservedShare, r.ReplicaSeconds, r.Peak, r.Model, 100*r.ModelUnserved, r.ModelReplicaS, r.ModelPeak,
			r.WorstGap, clock(time.Duration(r.WorstGapAt*float64(time.Second))), r.MeanAbsGap)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Println("\nReplicas over time, real (model), one line a minute:")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "time\tRPS\t%s\t\n", strings.Join(policies, "\t"))
	for minute := time.Duration(0); minute < seg.Duration(); minute += time.Minute {
		row := []string{clock(minute), fmt.Sprintf("%.1f", seg.RPS[int(minute/seg.Step)])}
		for _, r := range results {
			cell := "-"
			for _, smp := range r.Series {
				if smp.At >= minute {
					cell = fmt.Sprintf("%d (%d)", smp.Replicas, smp.ModelReplicas)
					break
				}
			}
			row = append(row, cell)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	kpa, err := knative(c, seg, world)
	if err != nil {
		return err
	}
	fmt.Println("\nKnative's KPA cannot run here without Knative; its decider can (hack/tools/kpa: knative.dev/serving's")
	fmt.Println("pkg/autoscaler/scaling and its collector's window buckets), in the model's world with this run's start-up:")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "configuration	Knative's decider: unserved	replica-s	peak	| the model: unserved	replica-s	peak	")
	for _, p := range kpa {
		k, m := p.Knative, p.Model
		fmt.Fprintf(tw, "%s	%.2f %%	%.0f	%d	| %.2f %%	%.0f	%d	\n", k.Policy, 100*k.UnservedShare, k.ReplicaSeconds, k.PeakReplicas,
			100*m.UnservedShare, m.ReplicaSeconds, m.PeakReplicas)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c.jsonOut != "" {
		b, err := json.MarshalIndent(map[string]any{"segment": seg.Name, "lengthSeconds": c.length.Seconds(), "peakRPS": c.peak,
			"capacityRPS": c.capacity, "knob": c.knob, "world": world, "results": results, "kpa": kpa}, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(c.jsonOut, b, 0o644)
	}
	return nil
}

// kpaPair is one KPA configuration scored by Knative's decider and by the
// model (kpa-decider's output).
type kpaPair struct {
	Model   simulate.Score `json:"model"`
	Knative simulate.Score `json:"knative"`
}

// knative runs bin/kpa-decider on the segment in world.
func knative(c config, seg *simulate.Trace, world simulate.World) ([]kpaPair, error) {
	f, err := os.CreateTemp("", "bench-real-segment-*.csv")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if err := simulate.WriteCSV(f, seg); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	out, err := exec.Command(filepath.Join(c.bin, "kpa-decider"), "-trace", f.Name(), "-capacity", fmt.Sprint(c.capacity),
		"-knob", fmt.Sprint(c.knob), "-startup", world.Startup.String(), "-scrape", world.Scrape.String(),
		"-initial", fmt.Sprint(world.Initial)).Output()
	if err != nil {
		return nil, fmt.Errorf("kpa-decider: %w", err)
	}
	var pairs []kpaPair
	return pairs, json.Unmarshal(out, &pairs)
}

func abs32(v int32) int32 {
	if v < 0 {
		return -v
	}
	return v
}

func clock(d time.Duration) string {
	d = d.Truncate(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}
