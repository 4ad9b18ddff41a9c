// Command demo is `make demo`: the seed's walkthrough on a real local
// cluster. It starts etcd, kube-apiserver, kube-controller-manager, kwok,
// Prometheus, Alertmanager, the demo `frontend` service and the autoscaler;
// ramps real HTTP load up past the last threshold and stops it; and prints
// the replicas as `kubectl get deployment frontend --watch` would, with the
// request rate beside them, then writes the timeline as an SVG plot. Then
// it shows the forecast scaling a second service ahead of a ramp that
// recurs daily (forecast.go), with its own timeline and plot.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

func main() {
	exe, _ := os.Executable()
	binDir := flag.String("bin", filepath.Dir(exe), "directory with the built tools and binaries")
	keep := flag.Bool("keep", false, "keep the environment running after the scenario, until Ctrl-C")
	plot := flag.String("plot", "demo-timeline.svg", "where to write the SVG timeline")
	peak := flag.Float64("peak", 120, "peak requests per second of the ramp")
	rules := flag.String("rules", filepath.Join(filepath.Dir(exe), "..", "deploy", "prometheus", "reactive-autoscaler-rules.yaml"), "the spike alert rules Prometheus loads")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *binDir, *rules, *keep, *plot, *peak); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "demo: interrupted; every process it started has been stopped")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

const banner = `reactive-autoscaler demo
  Real:      etcd, kube-apiserver, kube-controller-manager (Deployment and ReplicaSet
             controllers), Prometheus (1 s scrape), Alertmanager, the autoscaler binary,
             and the HTTP traffic (demo-app serving and loading itself on loopback).
  Simulated: pods run on a kwok fake node: they become Running but run no container;
             the one demo-app process serves all of frontend's traffic.
  Timing:    the demo annotates frontend with a 5 s interval and a 15 s cooldown, and
             queries rate() over 10 s, so the walkthrough fits in about three minutes. The
             defaults are a 30 s interval and a 60 s cooldown. Then checkout, on the
             recommended profile, meets a ramp that came at the same minute on each of the
             last two days (history backfilled into Prometheus): the forecast scales it
             ahead of the ramp. About seven minutes in all.
`

func run(ctx context.Context, binDir, rules string, keep bool, plotPath string, peak float64) error {
	fmt.Print(banner)
	fmt.Println("\nStarting the local cluster and monitoring stack...")
	env, hookAddr, tokenFile, err := startStack(ctx, binDir, rules)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("\nStopping every process the demo started...")
		env.Stop()
		fmt.Printf("Logs of every component are in %s\n", env.Dir)
	}()
	// checkout's daily ramp comes five to six minutes from now, after the
	// walkthrough; its history must be in Prometheus before the autoscaler
	// first reads it.
	ramp := time.Now().Truncate(time.Minute).Add(6 * time.Minute)
	if err := backfillCheckout(ctx, env, ramp); err != nil {
		return err
	}
	app, err := startApp(ctx, env, binDir, "frontend")
	if err != nil {
		return err
	}
	checkout, err := startCheckout(ctx, env, binDir)
	if err != nil {
		return err
	}
	metricsPort, err := localenv.FreePort()
	if err != nil {
		return err
	}
	if _, err := env.StartProcess("reactive-autoscaler", filepath.Join(binDir, "reactive-autoscaler"), nil,
		"run", "--kubeconfig", env.Kubeconfig, "--prometheus-url", env.PrometheusURL,
		"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metricsPort), "--leader-election-namespace", "default",
		"--webhook-bind-address", hookAddr, "--webhook-token-file", tokenFile); err != nil {
		return err
	}
	w, err := newWatcher(env, "default", "frontend", `sum(rate(http_requests_total{service="frontend"}[10s]))`)
	if err != nil {
		return err
	}
	if err := w.applyDeployment(ctx); err != nil {
		return err
	}
	fmt.Printf("\nkubeconfig: %s   Prometheus: %s   autoscaler metrics: http://127.0.0.1:%d/metrics\n", env.Kubeconfig, env.PrometheusURL, metricsPort)
	fmt.Println("Deployment frontend: autoscale.io/reactive=true, seed thresholds 1:10/0,2:30/8,3:60/25,4:100/50,5:inf/90")
	if err := walkthrough(ctx, w, app, peak); err != nil {
		return err
	}
	if err := w.writeSVG(plotPath); err != nil {
		return err
	}
	fmt.Printf("\nScale actions: %s\nTimeline plot: %s\n", w.actionSummary(), plotPath)
	if w.distinctReplicas() < 3 || !w.scaledDown() {
		return fmt.Errorf("the walkthrough did not scale through three replica counts and back down: %s", w.actionSummary())
	}
	if err := forecastScenario(ctx, env, checkout, ramp, forecastPlot(plotPath)); err != nil {
		return err
	}
	if keep {
		fmt.Printf("\nThe environment stays up until Ctrl-C. Try:\n  export KUBECONFIG=%s\n  bin/kubectl get deployment frontend --watch\n  bin/demo-app load --url http://%s --profile spike --rps 150 --duration 30s\n", env.Kubeconfig, app)
		<-ctx.Done()
	}
	return nil
}

// startStack starts the local cluster, Prometheus with the spike rule and
// Alertmanager routing it to the webhook address it returns, with the
// token file the autoscaler and Alertmanager share.
func startStack(ctx context.Context, binDir, rules string) (env *localenv.Env, hookAddr, tokenFile string, err error) {
	if rules, err = filepath.Abs(rules); err != nil {
		return nil, "", "", err
	}
	if _, err := os.Stat(rules); err != nil {
		return nil, "", "", fmt.Errorf("the spike rule file: %w", err)
	}
	dir, err := os.MkdirTemp("", "reactive-autoscaler-demo-")
	if err != nil {
		return nil, "", "", err
	}
	tokenFile = filepath.Join(dir, "webhook-token")
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	if err := os.WriteFile(tokenFile, []byte(hex.EncodeToString(token)), 0o600); err != nil {
		return nil, "", "", err
	}
	hookPort, err := localenv.FreePort()
	if err != nil {
		return nil, "", "", err
	}
	hookAddr = fmt.Sprintf("127.0.0.1:%d", hookPort)
	opts := localenv.SpikeStack(binDir, rules, "http://"+hookAddr+"/webhook/alertmanager", tokenFile)
	opts.Dir, opts.KeepDir, opts.Log = dir, true, os.Stdout
	env, err = localenv.Start(ctx, opts)
	return env, hookAddr, tokenFile, err
}

// startApp starts a demo service and has Prometheus scrape it; it returns
// its address.
func startApp(ctx context.Context, env *localenv.Env, binDir, service string) (string, error) {
	appPort, err := localenv.FreePort()
	if err != nil {
		return "", err
	}
	app := fmt.Sprintf("127.0.0.1:%d", appPort)
	appProc, err := env.StartProcess("demo-app-"+service, filepath.Join(binDir, "demo-app"), nil, "serve", "--listen", app, "--service", service)
	if err != nil {
		return "", err
	}
	if err := localenv.WaitReady(ctx, "http://"+app+"/load", appProc, 30*time.Second); err != nil {
		return "", err
	}
	return app, env.AddScrapeTarget(service, app, "namespace", "default")
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
			func(w *watcher) bool { return w.replicas() >= 4 && w.elapsedInStep() > 15*time.Second }},
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
