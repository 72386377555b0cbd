// Command mamba-bench measures Mamba and the systems users would pick
// instead: `mamba-bench` produces and consumes through the Go SDK against
// one node and reports throughput, HDR latencies, PUT/GET cost and the
// node's CPU and memory; `mamba-bench compare` measures raw MinIO PUTs,
// Mamba, NATS JetStream and Redis Streams side by side; `mamba-bench soak`
// produces at a steady rate for a long time and checks that Redis, the
// index and the bucket stay bounded.
//
// It is a binary of its own so that the mamba binary does not carry the
// benchmark's dependencies (nats.go, hdrhistogram-go); `mamba bench ARGS`
// runs `mamba-bench ARGS` when it is installed next to mamba or on PATH.
// The workloads and reports live in internal/tooling/bench; the figures
// and the commands that reproduce them in docs/benchmarks.md.
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		// Errors from the SDK already start with "mamba: ".
		fmt.Fprintln(os.Stderr, "mamba-bench:", strings.TrimPrefix(err.Error(), "mamba: "))
		os.Exit(1)
	}
}
