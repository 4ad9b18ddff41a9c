package localenv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// VictoriaMetrics is a single-node VictoriaMetrics that scrapes the same
// targets as the environment's Prometheus, so that the controller can read
// the same counters from another store.
type VictoriaMetrics struct {
	URL  string
	Proc *Proc
}

// StartVictoriaMetrics starts bin/victoria-metrics (make store-tools) on the
// environment's scrape configuration. Two of its defaults do not suit an
// autoscaler: a query hides the last 30 s of samples (-search.latencyOffset,
// lowered as REFERENCE tells users to), and the file_sd targets are re-read
// only every minute (-promscrape.fileSDCheckInterval, for the tests' churn).
func (e *Env) StartVictoriaMetrics(ctx context.Context) (*VictoriaMetrics, error) {
	bin := filepath.Join(e.opts.BinDir, "victoria-metrics")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("victoria-metrics is missing in %s: run `make store-tools`", e.opts.BinDir)
	}
	dir := filepath.Join(e.Dir, "victoria-metrics")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	b, err := yaml.Marshal(e.scrapeConfig())
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "scrape.yml")
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p, err := e.StartProcess("victoria-metrics", bin, nil,
		"-storageDataPath="+filepath.Join(dir, "data"), "-httpListenAddr="+e.listenAddr(port),
		"-promscrape.config="+cfg, "-promscrape.config.strictParse=false", "-promscrape.fileSDCheckInterval=1s",
		"-search.latencyOffset=1s", "-search.disableCache", "-retentionPeriod=30d", "-loggerLevel=WARN")
	if err != nil {
		return nil, err
	}
	vm := &VictoriaMetrics{URL: "http://" + addr(port), Proc: p}
	if err := WaitReady(ctx, vm.URL+"/health", p, time.Minute); err != nil {
		return nil, err
	}
	e.logf("started VictoriaMetrics on %s", vm.URL)
	return vm, nil
}

// Import adds history (CounterHistory's openMetrics, timestamps in
// seconds) through VictoriaMetrics' Prometheus text import, which takes
// milliseconds, and flushes it so that queries see it at once.
func (vm *VictoriaMetrics) Import(ctx context.Context, openMetrics []byte) error {
	var body bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(openMetrics))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return fmt.Errorf("import: no timestamp in %q", line)
		}
		sec, err := strconv.ParseInt(line[i+1:], 10, 64)
		if err != nil {
			return fmt.Errorf("import: timestamp of %q: %w", line, err)
		}
		fmt.Fprintf(&body, "%s %d\n", line[:i], sec*1000)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if err := vm.call(ctx, http.MethodPost, "/api/v1/import/prometheus", body.Bytes()); err != nil {
		return err
	}
	return vm.call(ctx, http.MethodGet, "/internal/force_flush", nil)
}

func (vm *VictoriaMetrics) call(ctx context.Context, method, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, vm.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("VictoriaMetrics %s: %s", path, resp.Status)
	}
	return nil
}
