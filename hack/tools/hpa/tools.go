//go:build tools

// Package tools pins prometheus-adapter, which hack/tools builds into bin/.
package tools

import (
	_ "sigs.k8s.io/prometheus-adapter/cmd/adapter"
)
