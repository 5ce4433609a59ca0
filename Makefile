# storyd — the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
BIN       := bin/storyd
PKGS      := ./...

.PHONY: help run build test test-go fmt lint bench bench-go clean

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z-]+:.*## /{printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/storyd
	$(GO) build -o $(BIN) ./cmd/storyd

run: build ## start storyd on embedded defaults (SQLite in ./data, offline model) at 127.0.0.1:8000
	./$(BIN) serve

test: ## every test, with -race, against a real PostgreSQL and Redis started for the run
	bash deploy/test.sh

test-go: ## go test -race without starting services (integration tests skip)
	$(GO) test -race -count=1 $(PKGS)

fmt: ## fail when gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

lint: fmt ## gofmt check and go vet
	$(GO) vet $(PKGS)

bench: ## load scenarios and Go benchmarks; rewrites docs/BENCHMARKS.md (about 7 minutes)
	bash deploy/bench.sh

bench-go: ## only the Go benchmarks of the hot paths
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean: ## remove build output
	rm -rf bin
