// Command chartdoc writes a chart's README.md from the "# -- " comments of
// its values.yaml, so that the documentation of every value lives beside the
// value. With -check it fails when README.md is not what it would write.
//
//	go run ./hack/chartdoc charts/reactive-autoscaler
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	check := flag.Bool("check", false, "fail if README.md is out of date instead of writing it")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: chartdoc [-check] CHART_DIR")
		os.Exit(2)
	}
	dir := flag.Arg(0)
	values, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		fail(err)
	}
	rows, err := parse(values)
	if err != nil {
		fail(err)
	}
	out := render(rows)
	path := filepath.Join(dir, "README.md")
	if *check {
		have, _ := os.ReadFile(path)
		if !bytes.Equal(have, out) {
			fail(fmt.Errorf("%s is out of date: run go run ./hack/chartdoc %s", path, dir))
		}
		return
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "chartdoc:", err)
	os.Exit(1)
}

type row struct{ key, def, doc string }

// parse reads values.yaml line by line: a "# -- " comment (and the comment
// lines after it) documents the next key; nesting follows indentation. A
// documented key whose value is on the following lines (a map or list) is
// shown with its inline default only when it has one.
func parse(data []byte) ([]row, error) {
	var rows []row
	var path []string
	var indents []int
	var doc []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			continue
		case strings.HasPrefix(trimmed, "# -- "):
			doc = []string{strings.TrimPrefix(trimmed, "# -- ")}
			continue
		case strings.HasPrefix(trimmed, "#"):
			if doc != nil {
				doc = append(doc, strings.TrimSpace(strings.TrimPrefix(trimmed, "#")))
			}
			continue
		case strings.HasPrefix(trimmed, "- "):
			continue // a list item of a documented list
		}
		key, val, ok := strings.Cut(trimmed, ":")
		if !ok {
			return nil, fmt.Errorf("values.yaml line %d: not a key: %q", n, line)
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		for len(indents) > 0 && indents[len(indents)-1] >= indent {
			indents, path = indents[:len(indents)-1], path[:len(path)-1]
		}
		indents, path = append(indents, indent), append(path, key)
		val = strings.TrimSpace(val)
		if doc != nil {
			rows = append(rows, row{strings.Join(path, "."), val, strings.Join(doc, " ")})
			doc = nil
		}
	}
	return rows, sc.Err()
}

func render(rows []row) []byte {
	var b bytes.Buffer
	b.WriteString(`# reactive-autoscaler chart

Installs the controller (two replicas, leader election on a Lease), its least-privilege RBAC, the
config file of controller-wide defaults, the webhook token and Services; optionally a ServiceMonitor,
the spike PrometheusRule, a PodDisruptionBudget, a NetworkPolicy and a Grafana dashboard.

` + "```sh\nhelm install reactive-autoscaler charts/reactive-autoscaler -n autoscaling --create-namespace \\\n  --set prometheus.url=http://prometheus.monitoring:9090\n```" + `

Every value is checked by ` + "`values.schema.json`" + ` (an unknown key is an error). This file is generated
from the comments of ` + "`values.yaml`" + ` by ` + "`go run ./hack/chartdoc charts/reactive-autoscaler`" + `.

| Key | Default | Description |
|---|---|---|
`)
	for _, r := range rows {
		def := r.def
		if def == "" {
			def = "see values.yaml"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", r.key, strings.ReplaceAll(def, "|", `\|`), strings.ReplaceAll(r.doc, "|", `\|`))
	}
	return b.Bytes()
}
