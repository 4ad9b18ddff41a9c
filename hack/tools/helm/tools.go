//go:build tools

// Package tools pins the commands that hack/tools builds into bin/.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
