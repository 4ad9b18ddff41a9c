//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkWebhookUnderLoad sends the real binary's webhook 1,000 distinct
// authenticated notifications a second for 60 s (BENCH_WEBHOOK_DURATION
// overrides), each naming one of 50 managed Deployments or one of 50
// unknown ones, from 50 paced senders on loopback, at the binary's default
// log level. It fails unless the controller's RSS grows by less than 50 MB,
// the log holds at most one line per notification, and every managed
// Deployment is evaluated after the last notification naming it.
//
// The witness of that last point: each managed Deployment's query is
// vector(time() - T0), so the smoothed rate the binary exports for it
// (ema-alpha 1) is the evaluation time of its latest evaluation, in
// seconds since T0. It must reach the send time of the last notification
// that named it. A table of 1,000,000 RPS per replica keeps them at one
// replica: the benchmark measures the webhook, not the API server.
func BenchmarkWebhookUnderLoad(b *testing.B) {
	const (
		rate    = 1000 // notifications per second
		senders = 50
		targets = 50 // managed, and as many unknown
		maxRSS  = 50.0
	)
	duration := 60 * time.Second
	if v, err := time.ParseDuration(os.Getenv("BENCH_WEBHOOK_DURATION")); err == nil {
		duration = v
	}
	s := newScenario(b)
	t0 := time.Now().Unix()
	ann := map[string]string{"autoscale.io/reactive": "true", "autoscale.io/interval": "1h", "autoscale.io/ema-alpha": "1",
		"autoscale.io/target-rps-per-replica": "1000000", "autoscale.io/max-replicas": "2",
		"autoscale.io/query": fmt.Sprintf("vector(time() - %d)", t0)}
	for i := range targets {
		s.deployment(fmt.Sprintf("d-%02d", i), 1, ann)
	}
	s.startAutoscaler(append([]string{"--webhook-bind-address", webhookAddr, "--webhook-token-file", tokenFile,
		"--spike-window=0s", "-v=0"}, benchFlags()...)...)
	s.poll("the first evaluation of every target", 2*time.Minute, func() (bool, error) { return s.evaluations() >= targets, nil })
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	post := func(body string) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+webhookAddr+"/webhook/alertmanager", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+string(token))
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	s.poll("the webhook taking triggers", 30*time.Second, func() (bool, error) {
		code, err := post(`{"version":"4","alerts":[]}`)
		return err == nil && code == http.StatusOK, nil
	})
	rss0, _, err := s.scaler.Memory()
	if err != nil {
		b.Fatal(err)
	}
	lines0, evals0 := countLines(b, s.scaler.LogPath), s.evaluations()

	var (
		mu       sync.Mutex
		replies  []time.Duration
		failed   = map[string]int{}
		lastSent = map[string]time.Time{} // managed Deployment -> send time of its last notification
	)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			every := time.Second * senders / rate
			for k := 0; ; k++ {
				at := start.Add(time.Duration(k)*every + time.Duration(w)*every/senders)
				if at.Sub(start) >= duration {
					return
				}
				time.Sleep(time.Until(at))
				n := k*senders + w
				name, known := fmt.Sprintf("u-%02d", n%targets), n%2 == 0
				if known {
					name = fmt.Sprintf("d-%02d", n/2%targets)
				}
				body := notification(s.ns, name, n)
				sent := time.Now()
				code, err := post(body)
				took := time.Since(sent)
				mu.Lock()
				switch {
				case err != nil:
					failed[err.Error()]++
				case code != http.StatusOK:
					failed[fmt.Sprintf("HTTP %d", code)]++
				default:
					replies = append(replies, took)
					if known {
						lastSent[name] = sent
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	rss1, peak, err := s.scaler.Memory()
	if err != nil {
		b.Fatal(err)
	}
	// Nothing lost: every managed Deployment named was evaluated after the
	// last notification naming it.
	var behind []string
	s.poll("an evaluation after every target's last notification", time.Minute, func() (bool, error) {
		behind = behind[:0]
		for name, sent := range lastSent {
			at := scrape(b, s.metricsURL, "reactive_autoscaler_target_smoothed_rps", "deployment", name)
			if at < float64(sent.UnixMilli())/1000-float64(t0) {
				behind = append(behind, name)
			}
		}
		return len(behind) == 0, nil
	})
	lines, evals := countLines(b, s.scaler.LogPath)-lines0, s.evaluations()-evals0
	sent := len(replies)
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "notifications/s")
	b.ReportMetric(float64(quantile(replies, 0.99).Microseconds())/1000, "reply-p99-ms")
	b.ReportMetric(rss1-rss0, "rss-growth-MB")
	b.ReportMetric(float64(lines)/float64(sent), "log-lines/notification")
	b.Logf("%d notifications in %v (%.0f/s), %d failed %v; reply p50 %v, p99 %v, max %v; RSS %.1f -> %.1f MB (peak %.1f); %d log lines; %d managed targets named, all evaluated after their last notification (%.0f evaluations: the queue coalesces a target's triggers while it waits)",
		sent, elapsed.Round(time.Millisecond), float64(sent)/elapsed.Seconds(), len(failed), failed,
		quantile(replies, 0.5), quantile(replies, 0.99), quantile(replies, 1), rss0, rss1, peak, lines, len(lastSent), evals)
	if len(failed) > 0 {
		b.Errorf("failed notifications: %v", failed)
	}
	if rss1-rss0 >= maxRSS {
		b.Errorf("RSS grew by %.1f MB, want under %.0f", rss1-rss0, maxRSS)
	}
	if lines > sent {
		b.Errorf("%d log lines for %d notifications, want at most one each", lines, sent)
	}
	if len(lastSent) != targets {
		b.Errorf("%d managed targets named, want %d", len(lastSent), targets)
	}
}

// notification is the n-th distinct firing notification, naming the
// Deployment name in ns.
func notification(ns, name string, n int) string {
	return fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"RequestRateSpike\",n=\"%d\"}","status":"firing","receiver":"autoscaler",`+
		`"groupLabels":{"alertname":"RequestRateSpike"},"alerts":[{"status":"firing","labels":{"alertname":"RequestRateSpike","namespace":%q,"deployment":%q,"n":"%d"},`+
		`"startsAt":%q,"fingerprint":"%016x"}]}`, n, ns, name, n, time.Now().UTC().Format(time.RFC3339Nano), n)
}

func countLines(b *testing.B, path string) int {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return bytes.Count(data, []byte("\n"))
}
