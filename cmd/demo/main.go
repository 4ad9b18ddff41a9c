// Command demo is `make demo`: the seed's walkthrough on a real local
// cluster with a real node. It starts etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, a node (containerd, runc,
// kubelet, kube-proxy), Prometheus and Alertmanager; installs the
// autoscaler with helm from charts/ (two pods of the image make image
// builds, one leading); runs the demo `frontend` service as demo-app pods
// that each serve a fixed capacity and shed the rest; ramps real HTTP load
// through frontend's Service up past the last threshold and stops it; and
// prints the replicas as `kubectl get deployment frontend --watch` would,
// with the requests served and shed beside them, then writes the timeline
// as an SVG plot. Then it shows the forecast scaling a second service
// ahead of a ramp that recurs daily (forecast.go), with its own timeline
// and plot.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

func main() {
	exe, _ := os.Executable()
	binDir := flag.String("bin", filepath.Dir(exe), "directory with the built tools, binaries and images")
	keep := flag.Bool("keep", false, "keep the environment running after the scenario, until Ctrl-C")
	plot := flag.String("plot", "demo-timeline.svg", "where to write the SVG timeline")
	peak := flag.Float64("peak", 120, "peak requests per second of the ramp")
	rules := flag.String("rules", filepath.Join(filepath.Dir(exe), "..", "deploy", "prometheus", "reactive-autoscaler-rules.yaml"), "the spike alert rules Prometheus loads")
	chart := flag.String("chart", filepath.Join(filepath.Dir(exe), "..", "charts", "reactive-autoscaler"), "the chart helm installs")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *binDir, *rules, *chart, *keep, *plot, *peak); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "demo: interrupted; every process it started has been stopped")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// capacity is what one frontend or checkout pod serves, in requests per
// second; it sheds (503, counted) what exceeds it.
const capacity = 40

const banner = `reactive-autoscaler demo
  Real:      etcd, kube-apiserver, kube-controller-manager, kube-scheduler, a node
             (containerd, runc, a CNI bridge, kubelet, kube-proxy), Prometheus (1 s scrape,
             discovering the pods), Alertmanager; the autoscaler installed with helm from
             charts/: two pods of the image make image builds, electing a leader; frontend
             and checkout as demo-app pods, each serving 40 requests a second and shedding
             (503, counted) the rest; and the HTTP traffic, through their Services.
  Timing:    the demo annotates frontend with a 5 s interval and a 15 s cooldown, and
             queries rate() over 10 s, so the walkthrough fits in about three minutes. The
             defaults are a 30 s interval and a 60 s cooldown. Then checkout, on the
             recommended profile, meets a ramp that came at the same minute on each of the
             last two days (history backfilled into Prometheus): the forecast scales it
             ahead of the ramp. About eight minutes in all.
`

func run(ctx context.Context, binDir, rules, chart string, keep bool, plotPath string, peak float64) (err error) {
	fmt.Print(banner)
	fmt.Println("\nStarting the local cluster, its node and the monitoring stack...")
	before := localenv.ReadHostState()
	env, tokenFile, err := startStack(ctx, binDir, rules)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("\nStopping every process the demo started and undoing the node's changes to the host...")
		env.Stop()
		fmt.Printf("Logs of every component are in %s\n", env.Dir)
		if diff := cmp.Diff(before, localenv.ReadHostState(env.Dir)); diff != "" {
			err = errors.Join(err, fmt.Errorf("the host differs from before the demo (-before +after):\n%s", diff))
		} else {
			fmt.Println("The host is as it was: no iptables rule, mount, link, network namespace, cgroup or process of the node's is left.")
		}
	}()
	// checkout's daily ramp comes six to seven minutes from now, after the
	// walkthrough; its history must be in Prometheus before the autoscaler
	// first reads it.
	ramp := time.Now().Truncate(time.Minute).Add(7 * time.Minute)
	if err := backfillCheckout(ctx, env, ramp); err != nil {
		return err
	}
	leader, err := installChart(ctx, env, binDir, chart, tokenFile)
	if err != nil {
		return err
	}
	w, err := newWatcher(env, "default", "frontend", `sum(rate(http_requests_total{service="frontend"}[10s]))`)
	if err != nil {
		return err
	}
	frontend, err := w.serve(ctx, binDir, map[string]string{
		"autoscale.io/reactive": "true",
		"autoscale.io/interval": "5s",
		"autoscale.io/cooldown": "15s",
		"autoscale.io/query":    `sum(rate(http_requests_total{service="{{.Service}}"}[10s]))`,
	})
	if err != nil {
		return err
	}
	checkoutWatch, checkout, err := startCheckout(ctx, env, binDir)
	if err != nil {
		return err
	}
	fmt.Printf("\nkubeconfig: %s   Prometheus: %s   the autoscaler: 2 pods in namespace %s, %s leading\n", env.Kubeconfig, env.PrometheusURL, chartNamespace, leader)
	fmt.Printf("Deployment frontend: autoscale.io/reactive=true, seed thresholds 1:10/0,2:30/8,3:60/25,4:100/50,5:inf/90; %d RPS a pod\n", capacity)
	if err := walkthrough(ctx, w, frontend, peak); err != nil {
		return err
	}
	if err := w.writeSVG(plotPath); err != nil {
		return err
	}
	fmt.Printf("\nScale actions: %s\nTimeline plot: %s\n", w.actionSummary(), plotPath)
	if w.distinctReplicas() < 3 || !w.scaledDown() {
		return fmt.Errorf("the walkthrough did not scale through three replica counts and back down: %s", w.actionSummary())
	}
	if err := forecastScenario(ctx, checkoutWatch, checkout, ramp, forecastPlot(plotPath)); err != nil {
		return err
	}
	if keep {
		fmt.Printf("\nThe environment stays up until Ctrl-C. Try:\n  export KUBECONFIG=%s\n  bin/kubectl get deployment frontend --watch\n  bin/demo-app load --url http://%s --profile spike --rps 150 --duration 30s\n", env.Kubeconfig, frontend)
		<-ctx.Done()
	}
	return nil
}

