# The whole test suite: installs the servers the integration tests start
# (redis-server, MinIO, mc, nats-server) and staticcheck, each skipped when
# present; checks vet, staticcheck and formatting; and runs every test with
# the race detector. CI runs exactly this.
.PHONY: test deps fuzz

test: deps
	go vet ./...
	"$$(command -v staticcheck || echo "$$(go env GOPATH)/bin/staticcheck")" ./...
	@unformatted="$$(gofmt -l .)"; if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go test -race -count=1 -timeout 20m ./...

deps:
	bash deploy/local/install-deps.sh

# Runs each fuzz target for FUZZTIME (default 60s).
FUZZTIME ?= 60s
fuzz:
	go test ./chunk/ -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	go test ./chunk/ -run '^$$' -fuzz '^FuzzDecodeBatch$$' -fuzztime $(FUZZTIME)
	go test ./internal/wire/ -run '^$$' -fuzz '^FuzzDecodeProduceRequest$$' -fuzztime $(FUZZTIME)
	go test ./internal/wire/ -run '^$$' -fuzz '^FuzzDecodeProduceResponse$$' -fuzztime $(FUZZTIME)
	go test ./internal/wire/ -run '^$$' -fuzz '^FuzzDecodeFetchResponse$$' -fuzztime $(FUZZTIME)
	go test ./recovery/ -run '^$$' -fuzz '^FuzzDecodeCheckpoint$$' -fuzztime $(FUZZTIME)
	go test ./ingest/httpapi/ -run '^$$' -fuzz '^FuzzDecodeJSONRecords$$' -fuzztime $(FUZZTIME)
	go test ./ingest/ -run '^$$' -fuzz '^FuzzBatchPlan$$' -fuzztime $(FUZZTIME)

# The zero-loss fault suite (internal/tooling/faultsuite, docs/reliability.md):
# `faults` is the CI size, `faults-soak` the long run. Both write the
# results table to FAULT_REPORT.
FAULT_REPORT ?= fault-report.md
.PHONY: faults faults-soak
faults:
	CI=true MAMBA_FAULT_REPORT=$(FAULT_REPORT) go test -count=1 -timeout 15m -v ./internal/tooling/faultsuite
faults-soak:
	CI=true MAMBA_SOAK=1 MAMBA_FAULT_REPORT=$(FAULT_REPORT) go test -count=1 -timeout 60m -v ./internal/tooling/faultsuite

# The adversarial suite (internal/tooling/adversary, docs/security.md "How
# this is tested"): `adversary` is the CI size, which `go test ./...` also
# runs; `adversary-long` adds the attacks that take minutes (a body that
# trickles for the whole-body limit) and larger floods.
.PHONY: adversary adversary-long
adversary:
	CI=true go test -count=1 -timeout 10m -v ./internal/tooling/adversary
adversary-long:
	CI=true MAMBA_ADVERSARY_LONG=1 go test -count=1 -timeout 30m -v ./internal/tooling/adversary

# A short benchmark of a MinIO, Redis and node of its own (docs/benchmarks.md):
# builds mamba and mamba-bench into bin/ and runs `mamba bench --local`,
# which needs minio and redis-server (make deps). BENCH_ARGS adds flags,
# e.g. BENCH_ARGS="--groups 1 -o json".
BENCH_ARGS ?=
.PHONY: bench
bench:
	go build -o bin/ ./cmd/mamba ./cmd/mamba-bench
	bin/mamba bench --local --duration 10s --warmup 2s $(BENCH_ARGS)

# The soak run of issue 13 (docs/benchmarks.md, "Soak"): builds mamba and
# mamba-bench into bin/ and runs `mamba-bench soak` (30 minutes at a steady
# rate, retention 5m, a sample a minute, Redis appendfsync always), which
# needs minio and redis-server (make deps). SOAK_ARGS adds flags, e.g.
# SOAK_ARGS="--duration 3m --sample-interval 30s --retention 1m" or
# SOAK_ARGS="--node-arg=--retention-interval=30s -o csv".
SOAK_ARGS ?=
.PHONY: soak
soak:
	go build -o bin/ ./cmd/mamba ./cmd/mamba-bench
	bin/mamba-bench soak $(SOAK_ARGS)
