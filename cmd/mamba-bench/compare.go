package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/cliflag"
	"github.com/mambamq/mamba/internal/tooling/bench"
)

// newCompareCmd is `mamba-bench compare`; nodeBin is the root's
// --node-binary.
func newCompareCmd(nodeBin *string) *cobra.Command {
	cfg := bench.CompareConfig{
		Runs: 3, MessageSize: 1024, Producers: 4, Duration: 15 * time.Second, Warmup: 3 * time.Second,
		ObjectSize: 8 << 20, Uploads: 4, FlushInterval: 250 * time.Millisecond, Partitions: 8,
		SDKInFlight: client.DefaultMaxInFlight, SDKBatchBytes: client.DefaultMaxBatchBytes, QueueInFlight: 256,
		MaxBuffered: 256 << 20, CacheBytes: 256 << 20,
	}
	var systems, output string
	var messageSize, objectSize, batchBytes, maxBuffered, cacheBytes cliflag.ByteSize = 1024, 8 << 20, client.DefaultMaxBatchBytes, 256 << 20, 256 << 20
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Measure Mamba side by side with raw MinIO PUTs, NATS JetStream and Redis Streams",
		Long: `Start MinIO, Redis, one Mamba node, NATS JetStream servers and Redis Streams
servers on loopback, then measure each system --runs times with the same
message size and producer count, and print one table of medians with the
ratios:

  minio-put       PUTs of --object-size objects, --uploads in flight: the
                  limit of this set-up (Mamba PUTs chunks of that size)
  mamba           SDK binary path, durable acks (chunk PUT, then offsets
                  committed in Redis with appendfsync always)
  mamba-json      the same over the JSON path
  nats-sync       JetStream, file storage, sync_interval always
  nats            JetStream, file storage, default sync (every 2 minutes)
  redis-always    Redis Streams XADD, AOF appendfsync always
  redis-everysec  Redis Streams XADD, AOF appendfsync everysec

With --targets it then runs Mamba at half its measured throughput with a
consumer group, at 1 and 1000 partitions, and at twice its throughput, and
checks the performance targets of docs/benchmarks.md.

Needs minio, redis-server and nats-server installed
(deploy/local/install-deps.sh).`,
		Example: `  mamba-bench compare --targets
  mamba bench compare --runs 1 --duration 5s --systems minio-put,mamba,nats-sync -o json`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return cliflag.BindEnv(cmd.Flags())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output %q: want text or json", output)
			}
			cfg.Systems = nil
			for s := range strings.SplitSeq(systems, ",") {
				if s = strings.TrimSpace(s); s != "" {
					cfg.Systems = append(cfg.Systems, s)
				}
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			bin, err := nodeBinary(*nodeBin)
			if err != nil {
				return err
			}
			cfg.Binary = bin
			cfg.MessageSize, cfg.ObjectSize, cfg.SDKBatchBytes = int(messageSize), int(objectSize), int(batchBytes)
			cfg.MaxBuffered, cfg.CacheBytes = int64(maxBuffered), int64(cacheBytes)
			stderr := cmd.ErrOrStderr()
			cfg.Log = func(line string) { fmt.Fprintln(stderr, line) }
			res, err := bench.Compare(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			return bench.WriteCompareReport(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&systems, "systems", strings.Join(bench.AllSystems, ","), "systems to measure, comma-separated")
	f.IntVar(&cfg.Runs, "runs", cfg.Runs, "runs of each system (the table gives medians)")
	f.Var(&messageSize, "message-size", "bytes per message")
	f.IntVar(&cfg.Producers, "producers", cfg.Producers, "producers of every system")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured window of each run")
	f.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "warm-up before each run's window")
	f.Var(&objectSize, "object-size", "raw PUT object size and the node's --flush-bytes")
	f.IntVar(&cfg.Uploads, "uploads", cfg.Uploads, "raw PUTs in flight and the node's --upload-concurrency")
	f.DurationVar(&cfg.FlushInterval, "flush-interval", cfg.FlushInterval, "the node's --flush-interval")
	f.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "Mamba partitions")
	f.IntVar(&cfg.SDKInFlight, "in-flight", cfg.SDKInFlight, "Mamba SDK requests in flight per producer")
	f.Var(&batchBytes, "batch-bytes", "Mamba SDK max batch bytes")
	f.IntVar(&cfg.QueueInFlight, "queue-in-flight", cfg.QueueInFlight, "NATS and Redis: unacknowledged messages per producer")
	f.Var(&maxBuffered, "max-buffered-bytes", "the node's --max-buffered-bytes")
	f.Var(&cacheBytes, "cache-bytes", "the node's --cache-bytes")
	f.BoolVar(&cfg.Targets, "targets", false, "also run and check the performance targets")
	f.StringVar(&cfg.Dir, "dir", "", "directory for the servers' data (default: a temporary directory, removed at the end)")
	f.StringVarP(&output, "output", "o", "text", "report format: text or json")
	return cmd
}
