// Command benchscale measures the controller at scale (make bench-scale):
// a real kube-apiserver and etcd (no controller-manager: no pods), N
// Deployments of which a share is annotated, a synthetic exporter serving
// one http_requests_total series per service, real Prometheus scraping it,
// and the real binary, run twice per N: the batched path (one grouped query
// per tick, lean cache) and the naive path (a query per target, whole
// objects cached). It prints, per run, the first cycle, then the steady
// state over two intervals: evaluations, Prometheus queries per cycle, p99
// evaluation lag, controller RSS and CPU seconds, and the naive path as a
// ratio to the batched one. With -history, Prometheus first gets that much
// history of every service (backfilled with promtool), so the built-in
// forecaster (on by default in shadow mode) reads a real season, and the
// batched path is run again without it (--default-predictor=none): the
// forecaster's cost.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

func main() {
	sizes := flag.String("n", "1000,10000", "numbers of Deployments, comma separated")
	share := flag.Float64("share", 0.5, "share of them annotated autoscale.io/reactive=true")
	interval := flag.Duration("interval", 30*time.Second, "evaluation interval (the default)")
	cycles := flag.Int("cycles", 2, "steady-state cycles measured per run")
	binDir := flag.String("bin", "bin", "directory of reactive-autoscaler, etcd, kube-apiserver")
	only := flag.String("paths", "", "comma-separated paths to run: batched, no-forecast (batched without forecasts), naive (default all)")
	history := flag.Duration("history", 26*time.Hour, "history backfilled per service before measuring (0: none); a day is what the forecaster needs")
	flag.Parse()
	if err := run(*sizes, *share, *interval, *cycles, *binDir, *history, *only); err != nil {
		fmt.Fprintln(os.Stderr, "benchscale:", err)
		os.Exit(1)
	}
}

type result struct {
	n, managed         int
	path               string
	firstCycle         time.Duration
	evaluations        float64
	queriesPerCycle    float64
	lagP50, lagP99     float64
	cycle              time.Duration // steady state: tick to the last evaluation of it
	rssMB, peakRSSMB   float64
	cpuSecondsPerCycle float64
	forecasts          float64 // targets with a forecast after the first cycle
	noForecast         string  // why the first target has none, from its status
	// allForecasts is when every target had a forecast, from the start
	// (0: not asked, -1: not within 10 minutes): the season is read off
	// the evaluations' path, so decisions do not wait for it.
	allForecasts time.Duration
}

func run(sizes string, share float64, interval time.Duration, cycles int, binDir string, history time.Duration, only string) error {
	bin, err := filepath.Abs(binDir)
	if err != nil {
		return err
	}
	ctx := context.Background()
	env, err := localenv.Start(ctx, localenv.Options{BinDir: bin, Log: os.Stderr,
		Prometheus: &localenv.PrometheusOptions{ScrapeInterval: 5 * time.Second}})
	if err != nil {
		return err
	}
	defer env.Stop()
	cfg := env.RESTConfig()
	cfg.QPS, cfg.Burst = 2000, 4000
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}

	var results []result
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-n: %w", err)
		}
		managed := int(math.Round(float64(n) * share))
		ns := fmt.Sprintf("scale-%d", n)
		exp, err := startExporter(managed)
		if err != nil {
			return err
		}
		if err := env.AddScrapeTarget("synthetic-"+ns, exp, "namespace", ns); err != nil {
			return err
		}
		start := time.Now()
		if err := createDeployments(ctx, client, ns, n, managed); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "benchscale: %d Deployments (%d annotated) in %s created in %s\n", n, managed, ns, time.Since(start).Round(time.Second))
		paths := []string{"batched", "naive"}
		if history > 0 {
			start := time.Now()
			if err := backfill(ctx, env, ns, managed, history); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "benchscale: %v of history for %d services backfilled in %s\n", history, managed, time.Since(start).Round(time.Second))
			paths = []string{"batched", "batched, no forecast", "naive"}
		}
		// rate()[1m] needs a minute of samples of every series.
		if err := waitSeries(ctx, env.PrometheusURL, managed, 3*time.Minute); err != nil {
			return err
		}
		for _, path := range paths {
			if only != "" && !slices.Contains(strings.Split(only, ","), strings.ReplaceAll(strings.TrimPrefix(path, "batched, "), " ", "-")) {
				continue
			}
			r, err := measure(ctx, env, client, bin, ns, n, managed, path, interval, cycles)
			if err != nil {
				return fmt.Errorf("%s, N=%d: %w", path, n, err)
			}
			results = append(results, r)
			fmt.Fprintf(os.Stderr, "benchscale: %+v\n", r)
		}
	}
	report(os.Stdout, results, interval)
	return nil
}

