#!/usr/bin/env bash
# pkg/scaler is the scaling policy: it must import the standard library only,
# so that it can be tested and replayed without a cluster, network or clock.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./pkg/scaler | grep -v '^github.com/autoscale-io/reactive-autoscaler/pkg/scaler$' || true)
if [[ -n "$bad" ]]; then
	echo "pkg/scaler must import only the standard library; it imports:" >&2
	echo "$bad" >&2
	exit 1
fi
echo "pkg/scaler imports the standard library only"
