SHELL := /bin/bash
# eos-runner. `make run` starts the example on the embedded stack; `make test`
# is what CI runs.
GO       ?= go
BIN      := bin/eos-runner
GOKA_BIN := bin/goka-count
PKGS_UNIT = $(shell $(GO) list ./... | grep -v /integration)

.PHONY: all build goka-count run test fmt-check vet unit integration chaos bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/eos-runner

# The example end to end on the embedded broker, with a live table. Ctrl-C
# stops it; running it again resumes (state in .eos/).
run: build
	./$(BIN) dev

test: fmt-check vet unit integration

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Unit tests (and in-process broker tests) under the race detector, with
# -short; then the tests -short trims (the window property tests' full 2000
# random streams per case, the large restore) without it, where they run
# several times faster.
unit:
	$(GO) test -race -short -count=1 -timeout 15m $(PKGS_UNIT)
	$(GO) test -count=1 -timeout 15m -run 'Property|TestRestoreLargeRecords' ./topology/ ./changelog/

# Integration tests: the embedded broker and the runner as separate processes
# (or KAFKA_BOOTSTRAP_SERVERS / SCHEMA_REGISTRY_URL when set).
integration:
	$(GO) test -count=1 -timeout 20m -v ./integration/ 2>&1 | tee integration.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|\s+[a-z_]+\.go:[0-9]+:)' ; exit $${PIPESTATUS[0]}

# Fault-injection soak: more records, more kills, random seeds; prints a
# summary table (case, records, kills, cuts, rebalances, restarts, time,
# verdict). Under the race detector: the runner processes are built with
# -race (a race report in a runner's log fails its case), and so is the test
# binary, for the runners the tests run in-process.
chaos:
	EOS_CHAOS=1 $(GO) test -race -count=1 -timeout 120m -v -run 'TestFaults|TestFailurePaths|TestSIGKILL|TestChurn|TestCopartitionedOwnership' ./integration/ 2>&1 | tee chaos.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|\s+[a-z_]+\.go:[0-9]+:|\s+case|\s+[a-z-]+\s+[0-9]+)' ; exit $${PIPESTATUS[0]}

# The goka peer of the bench (bench/goka, its own module: eos-runner does
# not depend on goka).
goka-count:
	cd bench/goka && $(GO) build -o ../../$(GOKA_BIN) .

# Benchmarks: throughput, CPU per record, RSS, latency and restore speed,
# as ratios against a raw librdkafka copy through the same broker, with
# goka beside eos-runner; writes bench/results.json.
bench: build goka-count
	./$(BIN) bench --goka-binary $(GOKA_BIN)

# bin holds $(BIN) and $(GOKA_BIN).
clean:
	rm -rf bin .eos integration.log
