package simulate

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// ReadCSV reads a trace: rows of `seconds,rps` or `RFC 3339 time,rps`, an
// optional header, evenly spaced; an empty or NaN rate is a metrics outage.
func ReadCSV(name string, r io.Reader) (*Trace, error) {
	rows, err := csv.NewReader(bufio.NewReader(r)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var times []time.Duration
	var rates []float64
	var t0 time.Time
	for i, row := range rows {
		if len(row) != 2 {
			return nil, fmt.Errorf("%s line %d: want 2 columns (time, rps), got %d", name, i+1, len(row))
		}
		at, err := parseTime(strings.TrimSpace(row[0]), &t0)
		if err != nil {
			if i == 0 {
				continue // a header
			}
			return nil, fmt.Errorf("%s line %d: %w", name, i+1, err)
		}
		v := math.NaN()
		if s := strings.TrimSpace(row[1]); s != "" && !strings.EqualFold(s, "nan") {
			if v, err = strconv.ParseFloat(s, 64); err != nil || v < 0 || math.IsInf(v, 0) {
				return nil, fmt.Errorf("%s line %d: rps %q must be a number >= 0 (or empty for an outage)", name, i+1, s)
			}
		}
		times, rates = append(times, at), append(rates, v)
	}
	if len(rates) < 2 {
		return nil, fmt.Errorf("%s: want at least two rows", name)
	}
	step := times[1] - times[0]
	if step <= 0 {
		return nil, fmt.Errorf("%s: times must increase", name)
	}
	for i := 2; i < len(times); i++ {
		if times[i]-times[i-1] != step {
			return nil, fmt.Errorf("%s line %d: rows must be evenly spaced (%v, then %v)", name, i+1, step, times[i]-times[i-1])
		}
	}
	return &Trace{Name: name, Step: step, RPS: rates}, nil
}

func parseTime(s string, t0 *time.Time) (time.Duration, error) {
	if secs, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(secs) && !math.IsInf(secs, 0) {
		return time.Duration(secs * float64(time.Second)), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, errors.New("time must be seconds or RFC 3339")
	}
	if t0.IsZero() {
		*t0 = t
	}
	return t.Sub(*t0), nil
}

// Scaled returns the trace with every rate multiplied by k.
func (t *Trace) Scaled(k float64) *Trace {
	out := &Trace{Name: t.Name, Step: t.Step, RPS: make([]float64, len(t.RPS))}
	for i, v := range t.RPS {
		out.RPS[i] = v * k
	}
	return out
}

// Halves cuts the trace into two of equal length (the first gets the odd
// row), named with -a and -b before the name's extension; the second
// starts at 0, so that a policy replays it with no memory of the first: a
// week the forecaster was not tuned on, as far as one recorded week
// allows.
func (t *Trace) Halves() (*Trace, *Trace) {
	base, ext := t.Name, ""
	if i := strings.LastIndex(base, "."); i > 0 {
		base, ext = base[:i], base[i:]
	}
	mid := (len(t.RPS) + 1) / 2
	return &Trace{Name: base + "-a" + ext, Step: t.Step, RPS: slices.Clone(t.RPS[:mid])},
		&Trace{Name: base + "-b" + ext, Step: t.Step, RPS: slices.Clone(t.RPS[mid:])}
}

// Table writes the scores with each policy's ratio to the baselines named
// (below 1 is better for every score but peak replicas). These ratios are
// at one utilization; equalcost.go compares at equal cost.
func Table(w io.Writer, scores []Score, baselines ...string) error {
	return table(w, scores, baselines, []string{"under-provisioned s", "unserved requests", "unserved share", "replica-seconds", "scale actions", "peak replicas"},
		func(b string) []string { return []string{"under/" + b, "unserved/" + b, "cost/" + b} },
		func(s, b Score) []string {
			return []string{ratio(s.UnderProvisionedS, b.UnderProvisionedS), ratio(s.UnservedRequests, b.UnservedRequests), ratio(s.ReplicaSeconds, b.ReplicaSeconds)}
		})
}

// CompactTable writes the scores in at most 120 columns: each policy's
// own scores and its unserved requests over each baseline's (Table has
// every ratio).
func CompactTable(w io.Writer, scores []Score, baselines ...string) error {
	return table(w, scores, baselines, []string{"under-s", "unserved", "share", "replica-s", "actions", "peak"},
		func(b string) []string { return []string{"unserved/" + b} },
		func(s, b Score) []string { return []string{ratio(s.UnservedRequests, b.UnservedRequests)} })
}

// table writes a row a policy: its own scores under own (six columns),
// then, for each baseline, the columns named by vs, filled by versus.
func table(w io.Writer, scores []Score, baselines, own []string, vs func(baseline string) []string, versus func(s, baseline Score) []string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	header := append([]string{"policy"}, own...)
	for _, b := range baselines {
		header = append(header, vs(b)...)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	base := map[string]Score{}
	for _, s := range scores {
		base[s.Policy] = s
	}
	for _, s := range scores {
		cells := []string{s.Policy, fmt.Sprintf("%.0f", s.UnderProvisionedS), fmt.Sprintf("%.0f", s.UnservedRequests), fmt.Sprintf("%.3f%%", 100*s.UnservedShare),
			fmt.Sprintf("%.0f", s.ReplicaSeconds), fmt.Sprint(s.ScaleActions), fmt.Sprint(s.PeakReplicas)}
		for _, b := range baselines {
			bs, ok := base[b]
			if !ok {
				for range vs(b) {
					cells = append(cells, "-")
				}
				continue
			}
			cells = append(cells, versus(s, bs)...)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	return tw.Flush()
}

func ratio(a, b float64) string {
	switch {
	case b == 0 && a == 0:
		return "="
	case b == 0:
		return "+inf"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// SVG draws demand, ready capacity and replicas over time, one panel per
// policy, sharing the axes.
func SVG(w io.Writer, title string, world World, scores []Score) error {
	const width, panelH, left, top, gap = 900, 150, 60, 40, 30
	height := top + len(scores)*(panelH+gap) + 20
	var end time.Duration
	maxRate, maxRep := 1.0, int32(1)
	for _, s := range scores {
		for _, p := range s.Series {
			end = max(end, p.T)
			maxRate = max(maxRate, p.Demand, float64(p.Ready)*world.Capacity)
			maxRep = max(maxRep, p.Replicas)
		}
	}
	x := func(t time.Duration) float64 { return left + float64(width-left-20)*t.Seconds()/max(end.Seconds(), 1) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="20" font-size="14">%s</text>`+"\n", left, escape(title))
	fmt.Fprintf(&b, `<text x="%d" y="34" fill="#555">demand (grey, RPS) · ready capacity (blue, RPS) · replicas (orange, right axis, max %d)</text>`+"\n", left, maxRep)
	for i, s := range scores {
		y0 := float64(top + i*(panelH+gap) + 10)
		y := func(v, top float64) float64 { return y0 + panelH - panelH*v/top }
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" font-weight="bold">%s</text>`+"\n", left, y0-2, escape(s.Policy))
		fmt.Fprintf(&b, `<rect x="%d" y="%.0f" width="%d" height="%d" fill="none" stroke="#ccc"/>`+"\n", left, y0, width-left-20, panelH)
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" text-anchor="end">%.0f</text><text x="%d" y="%.0f" text-anchor="end">0</text>`+"\n", left-4, y0+8, maxRate, left-4, y0+panelH)
		step := max(1, len(s.Series)/1500)
		line := func(color string, v func(Point) float64, top float64) {
			var pts strings.Builder
			for j := 0; j < len(s.Series); j += step {
				p := s.Series[j]
				fmt.Fprintf(&pts, "%.1f,%.1f ", x(p.T), y(v(p), top))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.2" points="%s"/>`+"\n", color, pts.String())
		}
		line("#999", func(p Point) float64 { return p.Demand }, maxRate)
		line("#1f6fd1", func(p Point) float64 { return float64(p.Ready) * world.Capacity }, maxRate)
		line("#e8800c", func(p Point) float64 { return float64(p.Replicas) }, float64(maxRep))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">0</text><text x="%d" y="%d" text-anchor="end" fill="#555">%s</text>`+"\n",
		left, height-6, width-20, height-6, end.Round(time.Second))
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
