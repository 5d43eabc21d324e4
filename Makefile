# canaryd: `make test` installs what the tests need and runs all of them;
# `make demo` shows a canary release end to end.
GO        ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
export GOFLAGS := -buildvcs=true

.PHONY: all build test deps vet lint demo demo-faulty bench fuzz clean

all: build

COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null)

build:
	$(GO) build -ldflags "-X github.com/canaryd/canaryd/internal/version.BuildCommit=$(COMMIT)" -o bin/ ./cmd/canaryd ./cmd/canaryctl

deps:
	@./scripts/install-deps.sh

vet:
	$(GO) vet ./...

lint:
	$(GO) run $(STATICCHECK) ./...

test: deps vet lint
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -count=1 -run 'TestLargeUploadStreams' ./internal/proxy/

# A canary release end to end: a healthy canary is promoted step by step.
demo:
	$(GO) run ./cmd/canaryd demo $(DEMO_ARGS)

# The same with a failing canary: rolled back automatically.
demo-faulty:
	$(GO) run ./cmd/canaryd demo --faulty $(DEMO_ARGS)

# Benchmarks of the request path (figures in docs/benchmarks.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/route/... ./internal/balance/ ./internal/metrics/... ./internal/latency/ ./internal/proxy/

# Short fuzzing of the parsers (the corpora in testdata/ also run in `make test`).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./internal/config/
	$(GO) test -run '^$$' -fuzz FuzzUserKey -fuzztime 30s ./internal/route/cohort/
	$(GO) test -run '^$$' -fuzz FuzzBucket -fuzztime 10s ./internal/route/cohort/

clean:
	rm -rf bin
