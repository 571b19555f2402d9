# quartet's build. `make help` lists the targets.

GO        ?= go
BIN       := bin/quartet
K8S       := v1.37.2
COMPONENT := k8s.io/component-base/version
# Kubernetes stamps its version at link time; so does quartet, so that
# `kubectl version` reports the server as $(K8S).
LDFLAGS   := -X $(COMPONENT).gitVersion=$(K8S) -X $(COMPONENT).gitMajor=1 -X $(COMPONENT).gitMinor=37 \
             -X $(COMPONENT).gitTreeState=clean -X $(COMPONENT).buildDate=2026-11-01T00:00:00Z
export QUARTET_LDFLAGS := $(LDFLAGS)

.PHONY: help build run test verify
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build bin/quartet
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/quartet

run: build ## build and run `quartet up` on its defaults (~/.quartet, port 6443, 3 nodes)
	./$(BIN) up

test: build ## unit, integration and end-to-end tests
	$(GO) test ./...
