# reactive-autoscaler. `make demo` runs the walkthrough on a local cluster;
# `make check` runs every test. Both build what they need themselves.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

BIN     := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GO_TEST_FLAGS ?=

.PHONY: build
build: ## Build the binaries into bin/
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

PREFIX ?= /usr/local

.PHONY: kubectl-plugin
kubectl-plugin: build ## Install the binary as a kubectl plugin: kubectl reactive-autoscaler status
	install -m 0755 $(BIN)/reactive-autoscaler $(PREFIX)/bin/kubectl-reactive_autoscaler

.PHONY: test
test: ## Unit tests with the race detector; the query-injection test with Prometheus' own parser and the KPA model against Knative's decider (modules of their own)
	go test -race $(GO_TEST_FLAGS) ./...
	cd test/promql && go test -race $(GO_TEST_FLAGS) ./...
	cd hack/tools/kpa && go test -race $(GO_TEST_FLAGS) ./...

.PHONY: lint
lint: ## gofmt, go vet, and the import rules of pkg/scaler and pkg/cycle
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	  if [[ -n "$$unformatted" ]]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	go vet ./...
	cd test/promql && go vet ./...
	cd hack/tools/kpa && go vet ./...
	hack/check-imports.sh

.PHONY: tools
tools: ## Build kube-apiserver, kube-controller-manager, kubectl, etcd, kwok and helm into bin/ (cached)
	hack/tools/build.sh

.PHONY: node-tools
node-tools: ## Build kubelet, kube-proxy and kube-scheduler into bin/ (cached), for a real local node
	hack/tools/build.sh kubelet kube-proxy kube-scheduler

.PHONY: store-tools
store-tools: ## Build VictoriaMetrics and Thanos into bin/ (cached), stores besides Prometheus the e2e tests read
	hack/tools/build.sh victoria-metrics thanos

.PHONY: peer-tools
peer-tools: ## Build prometheus-adapter, KEDA (operator, metrics adapter, CRDs) and Knative's KPA decider (hack/tools/kpa) into bin/ (cached), the peers of make bench-real
	hack/tools/build.sh prometheus-adapter keda kpa-decider

.PHONY: deps
deps: ## Install Prometheus and Alertmanager (Debian packages) when absent
	hack/install-deps.sh

.PHONY: e2e
e2e: build tools store-tools deps ## End-to-end tests on a real local cluster, Prometheus and Alertmanager
	go test -race -tags e2e -count=1 -timeout 30m -skip '^TestFault' $(GO_TEST_FLAGS) ./test/e2e/...

.PHONY: e2e-node
e2e-node: build tools node-tools peer-tools node-images image ## Pods on a real local node (containerd, kubelet, kube-proxy, kube-scheduler): served through a Service, scaled by the chart-installed controller across a leader failover and by the real HPA and KEDA, nothing left on the host
	hack/install-deps.sh --node
	go test -tags node -count=1 -timeout 15m -v $(GO_TEST_FLAGS) ./test/node/...

.PHONY: e2e-faults
e2e-faults: build tools deps ## The fault suite: API server restart, Prometheus outage, Alertmanager HA, partition, crash loop, slow API (about 13 min)
	@echo "go test -race -tags e2e -run '^TestFault' ./test/e2e/... (full output in $(BIN)/e2e-faults.log)"
	@go test -race -tags e2e -count=1 -timeout 40m -run '^TestFault' -v $(GO_TEST_FLAGS) ./test/e2e/... > $(BIN)/e2e-faults.log 2>&1; rc=$$?; \
	if [ $$rc -ne 0 ]; then tail -n 300 $(BIN)/e2e-faults.log; else grep -E '^(--- |ok)|FAULT-TABLE' $(BIN)/e2e-faults.log; fi; exit $$rc

.PHONY: rules
rules: deps ## promtool check and unit-test the spike rule; amtool check the example route
	promtool check rules deploy/prometheus/reactive-autoscaler-rules.yaml
	cd deploy/prometheus && promtool test rules reactive-autoscaler-rules_test.yaml
	amtool check-config deploy/alertmanager/alertmanager.yaml

.PHONY: chart
chart: deps ## helm lint and render the chart, its schema, Pod Security and RBAC; README up to date
	hack/tools/build.sh helm
	go run ./hack/chartdoc -check charts/reactive-autoscaler
	go test -tags chart -count=1 ./test/chart/

.PHONY: chart-docs
chart-docs: ## Regenerate charts/reactive-autoscaler/README.md from values.yaml
	go run ./hack/chartdoc charts/reactive-autoscaler

ARCH ?= $(shell go env GOARCH)
# The tag the chart pulls by default (its appVersion), so that an image
# built here is the one helm install asks for; the build's version and
# commit are in the image's labels.
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' charts/reactive-autoscaler/Chart.yaml)

.PHONY: image
image: ## OCI image tarball bin/reactive-autoscaler-image.tar, no Docker engine needed (k3s ctr images import ...)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/linux_$(ARCH)/reactive-autoscaler ./cmd/reactive-autoscaler
	cd hack/tools/image && go run . --binary $(BIN)/linux_$(ARCH)/reactive-autoscaler --arch $(ARCH) \
	  --tag reactive-autoscaler:$(IMAGE_TAG) --version $(VERSION) --revision $(COMMIT) --out $(BIN)/reactive-autoscaler-image.tar

