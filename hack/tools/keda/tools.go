//go:build tools

// Package tools pins KEDA's operator and metrics adapter, which hack/tools
// builds into bin/.
package tools

import (
	_ "github.com/kedacore/keda/v2/cmd/adapter"
	_ "github.com/kedacore/keda/v2/cmd/operator"
)