// startExporter serves http_requests_total{service="svc-i"} for i < n, each
// counting 5 requests per second (steady: the controller holds at 1).
func startExporter(n int) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		v := 5 * time.Since(t0).Seconds()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		var b strings.Builder
		b.WriteString("# TYPE http_requests_total counter\n")
		for i := range n {
			fmt.Fprintf(&b, "http_requests_total{service=\"svc-%05d\"} %.1f\n", i, v)
		}
		_, _ = w.Write([]byte(b.String()))
	}))
	return ln.Addr().String(), nil
}

// createDeployments creates n Deployments shaped like real ones (a pod
// template with resources, probes, env and the last-applied annotation
// kubectl writes), the first managed of them opted in.
func createDeployments(ctx context.Context, client kubernetes.Interface, ns string, n, managed int) error {
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	lastApplied := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"name":"x"},"spec":` + strings.Repeat(`{"padding":"a realistic last-applied-configuration"}`, 40) + `}`
	work := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range work {
				name := fmt.Sprintf("app-%05d", i)
				ann := map[string]string{"kubectl.kubernetes.io/last-applied-configuration": lastApplied, "team": "platform"}
				if i < managed {
					ann["autoscale.io/reactive"] = "true"
					ann["autoscale.io/service"] = fmt.Sprintf("svc-%05d", i)
				}
				if _, err := client.AppsV1().Deployments(ns).Create(ctx, deployment(ns, name, ann), metav1.CreateOptions{}); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func deployment(ns, name string, ann map[string]string) *appsv1.Deployment {
	one := int32(1)
	labels := map[string]string{"app": name, "tier": "web", "version": "v1"}
	env := []corev1.EnvVar{}
	for i := range 10 {
		env = append(env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d", i), Value: "some configuration value"})
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: ann},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "example/" + name + ":1.0", Env: env,
					Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080)}}},
				}}},
			},
		},
	}
}

// waitSeries waits until the grouped default query answers every service.
func waitSeries(ctx context.Context, promURL string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		v, err := localenv.Query(ctx, promURL, `count(sum by (namespace, service) (rate(http_requests_total[1m])) > 0)`)
		if err == nil && int(v) >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Prometheus has %v of %d series with a rate after %v (%v)", v, want, timeout, err)
		}
		time.Sleep(2 * time.Second)
	}
}

func measure(ctx context.Context, env *localenv.Env, client kubernetes.Interface, bin, ns string, n, managed int, path string, interval time.Duration, cycles int) (result, error) {
	r := result{n: n, managed: managed, path: path}
	port, err := localenv.FreePort()
	if err != nil {
		return r, err
	}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	batched := strings.HasPrefix(path, "batched")
	args := []string{"run", "--kubeconfig", env.Kubeconfig, "--namespace", ns, "--prometheus-url", env.PrometheusURL,
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port), "--leader-elect=false",
		"--batch-queries=" + strconv.FormatBool(batched), "--lean-cache=" + strconv.FormatBool(batched),
		"--kube-api-qps=200", "--kube-api-burst=400", "--default-interval=" + interval.String(), "-v=1"}
	if strings.HasSuffix(path, "no forecast") {
		args = append(args, "--default-predictor=none")
	}
	p, err := env.StartProcess("autoscaler-"+ns+"-"+path, filepath.Join(bin, "reactive-autoscaler"), nil, args...)
	if err != nil {
		return r, err
	}
	defer p.Stop(10 * time.Second)
	start := time.Now()
	// The first cycle: every target seen, warmed and its status written once.
	if err := waitMetric(metricsURL, "reactive_autoscaler_evaluations_total", float64(managed), 10*time.Minute); err != nil {
		return r, err
	}
	r.firstCycle = time.Since(start)
	if first, err := scrape(metricsURL); err == nil {
		r.forecasts = first.count("reactive_autoscaler_target_predicted_rps")
	}
	if d, err := client.AppsV1().Deployments(ns).Get(ctx, "app-00000", metav1.GetOptions{}); err == nil {
		var st struct {
			Predictor *struct {
				NoForecast string `json:"noForecast"`
			} `json:"predictor"`
		}
		if json.Unmarshal([]byte(d.Annotations["autoscale.io/status"]), &st) == nil && st.Predictor != nil {
			r.noForecast = st.Predictor.NoForecast
		}
	}

	// Every target's forecast: the season is read off the evaluations'
	// path and adopted by a later evaluation. The steady state is
	// measured once they forecast.
	if !strings.HasSuffix(path, "no forecast") {
		r.allForecasts = -1
		for time.Since(start) < 10*time.Minute {
			if m, err := scrape(metricsURL); err == nil && m.count("reactive_autoscaler_target_predicted_rps") >= float64(managed) {
				r.allForecasts = time.Since(start)
				break
			}
			time.Sleep(time.Second)
		}
	}

	// Steady state from the next tick on.
	next := time.Now().Truncate(interval).Add(interval)
	time.Sleep(time.Until(next) - 200*time.Millisecond)
	before, err := scrape(metricsURL)
	if err != nil {
		return r, err
	}
	cpu0, _ := cpuSeconds(p.Pid())
	var cycleTimes []time.Duration
	for c := range cycles {
		tick := next.Add(time.Duration(c) * interval)
		base, err := scrape(metricsURL)
		if err != nil {
			return r, err
		}
		target := base.sum("reactive_autoscaler_evaluations_total") + float64(managed)
		for time.Now().Before(tick.Add(interval - time.Second)) {
			m, err := scrape(metricsURL)
			if err == nil && m.sum("reactive_autoscaler_evaluations_total") >= target {
				cycleTimes = append(cycleTimes, time.Since(tick))
				break
			}
			// Not faster: rendering /metrics with a series per target is
			// work for the controller being measured.
			time.Sleep(500 * time.Millisecond)
		}
		time.Sleep(time.Until(tick.Add(interval)) - 200*time.Millisecond)
	}
	after, err := scrape(metricsURL)
	if err != nil {
		return r, err
	}
	cpu1, _ := cpuSeconds(p.Pid())
	r.evaluations = after.sum("reactive_autoscaler_evaluations_total") - before.sum("reactive_autoscaler_evaluations_total")
	r.queriesPerCycle = (after.histCount("reactive_autoscaler_prometheus_query_duration_seconds") - before.histCount("reactive_autoscaler_prometheus_query_duration_seconds")) / float64(cycles)
	r.lagP50 = quantile(0.5, before, after, "reactive_autoscaler_evaluation_lag_seconds")
	r.lagP99 = quantile(0.99, before, after, "reactive_autoscaler_evaluation_lag_seconds")
	r.cpuSecondsPerCycle = (cpu1 - cpu0) / float64(cycles)
	for _, c := range cycleTimes {
		r.cycle = max(r.cycle, c)
	}
	if len(cycleTimes) < cycles {
		r.cycle = -1 // some cycle never finished within its interval
	}
	if r.rssMB, r.peakRSSMB, err = p.Memory(); err != nil {
		return r, err
	}
	return r, nil
}

type snapshot map[string]*dto

type dto = struct {
	values  []float64
	buckets map[float64]float64
	count   float64
}

func scrape(url string) (snapshot, error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := snapshot{}
	for name, mf := range mfs {
		d := &dto{buckets: map[float64]float64{}}
		for _, m := range mf.GetMetric() {
			d.values = append(d.values, m.GetCounter().GetValue()+m.GetGauge().GetValue())
			if h := m.GetHistogram(); h != nil {
				d.count += float64(h.GetSampleCount())
				for _, b := range h.GetBucket() {
					d.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				}
			}
		}
		out[name] = d
	}
	return out, nil
}

func (s snapshot) sum(name string) float64 {
	t := 0.0
	if d, ok := s[name]; ok {
		for _, v := range d.values {
			t += v
		}
	}
	return t
}

// count is how many series the metric has.
func (s snapshot) count(name string) float64 {
	if d, ok := s[name]; ok {
		return float64(len(d.values))
	}
	return 0
}

func (s snapshot) histCount(name string) float64 {
	if d, ok := s[name]; ok {
		return d.count
	}
	return 0
}

// quantile estimates q of a histogram's observations between two
// snapshots: the upper bound of the first bucket holding q of them.
func quantile(q float64, before, after snapshot, name string) float64 {
	a, b := after[name], before[name]
	if a == nil {
		return math.NaN()
	}
	var bounds []float64
	for ub := range a.buckets {
		bounds = append(bounds, ub)
	}
	sort.Float64s(bounds)
	total := a.count
	if b != nil {
		total -= b.count
	}
	if total <= 0 {
		return math.NaN()
	}
	for _, ub := range bounds {
		c := a.buckets[ub]
		if b != nil {
			c -= b.buckets[ub]
		}
		if c >= q*total {
			return ub
		}
	}
	return math.Inf(1)
}

func waitMetric(url, name string, atLeast float64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if s, err := scrape(url); err == nil && s.sum(name) >= atLeast {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("%s did not reach %v within %v", name, atLeast, timeout)
}

// cpuSeconds is the user+system CPU time of a process (/proc/PID/stat).
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	clk := 100.0 // USER_HZ on Linux
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil {
			clk = v
		}
	}
	return (utime + stime) / clk, nil
}

func report(w *os.File, rs []result, interval time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "N\tmanaged\tpath\tfirst cycle\tsteady cycle\tp50 lag\tp99 lag\tqueries/cycle\tCPU s/cycle\tRSS MB\tpeak RSS MB\tforecasts\tall forecast\t\n")
	for _, r := range rs {
		cycle := r.cycle.Round(10 * time.Millisecond).String()
		if r.cycle < 0 {
			cycle = "> interval"
		}
		if r.path == "naive" {
			cycle = "(not aligned)"
		}
		all := "-"
		switch {
		case r.allForecasts < 0:
			all = "> 10m"
		case r.allForecasts > 0:
			all = r.allForecasts.Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%.3fs\t%.3fs\t%.0f\t%.2f\t%.0f\t%.0f\t%.0f\t%s\t\n", r.n, r.managed, r.path,
			r.firstCycle.Round(100*time.Millisecond), cycle, r.lagP50, r.lagP99, r.queriesPerCycle, r.cpuSecondsPerCycle, r.rssMB, r.peakRSSMB, r.forecasts, all)
	}
	_ = tw.Flush()
	byPath := map[int]map[string]result{}
	var sizes []int
	for _, r := range rs {
		if byPath[r.n] == nil {
			byPath[r.n] = map[string]result{}
			sizes = append(sizes, r.n)
		}
		byPath[r.n][r.path] = r
	}
	fmt.Fprintf(w, "\nsame run (interval %v):\n", interval)
	for _, n := range sizes {
		b := byPath[n]["batched"]
		if nv, ok := byPath[n]["naive"]; ok {
			fmt.Fprintf(w, "  N=%d naive / batched: queries/cycle %.0fx, CPU %.1fx, RSS %.1fx, p99 lag %.1fx\n", n,
				nv.queriesPerCycle/b.queriesPerCycle, nv.cpuSecondsPerCycle/b.cpuSecondsPerCycle, nv.rssMB/b.rssMB, nv.lagP99/b.lagP99)
		}
		if nf, ok := byPath[n]["batched, no forecast"]; ok {
			fmt.Fprintf(w, "  N=%d batched with / without forecasts: first cycle %.1fx, RSS %.1fx (%+.0f MB), CPU %.1fx, queries/cycle %.1fx\n", n,
				b.firstCycle.Seconds()/nf.firstCycle.Seconds(), b.rssMB/nf.rssMB, b.rssMB-nf.rssMB, b.cpuSecondsPerCycle/nf.cpuSecondsPerCycle, b.queriesPerCycle/nf.queriesPerCycle)
		}
	}
}

// backfill gives Prometheus history of every managed service: 5 RPS, as
// the exporter serves, over [now-history, now-2m) at a 30 s resolution (a
// 1m rate needs two samples in its window wherever the step falls).
func backfill(ctx context.Context, env *localenv.Env, ns string, managed int, history time.Duration) error {
	now := time.Now()
	var b strings.Builder
	b.WriteString("# HELP http_requests HTTP requests.\n# TYPE http_requests counter\n")
	for i := range managed {
		series := fmt.Sprintf("http_requests_total{job=\"history\",namespace=%q,service=\"svc-%05d\"}", ns, i)
		count := 0.0
		for at := now.Add(-history); at.Before(now.Add(-2 * time.Minute)); at = at.Add(30 * time.Second) {
			fmt.Fprintf(&b, "%s %.0f %d\n", series, count, at.Unix())
			count += 5 * 30
		}
	}
	b.WriteString("# EOF\n")
	return env.Backfill(ctx, []byte(b.String()))
}
