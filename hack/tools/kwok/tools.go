//go:build tools

// Package tools pins the commands that hack/tools builds into bin/.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
