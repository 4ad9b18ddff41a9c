package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// generator sends GET requests to its target (the demo-app itself, or a
// Service in front of demo-app pods) at the rate its profile asks for: a
// pacer adds rate*dt to a budget every tick and hands one request per
// whole unit to a pool of workers.
type generator struct {
	target string
	client *http.Client

	mu       sync.Mutex
	profile  string
	rps      float64
	duration time.Duration
	since    time.Time
	before   float64 // the rate before a spike, restored after it

	sent, dropped atomic.Int64
	// What the answers were: served (200), shed by a pod over its
	// capacity (503), or failed (no answer, or any other status).
	served, shed, failed atomic.Int64
}

// newGenerator loads target. A Service spreads connections, not
// requests: with spread, each request opens a connection of its own, so
// that a pod started under load gets its share at once.
func newGenerator(target string, spread bool) *generator {
	return &generator{
		target: target,
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableKeepAlives: spread}},
	}
}

func (g *generator) set(profile string, rps float64, d time.Duration) error {
	switch profile {
	case "steady", "ramp", "spike", "stop":
	default:
		return fmt.Errorf("profile %q: want steady, ramp, spike or stop", profile)
	}
	if rps < 0 || rps > 100000 || d <= 0 {
		return fmt.Errorf("want 0 <= rps <= 100000 and a positive duration")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.before = g.rateLocked(time.Now())
	g.profile, g.rps, g.duration, g.since = profile, rps, d, time.Now()
	return nil
}

// rateLocked is the target rate at now.
func (g *generator) rateLocked(now time.Time) float64 {
	elapsed := now.Sub(g.since)
	switch g.profile {
	case "steady":
		return g.rps
	case "ramp":
		return g.rps * min(1, elapsed.Seconds()/g.duration.Seconds())
	case "spike":
		if elapsed < g.duration {
			return g.rps
		}
		return g.before
	}
	return 0
}

type status struct {
	Profile  string  `json:"profile"`
	RPS      float64 `json:"targetRPS"`
	Current  float64 `json:"currentRPS"`
	Duration string  `json:"duration"`
	Sent     int64   `json:"sent"`
	Dropped  int64   `json:"dropped"`
	Served   int64   `json:"served"`
	Shed     int64   `json:"shed"`
	Failed   int64   `json:"failed"`
}

func (g *generator) status() status {
	g.mu.Lock()
	defer g.mu.Unlock()
	return status{g.profile, g.rps, g.rateLocked(time.Now()), g.duration.String(), g.sent.Load(), g.dropped.Load(),
		g.served.Load(), g.shed.Load(), g.failed.Load()}
}

func (g *generator) run(ctx context.Context) {
	work := make(chan struct{}, 256)
	for range 32 {
		go func() {
			for range work {
				resp, err := g.client.Get(g.target)
				if err != nil {
					g.failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					g.served.Add(1)
				case http.StatusServiceUnavailable:
					g.shed.Add(1)
				default:
					g.failed.Add(1)
				}
			}
		}()
	}
	defer close(work)
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	budget, last := 0.0, time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			g.mu.Lock()
			r := g.rateLocked(now)
			g.mu.Unlock()
			budget += r * now.Sub(last).Seconds()
			last = now
			for ; budget >= 1; budget-- {
				select {
				case work <- struct{}{}:
					g.sent.Add(1)
				default: // the workers cannot keep up: count, do not queue forever
					g.dropped.Add(1)
				}
			}
		}
	}
}
