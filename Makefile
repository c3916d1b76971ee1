# Titanium: the front door. `make run` runs the whole stack locally,
# `make test` runs every test. See README.md.
SHELL := /bin/bash
SERVICES := user-service auth-service blog-service api-gateway dashboard-ui load-balancer
# Every module of the go.work workspace, as package patterns; the whole-stack
# tests (e2e) run apart, one package at a time, so their timing bounds are not
# measured on a machine busy with other packages' tests.
MODULES = $(shell go list -m -f '{{.Path}}/...')
UNIT_MODULES = $(filter-out titanium/e2e/...,$(MODULES))
GOFILES = $(shell git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './dashboard-ui/node_modules/*')
TEST_TIMEOUT ?= 20m

.PHONY: all run build deps test vet fmt-check unit e2e fuzz cross lint bench reliability k8s-verify base-images compose-e2e cluster-up cluster-down cluster-e2e clean

all: build

deps:
	@if [ -f dashboard-ui/package-lock.json ]; then \
		if [ ! -d dashboard-ui/node_modules ] || [ dashboard-ui/package-lock.json -nt dashboard-ui/node_modules/.package-lock.json ]; then \
			echo "npm ci (dashboard-ui)"; (cd dashboard-ui && npm ci --no-audit --no-fund); \
		fi; \
		if [ -f dashboard-ui/scripts/vendor.sh ]; then bash dashboard-ui/scripts/vendor.sh; fi; \
	fi

build: deps
	@mkdir -p bin
	go build -o bin/ $(addprefix ./,$(SERVICES)) ./devstack/cmd/titanium-run

## run: build everything and run the whole stack; dashboard at http://localhost:7100
run: build
	./bin/titanium-run -bin bin -data data

fmt-check:
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	go vet $(MODULES)

unit:
	go test -race -count=1 -timeout $(TEST_TIMEOUT) $(UNIT_MODULES)

e2e:
	go test -race -count=1 -p 1 -timeout $(TEST_TIMEOUT) titanium/e2e/...

## fuzz: short fuzzing of the JSON handlers, bounded by a fixed count of inputs
## (a count, not a time: a time budget can end mid-minimization and report
## "context deadline exceeded" though nothing failed)
fuzz:
	go test -run '^$$' -fuzz '^FuzzRegister$$' -fuzztime 20000x titanium/user-service/httpapi
	go test -run '^$$' -fuzz '^FuzzAuthenticate$$' -fuzztime 20000x titanium/user-service/httpapi
	go test -run '^$$' -fuzz '^FuzzLogin$$' -fuzztime 20000x titanium/auth-service/httpapi
	go test -run '^$$' -fuzz '^FuzzEncodeString$$' -fuzztime 20000x titanium/blog-service/httpapi
	go test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 20000x titanium/platform/pagination

## cross: the cgo-free commands build for macOS (`make run` works there);
## user-service and blog-service link SQLite through cgo and build natively
CROSS_PKGS := ./devstack/cmd/titanium-run ./load-balancer ./api-gateway ./auth-service ./dashboard-ui \
	./bench/cmd/titanium-bench ./deploycheck/cmd/healthcheck ./deploycheck/cmd/secretgen
cross:
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 go build -o /dev/null $(CROSS_PKGS)

## test: formatting, vet, macOS cross-builds, every module's tests with -race (whole-stack tests included), short fuzzing
test: deps fmt-check vet cross unit e2e fuzz

lint: fmt-check vet

## bench: the benchmark report (B1..B5); figures printed and written to bench/out/
bench: build
	go run ./bench/cmd/titanium-bench -bin bin

## reliability: the full fault scenarios R1..R11 with their table
reliability: build
	RELIABILITY=full go test -count=1 -timeout 60m -run 'TestReliability' -v titanium/e2e/reliability/ 2>&1 | tee reliability.log | grep -E '^(\||---|===|PASS|FAIL|ok)'

## k8s-verify: the manifests against a real kube-apiserver + etcd on loopback
k8s-verify:
	bash k8s-manifests/verify/k8s-verify.sh

## base-images: every base image the Dockerfiles and docker-compose.yml name,
## pulled or, where no registry answers, made locally (docs/deployment.md)
base-images:
	@source containers/engine.sh && engine_up && bash containers/base-images.sh

## compose-e2e: the stack under docker-compose v1 and v2, proven through :7100
compose-e2e:
	bash containers/compose-e2e.sh

## cluster-up: a single-node Kubernetes cluster on this machine (root, Linux),
## the local overlay deployed by skaffold; kubeconfig .cluster/kubeconfig,
## the stack on http://127.0.0.1:30700. See docs/deployment.md.
cluster-up:
	bash k8s-manifests/cluster/up.sh

## cluster-down: stop and remove everything cluster-up made (safe to repeat)
cluster-down:
	bash k8s-manifests/cluster/down.sh

## cluster-e2e: cluster-up, the cluster tests (e2e/cluster), cluster-down
cluster-e2e:
	bash k8s-manifests/cluster/e2e.sh

clean:
	rm -rf bin data bench/out
