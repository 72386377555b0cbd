package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"
)

// benchBinary is the benchmark's own command (cmd/mamba-bench). It is a
// separate binary so that mamba does not link the benchmark's NATS client
// and histograms; `mamba bench ARGS` runs `mamba-bench ARGS`.
const benchBinary = "mamba-bench"

// nodeBinaryEnv tells mamba-bench which mamba its local nodes run (its
// --node-binary flag): the mamba that dispatched, so that `mamba bench
// --local` measures this very binary.
const nodeBinaryEnv = "MAMBA_NODE_BINARY"

func newBenchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "bench [flags]",
		Short: "Measure produce and consume throughput, latency and cost (runs mamba-bench)",
		Long: `Run the benchmark, mamba-bench, with the same arguments: "mamba bench
--local" measures a MinIO, Redis and node of its own, "mamba bench compare"
measures Mamba beside raw MinIO PUTs, NATS JetStream and Redis Streams
(docs/benchmarks.md). "mamba bench --help" lists its flags.

mamba-bench is looked for next to this mamba binary, then on PATH. Install
it with

  go install github.com/mambamq/mamba/cmd/mamba-bench@latest

or, in a checkout, run "go run ./cmd/mamba-bench" instead of "mamba bench".
Nodes started by --local and compare run this mamba binary.`,
		Example: `  mamba bench --local --duration 20s
  mamba bench compare --runs 1 --duration 5s --systems minio-put,mamba,nats-sync`,
		// Every argument, flags and --help included, is mamba-bench's.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("bench: find the mamba binary: %w", err)
			}
			path, err := findBench(self)
			if err != nil {
				return err
			}
			env := os.Environ()
			if _, ok := os.LookupEnv(nodeBinaryEnv); !ok {
				env = append(env, nodeBinaryEnv+"="+self)
			}
			return execBench(path, args, env)
		},
	}
}

// findBench returns the mamba-bench beside the mamba executable self, else
// the one on PATH.
func findBench(self string) (string, error) {
	if path, err := exec.LookPath(filepath.Join(filepath.Dir(self), benchBinary)); err == nil {
		return path, nil
	}
	if path, err := exec.LookPath(benchBinary); err == nil {
		return path, nil
	}
	return "", fmt.Errorf("bench: %s is not installed (looked next to %s and on PATH); "+
		"install it with `go install github.com/mambamq/mamba/cmd/mamba-bench@latest`, "+
		"or from a checkout of the repository run `go run ./cmd/mamba-bench` with the same arguments",
		benchBinary, self)
}
