package localenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"
)

// Thanos is Thanos query in front of a Thanos sidecar beside a Prometheus of
// its own, which scrapes the same targets as the environment's Prometheus:
// the controller reads the same counters through Thanos' query API, as it
// would in a cluster whose Prometheus pairs are queried through Thanos.
type Thanos struct {
	URL string // Thanos query's HTTP API
	// Prometheus, Sidecar and Query are its three processes.
	Prometheus, Sidecar, Query *Proc
}

// thanosReplicaLabel is the external label that tells the replicas of a
// Prometheus pair apart; Thanos query removes it (--query.replica-label) and
// merges the pair's series.
const thanosReplicaLabel = "replica"

// StartThanos starts a Prometheus with the environment's scrape
// configuration and an external label (replica="0"), history (CounterHistory's
// openMetrics, or nil) backfilled into it before it starts, a Thanos sidecar
// beside it, and Thanos query over the sidecar's gRPC store API (bin/thanos,
// make store-tools). It returns when query has the sidecar as a healthy store.
func (e *Env) StartThanos(ctx context.Context, history []byte) (*Thanos, error) {
	thanos := filepath.Join(e.opts.BinDir, "thanos")
	if _, err := os.Stat(thanos); err != nil {
		return nil, fmt.Errorf("thanos is missing in %s: run `make store-tools`", e.opts.BinDir)
	}
	prom, err := findBinary("prometheus")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(e.Dir, "thanos")
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if history != nil {
		n, err := e.writeBlocks(ctx, history, data, nil)
		if err != nil {
			return nil, err
		}
		e.logf("backfilled %d blocks into Thanos' Prometheus", n)
	}
	cfg := e.scrapeConfig()
	cfg["global"].(map[string]any)["external_labels"] = map[string]string{thanosReplicaLabel: "0"}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return nil, err
	}
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	promURL := "http://" + addr(ports[0])
	t := &Thanos{URL: "http://" + addr(ports[3])}
	if t.Prometheus, err = e.StartProcess("thanos-prometheus", prom, nil, "--config.file", cfgPath,
		"--storage.tsdb.path", data, "--web.listen-address", addr(ports[0]), "--log.level", "warn"); err != nil {
		return nil, err
	}
	if err := WaitReady(ctx, promURL+"/-/ready", t.Prometheus, 2*time.Minute); err != nil {
		return nil, err
	}
	if t.Sidecar, err = e.StartProcess("thanos-sidecar", thanos, nil, "sidecar",
		"--prometheus.url", promURL, "--tsdb.path", data,
		"--grpc-address", addr(ports[1]), "--http-address", addr(ports[2]), "--log.level", "warn"); err != nil {
		return nil, err
	}
	if t.Query, err = e.StartProcess("thanos-query", thanos, nil, "query",
		"--endpoint", addr(ports[1]), "--query.replica-label", thanosReplicaLabel,
		"--http-address", addr(ports[3]), "--grpc-address", addr(ports[4]), "--log.level", "warn"); err != nil {
		return nil, err
	}
	if err := WaitReady(ctx, t.URL+"/-/ready", t.Query, time.Minute); err != nil {
		return nil, err
	}
	if err := t.waitStore(ctx, time.Minute); err != nil {
		return nil, err
	}
	e.logf("started Thanos query on %s over a sidecar on %s", t.URL, addr(ports[1]))
	return t, nil
}

// Stop stops query, the sidecar and its Prometheus.
func (t *Thanos) Stop() {
	for _, p := range []*Proc{t.Query, t.Sidecar, t.Prometheus} {
		p.Stop(10 * time.Second)
	}
}

// waitStore polls query's /api/v1/stores until the sidecar is listed
// without an error: query answers /-/ready before it has any store, and a
// query then is an empty answer.
func (t *Thanos) waitStore(ctx context.Context, timeout time.Duration) error {
	var last error
	err := waitFor(ctx, timeout, t.Query, func() bool {
		last = t.sidecarHealthy(ctx)
		return last == nil
	})
	if err != nil {
		return errors.Join(fmt.Errorf("Thanos query has no healthy sidecar (see %s): %w", t.Sidecar.LogPath, err), last)
	}
	return nil
}

func (t *Thanos) sidecarHealthy(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+"/api/v1/stores", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var stores struct {
		Data map[string][]struct {
			Name      string  `json:"name"`
			LastError *string `json:"lastError"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&stores); err != nil {
		return fmt.Errorf("/api/v1/stores: %w", err)
	}
	sidecars := stores.Data["sidecar"]
	switch {
	case len(sidecars) == 0:
		return fmt.Errorf("no sidecar among the stores: %v", stores.Data)
	case sidecars[0].LastError != nil:
		return fmt.Errorf("sidecar %s: %s", sidecars[0].Name, *sidecars[0].LastError)
	}
	return nil
}