.PHONY: node-images
node-images: ## The pause and demo-app images a local node's pods run: bin/pause-image.tar, bin/demo-app-image.tar
	CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) go build -trimpath -ldflags '-s -w' -o $(BIN)/linux_$(ARCH)/demo-app ./cmd/demo-app
	cd hack/tools/image && CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) go build -trimpath -ldflags '-s -w' -o $(BIN)/linux_$(ARCH)/pause ./pause
	cd hack/tools/image && go run . --binary $(BIN)/linux_$(ARCH)/pause --entrypoint /pause --cmd "" --ca-bundle "" \
	  --title pause --arch $(ARCH) --tag pause:local --out $(BIN)/pause-image.tar
	cd hack/tools/image && go run . --binary $(BIN)/linux_$(ARCH)/demo-app --entrypoint /demo-app --cmd serve --ca-bundle "" \
	  --title demo-app --arch $(ARCH) --tag demo-app:local --out $(BIN)/demo-app-image.tar

.PHONY: image-test
image-test: ## Build an image tarball and check its config and binary
	cd hack/tools/image && go test -count=1 ./...

.PHONY: docker
docker: ## docker build (needs a Docker engine)
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t reactive-autoscaler:$(IMAGE_TAG) .

KUBECTL   ?= kubectl
NAMESPACE ?= autoscaling

.PHONY: status
status: build ## What is managed: replicas, data health, last decision, predictor MAPE (current kubectl context)
	$(BIN)/reactive-autoscaler status

.PHONY: logs
logs: ## Follow the controller's logs in the cluster (NAMESPACE=autoscaling)
	$(KUBECTL) logs -n $(NAMESPACE) -l app.kubernetes.io/name=reactive-autoscaler --prefix --all-containers -f --max-log-requests 10

.PHONY: load
load: build ## Drive load at a demo-app: make load URL=http://127.0.0.1:8081 PROFILE=spike RPS=150 DURATION=30s
	$(BIN)/demo-app load --url $(URL) --profile $(PROFILE) --rps $(RPS) --duration $(or $(DURATION),60s)

.PHONY: check
check: lint rules test chart image-test e2e e2e-node e2e-faults ## Everything CI runs

.PHONY: bench
bench: build tools deps ## Benchmarks (speed claims live here, as ratios against a baseline of the same run)
	go test -run '^$$' -bench . -benchtime 3x ./pkg/...
	go test -tags e2e -run '^$$' -bench 'WebhookToScale|WebhookUnderLoad' -benchtime 1x -timeout 15m ./test/e2e/

.PHONY: bench-quality
bench-quality: ## Unserved requests at equal cost against the HPA, KEDA and the KPA on every trace in testdata/traces; the forecaster out of sample
	go run ./hack/benchquality $(BENCH_QUALITY_FLAGS)

BENCH_REAL_FLAGS ?=

.PHONY: bench-real
bench-real: build tools node-tools peer-tools node-images deps ## One real-trace segment sent at once to pods scaled by ours, the real HPA (prometheus-adapter) and real KEDA, beside the simulator's models of each (needs root; about 30 min)
	hack/install-deps.sh --node
	go run ./hack/benchreal -bin $(BIN) $(BENCH_REAL_FLAGS)

.PHONY: traces
traces: ## Regenerate the synthetic traces in testdata/traces
	go run ./hack/traces

BENCH_N ?= 1000,10000

.PHONY: bench-scale
bench-scale: build tools deps ## 1,000 and 10,000 Deployments (half managed) on a real API server and Prometheus: batched vs naive
	go run ./hack/benchscale -n $(BENCH_N) -bin $(BIN)

.PHONY: demo
demo: build tools node-tools node-images image deps ## The walkthrough: local cluster with a real node, Prometheus, Alertmanager, the chart-installed autoscaler, demo pods under load
	hack/install-deps.sh --node
	$(BIN)/demo --plot $(BIN)/demo-timeline.svg $(DEMO_FLAGS)

.PHONY: fuzz
fuzz: ## Run each fuzz target for a while
	go test -run '^$$' -fuzz FuzzParseDecide -fuzztime 60s ./pkg/scaler/
	go test -run '^$$' -fuzz FuzzParseTable -fuzztime 30s ./pkg/scaler/
	go test -run '^$$' -fuzz 'FuzzParse$$' -fuzztime 30s ./pkg/scaler/
	go test -run '^$$' -fuzz FuzzDecideRecommended -fuzztime 30s ./pkg/scaler/
	go test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./pkg/webhook/
	go test -run '^$$' -fuzz FuzzMapTargets -fuzztime 30s ./pkg/webhook/
	go test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./pkg/predict/

.PHONY: clean
clean:
	rm -rf $(BIN)/reactive-autoscaler $(BIN)/demo $(BIN)/demo-app $(BIN)/predictor-stub

.PHONY: help
help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "%-10s %s\n", $$1, $$2}'
