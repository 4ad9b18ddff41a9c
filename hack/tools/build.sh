#!/usr/bin/env bash
# Builds the real components the e2e tests and the demo run (kube-apiserver,
# kube-controller-manager, kubectl, etcd, kwok, helm; kubelet, kube-proxy and
# kube-scheduler for a real node; VictoriaMetrics and Thanos, stores the e2e
# reads; prometheus-adapter, KEDA and Knative's KPA decider, the peers of make
# bench-real) from the Go module proxy into bin/. A binary is rebuilt only
# when its tools module's go.mod/go.sum or the Go version change: a stamp
# beside it records what it was built from.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BIN_DIR:-$root/bin}
mkdir -p "$bin"

# build MODULE_DIR NAME PACKAGE [TAGS]
build() {
	local dir=$1 name=$2 pkg=$3 tags=${4:-}
	local stamp="$bin/.$name.stamp" want
	want=$(cat "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -d' ' -f1)-$(go env GOVERSION)
	if [[ -x "$bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
		return 0
	fi
	echo "hack/tools: building $name from $pkg (first build takes minutes; cached in bin/)" >&2
	local start=$SECONDS
	(cd "$dir" && CGO_ENABLED=0 go build -trimpath -tags="$tags" -ldflags='-s -w' -o "$bin/$name" "$pkg")
	echo "$want" >"$stamp"
	echo "hack/tools: built $name in $((SECONDS - start))s" >&2
}

want=("$@")
[[ ${#want[@]} -gt 0 ]] || want=(etcd kube-apiserver kube-controller-manager kubectl kwok helm)
for t in "${want[@]}"; do
	case $t in
	etcd) build "$root/hack/tools/k8s" etcd go.etcd.io/etcd/server/v3 ;;
	kube-apiserver) build "$root/hack/tools/k8s" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver ;;
	kube-controller-manager) build "$root/hack/tools/k8s" kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager ;;
	kubectl) build "$root/hack/tools/k8s" kubectl k8s.io/kubernetes/cmd/kubectl ;;
	helm) build "$root/hack/tools/helm" helm helm.sh/helm/v3/cmd/helm ;;
	kubelet) build "$root/hack/tools/node" kubelet k8s.io/kubernetes/cmd/kubelet ;;
	kube-proxy) build "$root/hack/tools/node" kube-proxy k8s.io/kubernetes/cmd/kube-proxy ;;
	kube-scheduler) build "$root/hack/tools/node" kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler ;;
	victoria-metrics) build "$root/hack/tools/stores" victoria-metrics github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics ;;
	# Thanos' own build tags: netgo, and slicelabels for the labels layout
	# its Prometheus dependency is built with.
	thanos) build "$root/hack/tools/thanos" thanos github.com/thanos-io/thanos/cmd/thanos netgo,slicelabels ;;
	prometheus-adapter) build "$root/hack/tools/hpa" prometheus-adapter sigs.k8s.io/prometheus-adapter/cmd/adapter ;;
	keda)
		build "$root/hack/tools/keda" keda-operator github.com/kedacore/keda/v2/cmd/operator
		build "$root/hack/tools/keda" keda-adapter github.com/kedacore/keda/v2/cmd/adapter
		# The CRDs of the same version, from its module.
		mkdir -p "$bin/keda-crds"
		cp "$(cd "$root/hack/tools/keda" && go list -m -f '{{.Dir}}' github.com/kedacore/keda/v2)"/config/crd/bases/*.yaml "$bin/keda-crds/"
		chmod u+w "$bin"/keda-crds/*.yaml
		;;
	kpa-decider)
		# Built every time (Go's cache makes it quick): it compiles the
		# product's pkg/simulate, whose changes no stamp of go.mod sees.
		(cd "$root/hack/tools/kpa" && CGO_ENABLED=0 go build -trimpath -o "$bin/kpa-decider" .)
		;;
	kwok)
		build "$root/hack/tools/kwok" kwok sigs.k8s.io/kwok/cmd/kwok
		build "$root/hack/tools/kwok" kwok-stages ./stages
		"$bin/kwok-stages" >"$bin/kwok-stages.yaml"
		;;
	*) echo "hack/tools: unknown tool $t" >&2; exit 2 ;;
	esac
done
