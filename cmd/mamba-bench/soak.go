package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mambamq/mamba/internal/cliflag"
	"github.com/mambamq/mamba/internal/tooling/bench"
)

type soakOptions struct {
	cfg         bench.SoakConfig
	recordBytes cliflag.ByteSize
	redisAOF    string
	nodeArgs    []string
	localDir    string
	output      string
}

// newSoakCmd is `mamba-bench soak`; nodeBin is the root's --node-binary.
func newSoakCmd(nodeBin *string) *cobra.Command {
	o := soakOptions{
		cfg: bench.SoakConfig{
			Duration: 30 * time.Minute, SampleInterval: time.Minute, Rate: 1000,
			Partitions: 8, Producers: 2, Retention: 5 * time.Minute,
		},
		recordBytes: 1024, redisAOF: "always", output: "table",
	}
	cmd := &cobra.Command{
		Use:   "soak",
		Short: "Produce at a steady rate for a long time and check that Redis, the index and the bucket stay bounded",
		Long: `Start a MinIO, a Redis (append-only file, appendfsync --redis-aof) and one
node on loopback, create one topic with retention_ms --retention, and
produce --rate records/s of --record-bytes through the Go SDK for
--duration. Every --sample-interval it records:

  acked            records acknowledged so far
  redis_used_mib   Redis INFO memory used_memory
  index_entries    chunk index entries of every partition
  bucket_objects   objects in the bucket (one listing)
  bucket_mib       bytes in the bucket
  checkpoint_kib   size of the newest checkpoint in the bucket
  checkpoint_s     how long the node's last checkpoint took (its /metrics)
  node_rss_mib     the node's resident memory

At the end it prints the table and, for each figure but acked, the ratio
of the last sample to the reference sample: the one at minute 10, or at a
third of the run when the run is shorter than 30 minutes. A figure within
1.25x of its reference passes; the command exits non-zero when one does
not. Ctrl-C stops the run and prints what it has.

Retention, garbage collection and compaction run in the node when its
flags say so: pass them with --node-arg (repeatable), for example
--node-arg=--retention-interval=30s. Index entries are counted under the
node's --key-prefix, when one is passed that way.

Needs minio and redis-server installed (deploy/local/install-deps.sh).`,
		Example: `  mamba-bench soak
  mamba-bench soak --duration 3m --sample-interval 30s --retention 1m
  make soak SOAK_ARGS="--rate 5000 --node-arg=--retention-interval=30s -o csv"`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return cliflag.BindEnv(cmd.Flags())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSoak(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), *nodeBin, o)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.cfg.Duration, "duration", o.cfg.Duration, "how long to produce")
	f.Float64Var(&o.cfg.Rate, "rate", o.cfg.Rate, "records per second over all producers (steady, paced)")
	f.Var(&o.recordBytes, "record-bytes", "bytes per record value (at least 8: the send time)")
	f.IntVar(&o.cfg.Partitions, "partitions", o.cfg.Partitions, "partitions of the topic")
	f.IntVar(&o.cfg.Producers, "producers", o.cfg.Producers, "producers (one SDK producer each)")
	f.DurationVar(&o.cfg.Retention, "retention", o.cfg.Retention, "the topic's retention_ms")
	f.DurationVar(&o.cfg.SampleInterval, "sample-interval", o.cfg.SampleInterval, "how often the figures are sampled")
	f.StringArrayVar(&o.nodeArgs, "node-arg", nil, "extra flag for the node's mamba serve, e.g. --node-arg=--gc-interval=1m (repeatable)")
	f.StringVar(&o.redisAOF, "redis-aof", o.redisAOF, "Redis appendfsync policy: always, everysec or no")
	f.StringVar(&o.localDir, "local-dir", "", "directory for the servers' data (default: a temporary directory, removed at the end)")
	f.StringVarP(&o.output, "output", "o", o.output, "report format: table, json or csv")
	return cmd
}

func runSoak(ctx context.Context, stdout, stderr io.Writer, nodeBinFlag string, o soakOptions) error {
	switch o.output {
	case "table", "json", "csv":
	default:
		return fmt.Errorf("--output %q: want table, json or csv", o.output)
	}
	switch o.redisAOF {
	case "always", "everysec", "no":
	default:
		return fmt.Errorf("--redis-aof %q: want always, everysec or no", o.redisAOF)
	}
	o.cfg.RecordBytes = int(o.recordBytes)
	if err := o.cfg.Validate(); err != nil {
		return err
	}
	bin, err := nodeBinary(nodeBinFlag)
	if err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	// Ctrl-C ends the run early; the report shows the samples taken.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "starting MinIO, Redis and a node on loopback; soak of %v, a sample every %v (Ctrl-C stops early) ...\n",
		o.cfg.Duration, o.cfg.SampleInterval)
	rep, runErr := bench.RunSoak(ctx, bench.LocalOptions{
		Binary: bin, Dir: o.localDir, RedisFsync: o.redisAOF, NodeArgs: o.nodeArgs,
	}, o.cfg, func(s bench.SoakSample) {
		fmt.Fprintf(stderr, "minute %.2f: %d acked, Redis %d B, %d index entries, %d objects (%d B), checkpoint %d B in %.3fs\n",
			s.Minute, s.Acked, s.RedisUsedMemory, s.IndexEntries, s.BucketObjects, s.BucketBytes, s.CheckpointBytes, s.CheckpointSeconds)
	})
	if len(rep.Samples) > 0 || runErr == nil {
		if err := writeSoak(stdout, o.output, rep); err != nil {
			return err
		}
	}
	if runErr != nil {
		return runErr
	}
	if !rep.Interrupted && !rep.Pass() {
		return fmt.Errorf("soak: a figure grew beyond %.2fx of its reference sample", bench.SoakBound)
	}
	return nil
}

func writeSoak(w io.Writer, format string, rep bench.SoakReport) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "csv":
		return bench.WriteSoakCSV(w, rep)
	default:
		return bench.WriteSoakTable(w, rep)
	}
}
