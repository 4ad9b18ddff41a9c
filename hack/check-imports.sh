#!/usr/bin/env bash
# The packages docs/ARCHITECTURE.md calls pure must stay so, so that they
# can be tested and replayed without a cluster, network or clock:
# pkg/scaler (the scaling policy) imports the standard library only;
# pkg/cycle (one target's evaluation cycle) the standard library and
# pkg/scaler only.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=github.com/autoscale-io/reactive-autoscaler
check() { # package, allowed non-standard imports (besides itself)...
	local pkg=$1
	shift
	local allowed=(-e "$mod/$pkg") a bad
	for a in "$@"; do allowed+=(-e "$a"); done
	bad=$(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' "./$pkg" | grep -v -x -F "${allowed[@]}" || true)
	if [[ -n "$bad" ]]; then
		echo "$pkg must import only the standard library${*:+ and $*}; it imports:" >&2
		echo "$bad" >&2
		exit 1
	fi
}
check pkg/scaler
check pkg/cycle "$mod/pkg/scaler"
echo "pkg/scaler imports the standard library only; pkg/cycle the standard library and pkg/scaler"
