package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/cliflag"
	"github.com/mambamq/mamba/internal/tooling/bench"
)

type benchOptions struct {
	url            string
	token          string
	local          bool
	localDir       string
	redisFsync     string
	nodeArgs       []string
	redisAddr      string
	messageSize    cliflag.ByteSize
	topics         int
	partitions     int
	producers      int
	keys           int
	groups         int
	consumers      int
	rate           float64
	duration       time.Duration
	warmup         time.Duration
	drain          time.Duration
	catchUpReaders int
	catchUpFetch   cliflag.ByteSize
	ack            string
	format         string
	linger         time.Duration
	batchBytes     cliflag.ByteSize
	inFlight       int
	bufferBytes    cliflag.ByteSize
	flushIntv      time.Duration
	flushBytes     cliflag.ByteSize
	nodeProfile    string
	output         string
	keepTopics     bool
	nodeBinary     string
}

// newRootCmd is `mamba-bench`, which `mamba bench` runs: the benchmark of
// one node, with `compare` below it.
func newRootCmd() *cobra.Command {
	o := benchOptions{
		url: "http://127.0.0.1:8080", redisFsync: "always",
		messageSize: 1024, topics: 1, partitions: 8, producers: 4, consumers: 1,
		duration: 30 * time.Second, warmup: 5 * time.Second, drain: 30 * time.Second,
		ack: "durable", format: "binary",
		linger: client.DefaultLinger, batchBytes: client.DefaultMaxBatchBytes, inFlight: client.DefaultMaxInFlight,
		flushIntv: ingest.DefaultFlushInterval, flushBytes: cliflag.ByteSize(ingest.DefaultFlushBytes),
		catchUpFetch: bench.DefaultCatchUpFetchBytes,
		output:       "text",
	}
	cmd := &cobra.Command{
		Use:           "mamba-bench",
		Short:         "Measure produce and consume throughput, latency and cost",
		SilenceUsage:  true,
		SilenceErrors: true,
		// `mamba bench completion` would be mamba's, not this binary's.
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		Long: `Measure a Mamba node: producers write fixed-size records through the Go SDK
for --duration after a --warm-up, optionally read back by consumer groups,
and the report gives produce throughput, ack latency (p50 to max),
end-to-end latency (each record carries its send time), the node's object
store PUTs and GETs and their S3 request cost per GiB at AWS list prices,
Redis commands per second, and the node's CPU and peak RSS.

With --local the benchmark starts its own MinIO, Redis (AOF, --redis-fsync)
and node on loopback in a temporary directory, and stops them at the end;
MinIO and redis-server must be installed (deploy/local/install-deps.sh),
and the node runs the mamba binary of --node-binary (by default a mamba
next to mamba-bench, or on PATH; "mamba bench" passes itself).
Otherwise it measures the node at --url, and reads Redis at --redis-addr
if given.

Latencies come from HDR histograms. With --rate, records are sent on a
fixed schedule and latency is measured from each record's scheduled time,
so a stall is not hidden (no coordinated omission).

"mamba-bench compare" runs the same workload against raw MinIO PUTs, NATS
JetStream and Redis Streams in one run (docs/benchmarks.md); "mamba-bench
soak" produces at a steady rate for a long time and checks that Redis, the
index and the bucket stay bounded.

"mamba bench ARGS" runs "mamba-bench ARGS".`,
		Example: `  mamba-bench --local --duration 20s
  mamba-bench --url http://127.0.0.1:8080 --partitions 1000 --rate 100000 --groups 1
  mamba bench --local --format json --ack buffered -o json`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return cliflag.BindEnv(cmd.Flags())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", o.url, "node to measure (ignored with --local)")
	f.StringVar(&o.token, "token", "", "API token with the admin scope, for a node started with --auth (ignored with --local)")
	f.BoolVar(&o.local, "local", false, "start a MinIO, Redis and node of its own on loopback")
	f.StringVar(&o.localDir, "local-dir", "", "with --local: directory for the servers' data (default: a temporary directory, removed at the end)")
	f.StringVar(&o.redisFsync, "redis-fsync", o.redisFsync, "with --local: Redis appendfsync policy (always, everysec or no)")
	f.StringArrayVar(&o.nodeArgs, "node-arg", nil, "with --local: extra flag for the node's mamba serve, e.g. --node-arg=--max-buffered-bytes=64MiB (repeatable)")
	f.StringVar(&o.nodeProfile, "node-cpu-profile", "", "with --local: write the node's CPU profile over the measured window to this file")
	f.StringVar(&o.redisAddr, "redis-addr", "", "Redis host:port to read commands per second from (set by --local)")
	f.Var(&o.messageSize, "message-size", "bytes per record value (at least 8: the send time)")
	f.IntVar(&o.topics, "topics", o.topics, "topics to create")
	f.IntVar(&o.partitions, "partitions", o.partitions, "partitions per topic")
	f.IntVar(&o.producers, "producers", o.producers, "producers (one SDK producer each)")
	f.IntVar(&o.keys, "keys", 0, "distinct record keys, spreading records over every partition (0: no keys, one partition per SDK batch)")
	f.IntVar(&o.groups, "groups", 0, "consumer groups reading every topic (0: produce only)")
	f.IntVar(&o.consumers, "consumers", o.consumers, "consumers per group")
	f.Float64Var(&o.rate, "rate", 0, "target records per second over all producers (0: unlimited)")
	f.DurationVar(&o.duration, "duration", o.duration, "measured window")
	f.DurationVar(&o.warmup, "warmup", o.warmup, "time before the measured window, not counted")
	f.DurationVar(&o.drain, "drain", o.drain, "how long consumers may take after the window to read what was produced")
	f.IntVar(&o.catchUpReaders, "catchup-readers", 0, "after producing, readers replaying every partition from its oldest record, reported with GETs per MiB read (0: no catch-up phase)")
	f.Var(&o.catchUpFetch, "catchup-fetch-bytes", "max bytes of each catch-up fetch")
	f.StringVar(&o.ack, "ack", o.ack, "ack mode: durable or buffered")
	f.StringVar(&o.format, "format", o.format, "request format: binary or json")
	f.DurationVar(&o.linger, "linger", o.linger, "SDK linger")
	f.Var(&o.batchBytes, "batch-bytes", "SDK max batch bytes")
	f.IntVar(&o.inFlight, "in-flight", o.inFlight, "SDK max requests in flight per producer")
	f.Var(&o.bufferBytes, "buffer-bytes", "SDK max buffered bytes per producer (default: in-flight + 1 batches)")
	f.DurationVar(&o.flushIntv, "flush-interval", o.flushIntv, "the node's --flush-interval (passed to the node with --local; used for the PUT bound)")
	f.Var(&o.flushBytes, "flush-bytes", "the node's --flush-bytes (passed to the node with --local; used for the PUT bound)")
	f.BoolVar(&o.keepTopics, "keep-topics", false, "do not delete the topics the run created")
	f.StringVarP(&o.output, "output", "o", o.output, "report format: text or json")
	cmd.PersistentFlags().StringVar(&o.nodeBinary, nodeBinaryFlag, "", "with --local, compare and soak: the mamba binary the node runs (default: mamba next to mamba-bench, or on PATH)")
	cmd.AddCommand(newCompareCmd(&o.nodeBinary), newSoakCmd(&o.nodeBinary))
	return cmd
}

func (o benchOptions) config() (bench.MambaConfig, error) {
	if o.output != "text" && o.output != "json" {
		return bench.MambaConfig{}, fmt.Errorf("--output %q: want text or json", o.output)
	}
	if o.ack != "durable" && o.ack != "buffered" {
		return bench.MambaConfig{}, fmt.Errorf("--ack %q: want durable or buffered", o.ack)
	}
	if o.format != "binary" && o.format != "json" {
		return bench.MambaConfig{}, fmt.Errorf("--format %q: want binary or json", o.format)
	}
	if o.nodeProfile != "" && !o.local {
		return bench.MambaConfig{}, fmt.Errorf("--node-cpu-profile needs --local")
	}
	return bench.MambaConfig{
		URL: o.url, Token: o.token, RedisAddr: o.redisAddr,
		FlushInterval: o.flushIntv, FlushBytes: int64(o.flushBytes),
		MessageSize: int(o.messageSize), Topics: o.topics, Partitions: o.partitions,
		Producers: o.producers, Keys: o.keys, Groups: o.groups, Consumers: o.consumers,
		Rate: o.rate, Duration: o.duration, Warmup: o.warmup, Drain: o.drain,
		CatchUpReaders: o.catchUpReaders, CatchUpFetchBytes: int(o.catchUpFetch),
		AckBuffered: o.ack == "buffered", JSON: o.format == "json",
		Linger: o.linger, BatchBytes: int(o.batchBytes), InFlight: o.inFlight, BufferBytes: int64(o.bufferBytes),
		KeepTopics: o.keepTopics,
	}, nil
}

func runBench(ctx context.Context, stdout, stderr io.Writer, o benchOptions) error {
	cfg, err := o.config()
	if err != nil {
		return err
	}
	if o.local {
		env, err := startBenchLocal(ctx, stderr, o.nodeBinary, o.localDir, o.redisFsync, o.nodeProfile != "", o.nodeFlags())
		if err != nil {
			return err
		}
		defer env.Close()
		env.Configure(&cfg)
		if o.nodeProfile != "" {
			stop, err := env.ProfileNode(ctx, o.nodeProfile, o.warmup, o.duration)
			if err != nil {
				return err
			}
			defer func() {
				if perr := stop(); perr != nil {
					fmt.Fprintf(stderr, "node CPU profile: %v\n", perr)
				}
			}()
		}
	}
	progress, done := newProgressPrinter(stderr, o.warmup, o.duration)
	cfg.Progress = progress
	res, err := bench.RunMamba(ctx, cfg)
	done()
	if err != nil {
		return err
	}
	if o.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return bench.WriteMambaReport(stdout, res)
}

// nodeFlags are the mamba serve flags of a --local node.
func (o benchOptions) nodeFlags() []string {
	return append([]string{
		"--flush-interval", o.flushIntv.String(),
		"--flush-bytes", fmt.Sprint(int64(o.flushBytes)),
	}, o.nodeArgs...)
}

func startBenchLocal(ctx context.Context, log io.Writer, binFlag, dir, fsync string, pprof bool, nodeFlags []string) (*bench.Local, error) {
	bin, err := nodeBinary(binFlag)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(log, "starting MinIO, Redis and a node on loopback ...")
	return bench.StartLocal(ctx, bench.LocalOptions{
		Binary: bin, Dir: dir, RedisFsync: fsync, NodeArgs: nodeFlags, Pprof: pprof,
	})
}

// newProgressPrinter returns the callback of a live progress line on w:
// rewritten in place on a terminal, one line every five seconds
// otherwise. done ends the line.
func newProgressPrinter(w io.Writer, warmup, duration time.Duration) (func(bench.Progress), func()) {
	f, ok := w.(*os.File)
	terminal := ok && term.IsTerminal(int(f.Fd()))
	var mu sync.Mutex
	var last time.Duration
	printed := false
	progress := func(p bench.Progress) {
		mu.Lock()
		defer mu.Unlock()
		line := bench.ProgressLine(p, min(max(p.Elapsed-warmup, 0), duration))
		switch {
		case terminal:
			fmt.Fprintf(w, "\r\033[K%s", line)
			printed = true
		case p.Elapsed-last >= 5*time.Second || last == 0:
			fmt.Fprintln(w, line)
			last = p.Elapsed
		}
	}
	done := func() {
		mu.Lock()
		defer mu.Unlock()
		if printed {
			fmt.Fprintln(w)
		}
	}
	return progress, done
}
