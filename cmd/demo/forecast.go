package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/autoscale-io/reactive-autoscaler/pkg/localenv"
)

// The forecast scenario: checkout, a second service on the recommended
// profile, whose load climbed from 10 to 100 RPS at the same minute on each
// of the last two days. That history is backfilled into Prometheus before
// the autoscaler first reads it; today's ramp comes at the same minute.
const (
	checkoutBase, checkoutPeak = 10.0, 100.0
	checkoutQuery              = `sum(irate(http_requests_total{namespace="default",service="checkout"}[1m]))`
)

// backfillCheckout writes two days of checkout's history, with the ramp at
// ramp's time of day, into Prometheus.
func backfillCheckout(ctx context.Context, env *localenv.Env, ramp time.Time) error {
	rate := func(at time.Time) float64 {
		into := at.Sub(ramp) % (24 * time.Hour)
		if into < 0 {
			into += 24 * time.Hour
		}
		if into < 10*time.Minute {
			return checkoutPeak
		}
		return checkoutBase
	}
	now := time.Now()
	return env.Backfill(ctx, localenv.CounterHistory(map[string]string{"namespace": "default", "service": "checkout", "job": "history"},
		ramp.Add(-51*time.Hour), now.Add(-30*time.Second), 15*time.Second, rate))
}

// startCheckout starts checkout's pods on the recommended profile (5 s
// interval for the demo) and its load at the base rate; it returns its
// watcher and the load generator's address.
func startCheckout(ctx context.Context, env *localenv.Env, binDir string) (*watcher, string, error) {
	w, err := newWatcher(env, "default", "checkout", checkoutQuery)
	if err != nil {
		return nil, "", err
	}
	app, err := w.serve(ctx, binDir, map[string]string{
		"autoscale.io/reactive": "true", "autoscale.io/profile": "recommended", "autoscale.io/interval": "5s",
		"autoscale.io/target-rps-per-replica": "20", "autoscale.io/max-replicas": "10",
	})
	if err != nil {
		return nil, "", err
	}
	return w, app, setLoad("http://"+app, "steady", checkoutBase, 5*time.Second)
}

// forecastScenario follows checkout until its daily ramp has arrived, and
// checks that the replicas for it were written before its load rose.
func forecastScenario(ctx context.Context, w *watcher, app string, ramp time.Time, plotPath string) error {
	fmt.Printf("\nDeployment checkout: autoscale.io/profile=recommended (the built-in forecaster under strategy max), %.0f RPS per replica\n", 20.0)
	w.header()
	w.note(fmt.Sprintf("Prometheus holds two days of checkout: %.0f RPS, and %.0f RPS from %s for 10 min each day", checkoutBase, checkoutPeak, ramp.Format("15:04")))
	w.stepStart = time.Now()
	if err := w.follow(ctx, time.Until(ramp)+10*time.Second, func(*watcher) bool { return !time.Now().Before(ramp) }); err != nil {
		return err
	}
	w.note(fmt.Sprintf("%s: today's ramp arrives, %.0f RPS", ramp.Format("15:04:05"), checkoutPeak))
	if err := setLoad("http://"+app, "steady", checkoutPeak, 5*time.Second); err != nil {
		return err
	}
	rampStart := time.Now()
	if err := w.follow(ctx, time.Minute, func(*watcher) bool { return time.Since(rampStart) > 20*time.Second }); err != nil {
		return err
	}
	if err := w.writeSVG(plotPath); err != nil {
		return err
	}
	d, ok := w.firstChangeSince(w.stepStart)
	switch changed := w.stepStart.Add(d); {
	case ok && changed.Before(rampStart):
		fmt.Printf("%-6s ---- Forecast: new replicas written %.1f s before the ramp's load arrived\n", clock(time.Since(w.start)), rampStart.Sub(changed).Seconds())
	case w.first.spec > 1:
		fmt.Printf("%-6s ---- Forecast: checkout was at %d replicas before this timeline began, ahead of the ramp\n", clock(time.Since(w.start)), w.first.spec)
	default:
		return fmt.Errorf("the forecast did not scale checkout ahead of its daily ramp: %s", w.actionSummary())
	}
	fmt.Printf("Scale actions: %s\nTimeline plot: %s\n", w.actionSummary(), plotPath)
	return nil
}

// forecastPlot is where the forecast scenario's timeline goes, beside the
// walkthrough's.
func forecastPlot(plotPath string) string {
	ext := filepath.Ext(plotPath)
	return strings.TrimSuffix(plotPath, ext) + "-forecast" + ext
}
