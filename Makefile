# DeployDB. `make help` lists the targets.
GO      ?= go
GOTOOL  := $(GO) tool -modfile=tools/go.mod

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/deploydb
	$(GO) build -o bin/deploydb ./cmd/deploydb

.PHONY: run
run: ## Run DeployDB on ./deploydb.db with the example config
	$(GO) run ./cmd/deploydb serve --config examples/config

.PHONY: test
test: ## Run every test with the race detector (the README's test command)
	$(GO) test -race -count=1 ./...

.PHONY: fuzz
fuzz: ## Run each fuzz target briefly
	$(GO) test -run='^$$' -fuzz=FuzzLoad -fuzztime=20s ./config

.PHONY: lint
lint: ## gofmt, go vet, golangci-lint and a tidy go.mod
	$(GO) mod tidy -diff
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GOTOOL) golangci-lint run ./...

.PHONY: verify
verify: ## Check that go.mod is tidy
	$(GO) mod tidy -diff

.PHONY: clean
clean: ## Remove build output
	rm -rf bin