// startStack starts the local cluster with a real node (the images make
// image and make node-images build imported), Prometheus with the spike
// rule and Alertmanager, with the token file the chart's webhook and
// Alertmanager share. Alertmanager's receiver is set once the chart's
// webhook Service has an address (installChart).
func startStack(ctx context.Context, binDir, rules string) (env *localenv.Env, tokenFile string, err error) {
	if rules, err = filepath.Abs(rules); err != nil {
		return nil, "", err
	}
	if _, err := os.Stat(rules); err != nil {
		return nil, "", fmt.Errorf("the spike rule file: %w", err)
	}
	var images []string
	for _, img := range []string{"pause-image.tar", "demo-app-image.tar", "reactive-autoscaler-image.tar"} {
		p := filepath.Join(binDir, img)
		if _, err := os.Stat(p); err != nil {
			return nil, "", fmt.Errorf("%s is missing: run make image node-images", p)
		}
		images = append(images, p)
	}
	dir, err := os.MkdirTemp("", "reactive-autoscaler-demo-")
	if err != nil {
		return nil, "", err
	}
	tokenFile = filepath.Join(dir, "webhook-token")
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	if err := os.WriteFile(tokenFile, []byte(hex.EncodeToString(token)), 0o600); err != nil {
		return nil, "", err
	}
	opts := localenv.SpikeStack(binDir, rules, "http://127.0.0.1:9/not-yet", tokenFile)
	opts.KwokNodes, opts.Node = 0, &localenv.NodeOptions{Images: images}
	opts.Dir, opts.KeepDir, opts.Log = dir, true, os.Stdout
	env, err = localenv.Start(ctx, opts)
	return env, tokenFile, err
}

// startLoad starts a demo-app process on the host whose generator loads
// target (a Service's URL), and returns its address: POST /load there
// sets the load.
func startLoad(ctx context.Context, env *localenv.Env, binDir, service, target string) (string, error) {
	port, err := localenv.FreePort()
	if err != nil {
		return "", err
	}
	app := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := env.StartProcess("load-"+service, filepath.Join(binDir, "demo-app"), nil, "serve", "--listen", app,
		"--service", "load-"+service, "--target", target)
	if err != nil {
		return "", err
	}
	return app, localenv.WaitReady(ctx, "http://"+app+"/load", p, 30*time.Second)
}

// walkthrough drives the load through its steps (ramp, peak, stop, spike)
// and follows the Deployment until each step's condition holds.
func walkthrough(ctx context.Context, w *watcher, app string, peak float64) error {
	steps := []struct {
		say      string
		profile  string
		rps      float64
		duration time.Duration
		until    func(*watcher) bool
	}{
		{fmt.Sprintf("Ramping load from 0 to %.0f RPS over 60 s", peak), "ramp", peak, 60 * time.Second,
			func(w *watcher) bool {
				return w.elapsedInStep() > 75*time.Second || (w.elapsedInStep() > 60*time.Second && w.replicas() >= 5)
			}},
		{"Holding the peak for 15 s", "steady", peak, time.Minute, func(w *watcher) bool { return w.elapsedInStep() > 15*time.Second }},
		// Quiet for a minute after the scale-down, so that the spike rule's
		// one-minute baseline no longer holds the peak.
		{"Load stops: scale-down waits for two good samples and the cooldown; then a quiet minute", "stop", 0, time.Minute,
			func(w *watcher) bool {
				return w.replicas() == 1 && w.ready() == 1 && w.elapsedInStep() > 75*time.Second
			}},
		{"Sudden spike to 150 RPS: Prometheus rule -> Alertmanager -> webhook, no wait for the 5 s interval", "spike", 150, 30 * time.Second,
			func(w *watcher) bool {
				return w.replicas() >= 4 && w.ready() >= 4 && w.elapsedInStep() > 25*time.Second
			}},
	}
	w.header()
	for _, st := range steps {
		w.note(st.say)
		if err := setLoad("http://"+app, st.profile, st.rps, st.duration); err != nil {
			return err
		}
		w.stepStart = time.Now()
		if err := w.follow(ctx, 3*time.Minute, st.until); err != nil {
			return err
		}
		if st.profile == "spike" {
			if d, ok := w.firstChangeSince(w.stepStart); ok {
				fmt.Printf("%-6s ---- Spike to new replicas written: %.1f s after the load step\n", clock(time.Since(w.start)), d.Seconds())
			}
			peak, last := w.shedSince(w.stepStart)
			fmt.Printf("%-6s ---- Shed: %.1f requests/s at worst, %.1f/s once %d pods were Ready\n", clock(time.Since(w.start)), peak, last, w.ready())
			if peak > 0 && last >= peak {
				return fmt.Errorf("the pods shed as much at the end of the spike (%.1f/s) as at its worst: the new replicas bought no capacity", last)
			}
		}
	}
	return nil
}

func setLoad(base, profile string, rps float64, d time.Duration) error {
	resp, err := http.PostForm(base+"/load", url.Values{"profile": {profile}, "rps": {fmt.Sprint(rps)}, "duration": {d.String()}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("setting the load: %s", resp.Status)
	}
	return nil
}
