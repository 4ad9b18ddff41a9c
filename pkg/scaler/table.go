package scaler

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// SeedTable is the hysteresis table the project started from, used when a
// Deployment sets neither thresholds nor target-rps-per-replica.
const SeedTable = "1:10/0,2:30/8,3:60/25,4:100/50,5:inf/90"

// Row is one line of a hysteresis table: at Replicas replicas, scale up when
// the smoothed RPS exceeds Up and scale down when it falls below Down.
type Row struct {
	Replicas int32
	Up       float64 // RPS; may be +Inf on the last row
	Down     float64 // RPS
}

// Table is a validated hysteresis table: rows for 1..N replicas, in order.
type Table []Row

// ParseTable parses "R:UP/DOWN" pairs separated by commas, for example
// "1:10/0,2:30/8,3:inf/25", and validates the result.
func ParseTable(s string) (Table, error) {
	var t Table
	for i, field := range strings.Split(s, ",") {
		field = strings.TrimSpace(field)
		r, rest, ok1 := strings.Cut(field, ":")
		up, down, ok2 := strings.Cut(rest, "/")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("entry %d %.64q is not of the form R:UP/DOWN", i+1, field)
		}
		replicas, err := strconv.ParseInt(strings.TrimSpace(r), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("entry %d %.64q: replicas %.64q is not an integer", i+1, field, r)
		}
		upV, err := parseRate(up, true)
		if err != nil {
			return nil, fmt.Errorf("entry %d %.64q: UP %w", i+1, field, err)
		}
		downV, err := parseRate(down, false)
		if err != nil {
			return nil, fmt.Errorf("entry %d %.64q: DOWN %w", i+1, field, err)
		}
		t = append(t, Row{Replicas: int32(replicas), Up: upV, Down: downV})
	}
	slices.SortStableFunc(t, func(a, b Row) int { return int(a.Replicas) - int(b.Replicas) })
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

func parseRate(s string, infOK bool) (float64, error) {
	s = strings.TrimSpace(s)
	if infOK && strings.EqualFold(s, "inf") {
		return math.Inf(1), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsNaN(v) || math.IsInf(v, 0):
		if infOK {
			return 0, fmt.Errorf("%.64q is not a finite number or inf", s)
		}
		return 0, fmt.Errorf("%.64q is not a finite number", s)
	case v < 0:
		return 0, fmt.Errorf("%.64q is negative", s)
	}
	return v, nil
}

// GenerateTable builds rows 1..maxReplicas with UP(r) = target*r and
// DOWN(r) = target*(r-1)*ratio, as for autoscale.io/target-rps-per-replica.
func GenerateTable(target, ratio float64, maxReplicas int32) Table {
	t := make(Table, 0, maxReplicas)
	for r := int32(1); r <= maxReplicas; r++ {
		t = append(t, Row{Replicas: r, Up: target * float64(r), Down: target * float64(r-1) * ratio})
	}
	return t
}

// Validate checks that replica counts run 1..N without gaps, that UP strictly
// increases, and that DOWN(r) < UP(r-1) for every r > 1 (the hysteresis gap).
func (t Table) Validate() error {
	if len(t) == 0 {
		return fmt.Errorf("table is empty")
	}
	for i, row := range t {
		if want := int32(i + 1); row.Replicas != want {
			return fmt.Errorf("replica counts must run 1..N without gaps: expected row %d, found %d", want, row.Replicas)
		}
		if math.IsInf(row.Down, 0) || math.IsNaN(row.Down) || math.IsNaN(row.Up) {
			return fmt.Errorf("row %d: DOWN must be a finite number", row.Replicas)
		}
		if i == 0 {
			continue
		}
		prev := t[i-1]
		if !(row.Up > prev.Up) {
			return fmt.Errorf("UP must strictly increase: row %d has UP %s, row %d has UP %s",
				prev.Replicas, formatRate(prev.Up), row.Replicas, formatRate(row.Up))
		}
		if !(row.Down < prev.Up) {
			return fmt.Errorf("hysteresis gap: DOWN(%d)=%s must be below UP(%d)=%s",
				row.Replicas, formatRate(row.Down), prev.Replicas, formatRate(prev.Up))
		}
	}
	return nil
}

// String renders the table in the annotation syntax.
func (t Table) String() string {
	parts := make([]string, len(t))
	for i, r := range t {
		parts[i] = fmt.Sprintf("%d:%s/%s", r.Replicas, formatRate(r.Up), formatRate(r.Down))
	}
	return strings.Join(parts, ",")
}

// row returns the row for r replicas; counts past the table use the last row.
func (t Table) row(r int32) Row {
	if r < 1 {
		r = 1
	}
	if int(r) > len(t) {
		return t[len(t)-1]
	}
	return t[r-1]
}

// Recommend applies the hysteresis rules of docs/REFERENCE.md section 2.3 to a smoothed
// rate at current replicas. It returns the recommended count before bounds
// and whether the rate lies above, below or between the current row's
// thresholds. exhaustedUp is used when no row can carry the rate.
func (t Table) Recommend(current int32, rps float64, exhaustedUp int32) (int32, Action) {
	cur := t.row(current)
	switch {
	case rps > cur.Up:
		for r := current + 1; int(r) <= len(t); r++ {
			if rps <= t.row(r).Up {
				return r, ScaleUp
			}
		}
		// The table cannot carry this rate: go as far as allowed.
		return max(exhaustedUp, current+1), ScaleUp
	case rps < cur.Down:
		// Rows past the table share its last row, so the walk down starts
		// there, however large current is.
		for r := min(current-1, int32(len(t))); r >= 1; r-- {
			if rps >= t.row(r).Down {
				return r, ScaleDown
			}
		}
		return 1, ScaleDown
	}
	return current, Hold
}

func formatRate(v float64) string {
	if math.IsInf(v, 1) {
		return "inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
