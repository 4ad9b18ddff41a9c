//go:build tools

// Package tools pins the metric stores that hack/tools builds into bin/.
package tools

import (
	_ "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics"
)
