# btcmesh — common tasks. `make help` lists them.
SHELL := /bin/bash
GO ?= go
BIN := bin
PROTO_DIR := proto
PROTO_FILES := $(shell find $(PROTO_DIR)/btcmesh -name '*.proto' | sort)
VERSION ?= 0.1.0
LDFLAGS := -s -w -X github.com/btcmesh/btcmesh/internal/version.Version=$(VERSION)
PKGS := ./... github.com/btcmesh/btcmesh/proto/... github.com/btcmesh/btcmesh/tools/...

.PHONY: help build test test-suites test-short lint proto proto-check run tools clean bench bench-sync fuzz image up down compose-test k8s-lint k8s-check monitoring-check k8s-autoscale

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# CGO=1 (the default) compiles libsecp256k1 in for ECDSA verification and
# links statically (glibc's static archive, the netgo resolver); CGO=0
# builds a pure-Go binary that verifies with btcd's slower code.
CGO ?= 1
ifeq ($(CGO),1)
BUILD_FLAGS := -tags netgo,osusergo -ldflags '$(LDFLAGS) -linkmode external -extldflags "-static"'
else
BUILD_FLAGS := -ldflags '$(LDFLAGS)'
endif

build: ## build the static btcmesh binary into bin/ (CGO=0: without libsecp256k1)
	CGO_ENABLED=$(CGO) $(GO) build -trimpath $(BUILD_FLAGS) -o $(BIN)/btcmesh ./cmd/btcmesh

# Reference suites run in full and print their counts (go test hides the
# output of passing tests unless -v), so they run apart from the rest.
SUITES := TestVectors|TestFullBlocks|TestFullBlocksLargeReorg

test: build ## run every test: unit, service, end-to-end (one process and split), interop, reference suites
	BTCMESH_BIN=$(CURDIR)/$(BIN)/btcmesh $(GO) test -count=1 -timeout 30m -skip '^($(SUITES))$$' $(PKGS)
	$(MAKE) --no-print-directory test-suites

test-suites: build ## Bitcoin Core's vectors and btcd's full-block suite, in full, with their counts
	set -o pipefail; BTCMESH_BIN=$(CURDIR)/$(BIN)/btcmesh $(GO) test -count=1 -timeout 30m -v -run '^($(SUITES))$$' \
		./services/txvalidator ./test | grep -vE '^[[:space:]]*[{]|^=== (PAUSE|CONT)'

test-short: ## unit tests only
	$(GO) test -short -count=1 $(PKGS)

lint: ## go vet and gofmt
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l cmd internal services test proto tools bench deploy); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

tools: ## build the pinned protoc plugins into bin/
	cd tools && $(GO) build -o ../$(BIN)/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

proto: tools ## regenerate Go code from proto/ (needs protoc: apt-get install protobuf-compiler)
	@command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler"; exit 1; }
	cd $(PROTO_DIR) && protoc -I . \
		--plugin=protoc-gen-go=../$(BIN)/protoc-gen-go --go_out=. --go_opt=paths=source_relative \
		--plugin=protoc-gen-go-grpc=../$(BIN)/protoc-gen-go-grpc --go-grpc_out=. --go-grpc_opt=paths=source_relative \
		$(patsubst $(PROTO_DIR)/%,%,$(PROTO_FILES))

proto-check: proto ## fail when the committed generated code differs from proto/
	@git diff --exit-code -- $(PROTO_DIR) || { echo "generated code is out of date: run 'make proto' and commit"; exit 1; }
	@if [ -n "$$(git ls-files --others --exclude-standard -- $(PROTO_DIR))" ]; then echo "untracked generated files in $(PROTO_DIR): run 'make proto' and commit"; exit 1; fi

bench: ## validation table: btcmesh vs raw secp256k1 and vs btcd, each ratio measured in one run
	BTCMESH_BENCH=1 $(GO) test -count=1 -timeout 30m -run '^TestConsensusTable$$' -v ./bench/

bench-sync: build ## sync row: btcmesh vs a second btcd syncing the same 2,111-block / 200k-tx regtest chain from one btcd
	BTCMESH_BIN=$(CURDIR)/$(BIN)/btcmesh BTCMESH_BENCH=1 $(GO) test -count=1 -timeout 60m -run '^TestSyncTable$$' -v ./bench/

FUZZTIME ?= 20s
FUZZ_PKGS ?= ./services/p2p
fuzz: ## run every fuzz target for FUZZTIME each (seeds alone run in make test)
	@set -e; for pkg in $(FUZZ_PKGS); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; \
	    $(GO) test $$pkg -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -parallel 2; \
	  done; \
	done

COMPOSE ?= docker-compose
COMPOSE_PROJECT ?= btcmesh

image: build ## container images without a registry: btcmesh:dev and a local NATS image
	SKIP_BUILD=1 VERSION=$(VERSION) scripts/image.sh all

up: image ## start the docker-compose dev cluster (regtest; ports on 127.0.0.1 only)
	$(COMPOSE) -p $(COMPOSE_PROJECT) -f compose.yaml up -d

down: ## stop the dev cluster and delete its volumes
	$(COMPOSE) -p $(COMPOSE_PROJECT) -f compose.yaml down -v --remove-orphans

compose-test: image ## end-to-end test of the compose cluster; kills a txvalidator mid-stream
	SKIP_IMAGES=1 COMPOSE=$(COMPOSE) scripts/compose-test.sh

k8s-lint: ## render every kustomize overlay and check it offline
	@for o in regtest mainnet keda; do kubectl kustomize deploy/k8s/overlays/$$o | python3 scripts/k8s-lint.py || exit 1; done

k8s-check: ## apply every overlay to a real kube-apiserver + etcd on 127.0.0.1 (first run builds it: 10+ min)
	scripts/k8s-check.sh

k8s-autoscale: ## show the regtest txvalidator HPA scaling up and down on a local control plane + kwok (first run builds: 15+ min)
	scripts/k8s-autoscale.sh

monitoring-check: ## alert rules and dashboard: metrics exist in the code, PromQL parses
	scripts/check-monitoring.sh

run: build ## run the whole node in one process (regtest, data in ./data)
	$(BIN)/btcmesh node --datadir ./data

clean: ## remove build output
	rm -rf $(BIN)
