package localenv

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// CounterHistory is the OpenMetrics text of a request counter named
// http_requests_total with labels, sampled every step over [from, to),
// whose rate at each instant is rate(t). promtool turns it into blocks.
func CounterHistory(labels map[string]string, from, to time.Time, step time.Duration, rate func(time.Time) float64) []byte {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = fmt.Sprintf("%s=%q", k, labels[k])
	}
	series := "http_requests_total{" + strings.Join(pairs, ",") + "}"
	var b bytes.Buffer
	b.WriteString("# HELP http_requests HTTP requests.\n# TYPE http_requests counter\n")
	count := 0.0
	for at := from; at.Before(to); at = at.Add(step) {
		fmt.Fprintf(&b, "%s %s %d\n", series, formatFloat(count), at.Unix())
		count += rate(at) * step.Seconds()
	}
	b.WriteString("# EOF\n")
	return b.Bytes()
}

func formatFloat(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}

// Backfill adds history to Prometheus: promtool (which the Prometheus
// package ships) writes openMetrics as TSDB blocks into Prometheus' data
// directory, and Prometheus is restarted to load them. Overlapping blocks
// are allowed by default since Prometheus 2.39.
func (e *Env) Backfill(ctx context.Context, openMetrics []byte) error {
	n, err := e.writeBlocks(ctx, openMetrics, filepath.Join(e.Dir, "prometheus", "data"), e.StopPrometheus)
	if err != nil {
		return err
	}
	e.logf("backfilled %d blocks into Prometheus", n)
	return e.StartPrometheus(ctx)
}

// writeBlocks has promtool write openMetrics as TSDB blocks and moves them
// into the data directory data, calling before first (to stop the
// Prometheus that owns it). It returns how many blocks it moved.
func (e *Env) writeBlocks(ctx context.Context, openMetrics []byte, data string, before func()) (int, error) {
	promtool, err := findBinary("promtool")
	if err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp(e.Dir, "backfill-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "history.om")
	if err := os.WriteFile(in, openMetrics, 0o644); err != nil {
		return 0, err
	}
	out := filepath.Join(dir, "blocks")
	cmd := exec.CommandContext(ctx, promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", in, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("promtool tsdb create-blocks-from openmetrics: %v: %s", err, b)
	}
	blocks, err := os.ReadDir(out)
	if err != nil {
		return 0, err
	}
	if before != nil {
		before()
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return 0, err
	}
	for _, blk := range blocks {
		if err := os.Rename(filepath.Join(out, blk.Name()), filepath.Join(data, blk.Name())); err != nil {
			return 0, err
		}
	}
	return len(blocks), nil
}
