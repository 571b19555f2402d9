# quartet's build. `make help` lists the targets.

GO        ?= go
BIN       := bin/quartet
K8S       := v1.37.2
COMPONENT := k8s.io/component-base/version
# Kubernetes stamps its version at link time; so does quartet, so that
# `kubectl version` reports the server as $(K8S).
LDFLAGS   := -X $(COMPONENT).gitVersion=$(K8S) -X $(COMPONENT).gitMajor=1 -X $(COMPONENT).gitMinor=37 \
             -X $(COMPONENT).gitTreeState=clean -X $(COMPONENT).buildDate=2026-11-01T00:00:00Z
# Containers' seccomp profiles (seccompProfile: RuntimeDefault) need
# libseccomp, linked in when its headers are installed (libseccomp-dev);
# without them quartet builds, and refuses RuntimeDefault pods clearly.
TAGS      := $(shell pkg-config --exists libseccomp 2>/dev/null && echo seccomp)

.PHONY: help build image run test race chaos conformance bench bench-quick bench-readme verify lint print-ldflags print-tags web web-check
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build bin/quartet
	$(GO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/quartet

# The container image of quartet, for `quartet controllers` in a cluster
# (deploy/, deploy/chart): built from bin/quartet without a container daemon.
IMAGE ?= quartet:v0.1.0-dev

image: build ## the container image of quartet: bin/quartet-image.tar (OCI image layout tar, also docker-loadable; IMAGE=name:tag, default quartet:v0.1.0-dev)
	$(GO) run ./deploy/image -binary $(BIN) -tag $(IMAGE) -o bin/quartet-image.tar

run: build ## build and run `quartet up` on its defaults (~/.quartet, port 6443, 3 nodes)
	./$(BIN) up

# -p 1: one package at a time, so the end-to-end tests' clusters do not load
# the machine while the scenario suite's timing-sensitive runs are going.
test: build bin/helm ## unit, integration, end-to-end and scenario tests (builds bin/quartet first)
	QUARTET_BIN=$(abspath $(BIN)) HELM=$(abspath bin/helm) $(GO) test -p 1 -timeout 40m -parallel 64 ./...

# The race detector watches a whole start of `quartet up` (storage, DNS, nodes,
# a claim, a restart, a stop): any data race in quartet or in the libraries it
# starts fails the test. A binary of its own, so bin/quartet stays fast.
RACE_BIN := bin/quartet-race

race: ## build bin/quartet-race with -race and run the start-up test under it (TestStartUnderRace)
	$(GO) build -race -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(RACE_BIN) ./cmd/quartet
	QUARTET_RACE_BIN=$(abspath $(RACE_BIN)) $(GO) test -count=1 -timeout 20m -run '^TestStartUnderRace$$' ./test/e2e

chaos: build ## the crash suite at full size: 20 kill -9 restarts during a Job of 300, an Indexed Job, a StatefulSet rollout and a Forbid CronJob (as root; `make test` runs 3 rounds)
	QUARTET_BIN=$(abspath $(BIN)) CHAOS_ROUNDS=$(or $(ROUNDS),20) CHAOS_COMPLETIONS=$(or $(COMPLETIONS),300) \
	  $(GO) test -count=1 -timeout 90m -v -run TestKillNineRestarts ./test/chaos

conformance: build ## every scenario against quartet's controllers (in quartet up and in quartet controllers) and upstream's; prints the table (RUN=chapter/ for a subset)
	@rm -f bin/conformance.txt
	QUARTET_BIN=$(abspath $(BIN)) SCENARIO_REPORT=$(abspath bin/conformance.txt) $(GO) test -count=1 -timeout 40m -parallel 64 \
	  ./test/scenarios $(if $(RUN),-run 'TestScenarios/$(RUN)'); status=$$?; cat bin/conformance.txt 2>/dev/null; exit $$status

# The benchmarks run a binary of their own, so that a rebuild of bin/quartet
# during a long run does not change what is measured.
BENCH_BIN := bin/quartet-bench

bench: ## quartet's controllers against upstream's, every scenario, 3 rounds (long); writes bench/results/latest.{json,md,png}, latest-breakdown.png and README.md's table
	$(GO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BENCH_BIN) ./cmd/quartet
	BENCH_TARGET=bench QUARTET_BIN=$(abspath $(BENCH_BIN)) $(GO) run ./bench/cmd/bench -out bench/results/latest -readme README.md $(BENCH_FLAGS)

bench-readme: ## write bench/results/latest.{md,png}, latest-breakdown.png and README.md's performance table again from bench/results/latest.json (runs nothing)
	$(GO) run ./bench/cmd/bench -render bench/results/latest.json -out bench/results/latest -readme README.md

bench-quick: ## a small version of every benchmark scenario, one round (under 3 minutes); writes bin/bench-quick.{json,md,png}
	$(GO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BENCH_BIN) ./cmd/quartet
	BENCH_TARGET=bench-quick QUARTET_BIN=$(abspath $(BENCH_BIN)) $(GO) run ./bench/cmd/bench -quick -out bin/bench-quick $(BENCH_FLAGS)

verify: lint ## gofmt, go vet and golangci-lint
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

lint: bin/golangci-lint ## golangci-lint, pinned in tools/go.mod
	./bin/golangci-lint run ./...

bin/golangci-lint: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../bin/golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint

# helm, for the chart's test (test/e2e TestChart): a module of its own so
# that its dependencies do not move golangci-lint's.
bin/helm: tools/helm/go.mod tools/helm/go.sum
	cd tools/helm && $(GO) build -o ../../bin/helm helm.sh/helm/v4/cmd/helm

# The web UI's front end (web/) is built into internal/ui/dist, which is
# committed and embedded in the binary: building quartet needs only Go.
web: ## rebuild the web UI's front end into internal/ui/dist from web/package-lock.json (needs Node 20 and npm)
	cd web && npm ci --no-audit --no-fund && npm run build

web-check: web ## check that the committed internal/ui/dist is exactly what `make web` builds
	@if [ -n "$$(git status --porcelain -- internal/ui/dist)" ]; then \
	  git status --short -- internal/ui/dist; echo "internal/ui/dist differs from a rebuild of web/: run make web and commit it"; exit 1; fi

print-ldflags: # used by the test harness to build the binary the same way
	@echo "$(LDFLAGS)"

print-tags: # used by the test harness to build the binary the same way
	@echo "$(TAGS)"
