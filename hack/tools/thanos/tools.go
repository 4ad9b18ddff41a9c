//go:build tools

// Package tools pins Thanos, which hack/tools builds into bin/.
package tools

import (
	_ "github.com/thanos-io/thanos/cmd/thanos"
)
