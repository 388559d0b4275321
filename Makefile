# DeployDB. `make help` lists the targets.
GO      ?= go
GOTOOL  := $(GO) tool -modfile=tools/go.mod

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/deploydb
	$(GO) build -o bin/deploydb ./cmd/deploydb

.PHONY: run
run: ## Run DeployDB on ./deploydb.db with the example config
	$(GO) run ./cmd/deploydb serve --config examples/config

.PHONY: demo
demo: ## Run DeployDB with its demo (simulated CI, orchestrator and tests); open http://127.0.0.1:8080/
	$(GO) run ./cmd/deploydb serve --demo --log-format text

.PHONY: screenshots
screenshots: ## Take docs/screenshots from the demo in a headless Chromium (about 2 minutes)
	DEPLOYDB_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run '^TestScreenshots$$' -timeout 10m ./cmd/deploydb

.PHONY: test
test: ## Run every test with the race detector (the README's test command)
	$(GO) test -race -count=1 ./...

# Fuzzing: every Fuzz function of a _test.go file, one after the other, each
# for FUZZTIME. FUZZMINIMIZETIME keeps the fuzzer from spending a short run
# minimising the inputs it finds; FUZZPARALLEL is its number of workers.
FUZZTIME         ?= 10s
FUZZMINIMIZETIME ?= 20x
FUZZPARALLEL     ?= 2
FUZZ_TARGETS = $(shell grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | \
	sed -E 's|^(.*)/[^/]*:func (Fuzz.*)$$|\1:\2|' | sort)

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 10s), one after the other
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; out=$$(mktemp); \
		echo "== fuzz $$name ($$pkg, $(FUZZTIME))"; \
		if $(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZETIME) \
			-parallel=$(FUZZPARALLEL) $$pkg >$$out 2>&1; then \
			grep '^fuzz: elapsed' $$out | tail -n 1; \
		elif grep -q '^    context deadline exceeded$$' $$out && ! grep -q 'Failing input written to' $$out; then \
			grep '^fuzz: elapsed' $$out | tail -n 1; \
			echo "fuzz: $$name: the fuzzing coordinator's shutdown race (go.dev/issue/75804, fixed in Go 1.27), no failing input: not a finding"; \
		else \
			cat $$out; rm -f $$out; exit 1; \
		fi; \
		rm -f $$out; \
	done

# Benchmarks: every Benchmark function of a _test.go file (the guards of
# the hot paths DESIGN.md §10 sets targets for), each for BENCHTIME, under
# -short (a smaller history to build). A short run checks that they run;
# compare numbers with -count and benchstat, not from one short run.
BENCHTIME     ?= 20x
BENCH_PACKAGES = $(shell grep -rl --include='*_test.go' '^func Benchmark' . | xargs -n1 dirname | sort -u)

.PHONY: bench-short
bench-short: ## Run every go test benchmark for BENCHTIME (default 20x), under -short
	$(GO) test -short -run='^$$' -bench=. -benchtime=$(BENCHTIME) -timeout=20m $(BENCH_PACKAGES)

.PHONY: lint
lint: ## gofmt, go vet, golangci-lint and a tidy go.mod
	$(GO) mod tidy -diff
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GOTOOL) golangci-lint run ./...

.PHONY: verify
verify: ## Check that go.mod is tidy
	$(GO) mod tidy -diff

# The benchmark (BENCHMARKS.md): BENCHFLAGS passes flags to
# cmd/deploydb-bench, e.g. BENCHFLAGS='-scale 10k,1m -cache /var/tmp/deploydb-bench'.
BENCHFLAGS ?=

.PHONY: bench
bench: build ## Measure DeployDB against DESIGN.md §10 (10k history; BENCHFLAGS='-scale 10k,10m' judges the read targets)
	$(GO) build -o bin/deploydb-bench ./cmd/deploydb-bench
	./bin/deploydb-bench -bin bin/deploydb $(BENCHFLAGS)

.PHONY: clean
clean: ## Remove build output
	rm -rf bin
