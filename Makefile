# fetchmesh: `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

# Every package of every module in go.work (tools/ is a separate module).
PKGS := github.com/fetchmesh/fetchmesh/...
TOOLS := .tmp/bin
BUF := $(TOOLS)/buf
COMMANDS := ./services/gateway/cmd/gateway ./services/static-fetcher/cmd/static-fetcher \
	./services/render-coordinator/cmd/render-coordinator ./services/render-node/cmd/render-node \
	./services/render-node/cmd/render-node-sim ./services/decodo-proxy/cmd/decodo-proxy ./testweb/cmd/testweb \
	./testweb/cmd/decodo-emulator ./client/cmd/fetchctl ./e2e/cmd/devmesh
TEST_TIMEOUT ?= 30m

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-16s\033[0m %s\n", $$1, $$2}'

$(TOOLS)/.built: tools/go.mod tools/go.sum
	@echo "building pinned tools into $(TOOLS) (the first build of buf takes ~2 minutes)"
	cd tools && GOWORK=off go build -o ../$(TOOLS)/ \
		github.com/bufbuild/buf/cmd/buf \
		google.golang.org/protobuf/cmd/protoc-gen-go \
		google.golang.org/grpc/cmd/protoc-gen-go-grpc \
		github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway \
		github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2 \
		github.com/fullstorydev/grpcurl/cmd/grpcurl
	touch $@

.PHONY: tools
tools: $(TOOLS)/.built ## Build the pinned tools (buf, protoc plugins, grpcurl) into .tmp/bin

JAEGER := $(TOOLS)/jaeger
$(JAEGER): tools/jaeger/go.mod tools/jaeger/go.sum
	@echo "building Jaeger from its pinned module (a cold build takes up to ~13 minutes and ~2 GB of memory; cached afterwards)"
	cd tools/jaeger && GOWORK=off go build -o ../../$(JAEGER) github.com/jaegertracing/jaeger/cmd/jaeger

.PHONY: jaeger-bin
jaeger-bin: $(JAEGER) ## Build Jaeger (pinned in tools/jaeger) into .tmp/bin

.PHONY: jaeger
jaeger: $(JAEGER) ## Start Jaeger alone on loopback (UI http://127.0.0.1:16686, OTLP 127.0.0.1:4317)
	$(JAEGER) --config deploy/jaeger/local.yaml

.PHONY: generate
generate: tools ## Regenerate gen/ from proto/
	$(BUF) format -w
	$(BUF) generate

.PHONY: check-generated
check-generated: generate ## Fail if gen/ differs from what proto/ generates
	@git diff --exit-code --stat -- gen/ proto/ || { echo "generated code is stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- gen/)" || { git status --porcelain -- gen/; echo "untracked generated files: run 'make generate' and commit"; exit 1; }

.PHONY: lint
lint: tools ## go vet, gofmt, buf lint and buf format check
	go vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); test -z "$$out" || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(BUF) lint
	$(BUF) format -d --exit-code
	@if git rev-parse --verify -q origin/main >/dev/null; then $(BUF) breaking --against '.git#branch=origin/main'; fi

.PHONY: deps
deps: ## Install Debian's Chromium packages that are missing: chromium-headless-shell (render-node) and chromium (benchmark baseline)
	@missing=""; for p in chromium-headless-shell chromium; do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if ! command -v apt-get >/dev/null; then \
			echo "missing:$$missing (Debian packages); install them or pass -chromium to render-node"; exit 1; \
		fi; \
		echo "installing from Debian:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi; \
	echo "chromium: $$(command -v chromium-headless-shell) $$(command -v chromium)"

.PHONY: build
build: ## Build every command into bin/
	go build -o bin/ $(COMMANDS)

.PHONY: run
run: deps build jaeger-bin ## Start the whole mesh and Jaeger locally (Ctrl-C stops it); DECODO_EMULATOR=1 adds the Decodo emulator
	./bin/devmesh -bin bin -logs .tmp/run -jaeger $(JAEGER) $(if $(DECODO_EMULATOR),-decodo-emulator)

.PHONY: test
test: deps jaeger-bin ## Run every test: unit, service and end-to-end (real processes and Chromium on loopback)
	go test -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)
	cd deploy/check && GOWORK=off go test -count=1 ./...

.PHONY: bench
bench: deps build jaeger-bin ## Run the benchmarks; prints `name: value unit` lines and a table
	go run ./e2e/cmd/bench -bin bin

.PHONY: ci
ci: lint check-generated test ## What CI runs

.PHONY: clean
clean: ## Remove build output and local state
	rm -rf bin .tmp
