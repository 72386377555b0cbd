package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/ingest/httpapi"
	"github.com/mambamq/mamba/internal/cliflag"
	"github.com/mambamq/mamba/internal/metrics"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/storeurl"
	"github.com/mambamq/mamba/recovery"
	"github.com/mambamq/mamba/tiering"
)

type serveOptions struct {
	// encryptionKeyFile is --encryption-key-file: the keyring that seals
	// the bucket's objects (empty: MAMBA_ENCRYPTION_KEY, else none).
	encryptionKeyFile string
	listen            string
	redisURL          string
	redisTLS          redisTLSOptions
	bucket            string
	nodeID            string
	keyPrefix         string
	flushInterval     time.Duration
	flushBytes        cliflag.ByteSize
	maxBuffered       cliflag.ByteSize
	memoryBudget      cliflag.ByteSize
	uploads           int
	cacheBytes        cliflag.ByteSize
	readGapBytes      cliflag.ByteSize
	readMaxBytes      cliflag.ByteSize
	readConcurrency   int
	readAheadBytes    cliflag.ByteSize
	catchUpBytes      cliflag.ByteSize
	maxRecordBytes    cliflag.ByteSize
	maxRequestBytes   cliflag.ByteSize
	bodyTimeout       time.Duration
	writeTimeout      time.Duration
	dedupWindow       time.Duration
	maxCommitAge      time.Duration
	maxWait           time.Duration
	maxLongPolls      int
	codec             string
	shutdownTimeout   time.Duration
	logLevel          string
	ckptInterval      time.Duration
	ckptKept          int
	pprofListen       string
	memoryLimit       string
	tiering           tieringOptions
	tls               tlsOptions
	// auth turns on bearer-token authentication (docs/security.md).
	auth bool
	// insecureNoAuth lets serve listen beyond loopback without auth.
	insecureNoAuth bool
	// bootstrapTokenFile holds an admin token the node creates in Redis
	// at start unless it exists (auth_bootstrap.go).
	bootstrapTokenFile string
	// quotas are the per-token quotas of tokens without their own; they
	// apply only with auth.
	quotas quotaFlags
}

// defaultServeOptions are the defaults of serve's flags.
func defaultServeOptions() serveOptions {
	return serveOptions{
		listen:          "127.0.0.1:8080",
		redisURL:        "redis://127.0.0.1:6379/0",
		nodeID:          defaultNodeID(),
		keyPrefix:       metadata.DefaultPrefix,
		flushInterval:   ingest.DefaultFlushInterval,
		flushBytes:      ingest.DefaultFlushBytes,
		uploads:         ingest.DefaultUploadConcurrency,
		readGapBytes:    ingest.DefaultReadGapBytes,
		readMaxBytes:    ingest.DefaultReadMaxBytes,
		readConcurrency: ingest.DefaultReadConcurrency,
		readAheadBytes:  ingest.DefaultReadAheadBytes,
		maxRecordBytes:  ingest.DefaultMaxRecordBytes,
		maxRequestBytes: cliflag.ByteSize(httpapi.DefaultMaxRequestBytes),
		bodyTimeout:     httpapi.DefaultBodyReadTimeout,
		writeTimeout:    ingest.DefaultWriteTimeout,
		dedupWindow:     metadata.DefaultDedupWindow,
		maxCommitAge:    metadata.MaxCommitAge,
		maxWait:         ingest.DefaultMaxWait,
		maxLongPolls:    ingest.DefaultMaxLongPolls,
		codec:           "none",
		shutdownTimeout: 30 * time.Second,
		logLevel:        "info",
		ckptInterval:    recovery.DefaultCheckpointInterval,
		ckptKept:        recovery.DefaultCheckpointsKept,
		memoryLimit:     "auto",
		tiering:         defaultTieringOptions(),
		quotas:          defaultQuotaFlags(),
	}
}

func newServeCmd() *cobra.Command {
	o := defaultServeOptions()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an ingest node",
		Long: `Run an ingest node: the HTTP API on --listen, chunks in the bucket named by
--bucket, offsets and the chunk index in the Redis at --redis.

Every flag can also be set with the environment variable shown beside it.
Nodes are stateless: run as many as you like against the same bucket and
Redis, each with its own --node-id. On SIGTERM or SIGINT a node stops taking
records, flushes and answers everything it accepted, writes a last metadata
checkpoint if it holds the checkpoint lease, then exits.

With --tls-cert and --tls-key the API is HTTPS only (TLS 1.2 or later), the
certificate reloaded when its files change; --tls-client-ca also requires
client certificates. With --auth every request but /healthz and /readyz
needs an API token (Authorization: Bearer) with the scope its route needs;
create the first admin token with mamba auth token create --redis. Without
--auth (the default) anyone reaching --listen can do everything, so serve
refuses a --listen other machines can reach (not loopback) unless --auth or
--insecure-no-auth is given: see docs/security.md.

Every --checkpoint-interval one node (whichever holds a lease in Redis)
writes a checkpoint of the metadata to checkpoints/ in the bucket, from
which mamba restore rebuilds Redis.

Cost on AWS S3 (PUT $0.005 per 1,000): a busy node makes one PUT per flush,
at most 1/--flush-interval plus (ingest MiB/s)/--flush-bytes PUTs a second.
At the defaults (250ms, 8MiB) that is at most 345,600 PUTs ($1.73) a day
for light traffic, plus one PUT per 8 MiB ingested; a node that receives
nothing makes none.`,
		Example: `  mamba serve --bucket 's3://mamba?endpoint=http://127.0.0.1:9000' --redis redis://127.0.0.1:6379/0
  MAMBA_BUCKET=file:///var/lib/mamba MAMBA_NODE_ID=node-a mamba serve`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return cliflag.BindEnv(cmd.Flags())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	addNodeFlags(f, &o)
	f.StringVar(&o.redisURL, "redis", o.redisURL, "Redis URL (redis://[user:password@]host:port/db, rediss:// for TLS)")
	addRedisTLSFlags(f, &o.redisTLS)
	f.StringVar(&o.bucket, "bucket", "", "bucket URL: s3://bucket/prefix?endpoint=..., file:///dir or mem:// (see docs/objectstore.md); required")
	f.StringVar(&o.nodeID, "node-id", o.nodeID, "this node's id in chunk names, unique per node (default: the host name)")
	f.StringVar(&o.keyPrefix, "key-prefix", o.keyPrefix, "prefix of every Redis key, to share one Redis between deployments")
	f.Var(&o.flushBytes, "flush-bytes", "seal a chunk once this many bytes are buffered")
	f.IntVar(&o.uploads, "upload-concurrency", o.uploads, "chunk uploads in flight at once")
	f.Var(&o.maxRecordBytes, "max-record-bytes", "largest record (key, value and headers); larger ones get 413")
	f.Var(&o.maxRequestBytes, "max-request-bytes", "largest produce request body; larger ones get 413")
	f.DurationVar(&o.bodyTimeout, "body-read-timeout", o.bodyTimeout, "longest a request body may go without a byte arriving; then 408")
	f.DurationVar(&o.dedupWindow, "dedup-window", o.dedupWindow, "how long an Idempotency-Key is remembered")
	f.DurationVar(&o.maxWait, "max-wait", o.maxWait, "longest long-poll a fetch may ask for")
	f.IntVar(&o.maxLongPolls, "max-long-polls", o.maxLongPolls, "fetches that may wait for new records at once; more get 429")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", o.shutdownTimeout, "how long a draining node may take to answer what it accepted")
	f.DurationVar(&o.ckptInterval, "checkpoint-interval", o.ckptInterval, "how often a metadata checkpoint is written to the bucket (by one node at a time); 0 disables checkpoints")
	f.IntVar(&o.ckptKept, "checkpoints-kept", o.ckptKept, "how many of the newest checkpoints stay in the bucket")
	f.StringVar(&o.pprofListen, "pprof-listen", "", "loopback address (for example 127.0.0.1:6060) serving net/http/pprof; empty disables it")
	f.BoolVar(&o.insecureNoAuth, "insecure-no-auth", false, "serve a --listen other machines can reach without --auth: anyone who reaches it can do everything; only on a network you trust")
	f.StringVar(&o.memoryLimit, "memory-limit", o.memoryLimit, "soft limit of the Go heap: auto (--memory-budget + 64MiB), off, or a size; a GOMEMLIMIT variable wins")
	cliflag.DocumentEnv(f)
	return cmd
}

// addNodeFlags declares the node settings that serve and dev share.
func addNodeFlags(f *pflag.FlagSet, o *serveOptions) {
	f.StringVar(&o.listen, "listen", o.listen, "address for the HTTP API")
	addEncryptionKeyFlag(f, &o.encryptionKeyFile)
	f.DurationVar(&o.flushInterval, "flush-interval", o.flushInterval, "seal a chunk once its oldest record is this old")
	f.StringVar(&o.codec, "codec", o.codec, "batch compression: none or zstd")
	f.StringVar(&o.logLevel, "log-level", o.logLevel, "debug, info, warn or error")
	f.Var(&o.readGapBytes, "read-gap-bytes", "largest gap between two batches of a chunk that a fetch reads through to get both with one ranged GET")
	f.Var(&o.readMaxBytes, "read-max-bytes", "largest ranged GET a fetch makes when merging batches")
	f.IntVar(&o.readConcurrency, "read-concurrency", o.readConcurrency, "ranged GETs one fetch runs at once")
	f.Var(&o.readAheadBytes, "read-ahead-bytes", "batch bytes a catch-up fetch (far behind, missing the caches) reads past its own, into the catch-up cache")
	f.Var(&o.catchUpBytes, "catchup-cache-bytes", "memory for batches catch-up fetches read from the bucket, apart from --cache-bytes; at least --read-ahead-bytes (default: a twelfth of --memory-budget, 64MiB)")
	f.Var(&o.memoryBudget, "memory-budget", "memory the node holds for requests and caches: buffered records, request bodies, decoding, fetch responses, long-polls and both caches reserve from it, and past it requests get 429 (default: 4/3 of --max-buffered-bytes + --cache-bytes + --catchup-cache-bytes, 768MiB)")
	f.Var(&o.maxBuffered, "max-buffered-bytes", "unacknowledged bytes a node holds before answering 429 (default: a third of --memory-budget, 256MiB)")
	f.Var(&o.cacheBytes, "cache-bytes", "memory for recently written and read batches (default: a third of --memory-budget, 256MiB)")
	// The collector marks only chunks past the commit age limit, so dev needs
	// it too for garbage collection to be seen working in minutes.
	f.DurationVar(&o.writeTimeout, "write-timeout", o.writeTimeout, "how long a chunk's PUT and commit are retried before producers get 503")
	f.DurationVar(&o.maxCommitAge, "max-commit-age", o.maxCommitAge,
		"the oldest a chunk may be when its commit reaches Redis; garbage collection deletes uncommitted chunks only past it (same on every node)")
	addTieringFlags(f, &o.tiering)
	addTLSFlags(f, &o.tls)
	f.BoolVar(&o.auth, "auth", o.auth, "require an API token (Authorization: Bearer) with the right scope on every request but /healthz and /readyz; see docs/security.md")
	f.StringVar(&o.bootstrapTokenFile, "bootstrap-token-file", "", "with --auth: a file holding a token made by mamba auth token generate, created in Redis as an admin token at start unless it exists (for deployments, and after a restore)")
	addQuotaFlags(f, &o.quotas)
}

var nodeIDChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func defaultNodeID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "node"
	}
	h = nodeIDChars.ReplaceAllString(h, "-")
	if len(h) > 64 {
		h = h[:64]
	}
	return h
}

func parseCodec(s string) (chunk.Codec, error) {
	switch strings.ToLower(s) {
	case "none", "":
		return chunk.CodecNone, nil
	case "zstd":
		return chunk.CodecZstd, nil
	}
	return 0, fmt.Errorf("--codec %q: want none or zstd", s)
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func runServe(ctx context.Context, o serveOptions) error {
	log, err := newLogger(o.logLevel)
	if err != nil {
		return err
	}
	if err := o.tls.check(); err != nil {
		return err
	}
	if err := setMemoryLimit(o, log); err != nil {
		return err
	}
	if o.bucket == "" {
		return errors.New("--bucket (or MAMBA_BUCKET) is required, for example s3://mamba?endpoint=http://127.0.0.1:9000")
	}
	if err := checkListenAuth(o); err != nil {
		return err
	}
	rdb, err := openRedis(o.redisURL, o.redisTLS, log)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store, err := storeurl.Open(ctx, o.bucket)
	if err != nil {
		return err
	}
	defer objectstore.Close(store)
	if o.pprofListen != "" {
		stop, err := servePprof(o.pprofListen, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	return serveWith(ctx, o, log, rdb, store, nil)
}

// checkListenAuth refuses a --listen that other machines can reach
// (anything but a loopback address or localhost) without --auth, unless
// --insecure-no-auth says that is meant.
func checkListenAuth(o serveOptions) error {
	if o.auth && o.insecureNoAuth {
		return errors.New("--auth and --insecure-no-auth contradict each other: give one")
	}
	if o.auth || o.insecureNoAuth || isLoopbackListen(o.listen) {
		return nil
	}
	return fmt.Errorf("--listen %s can be reached from other machines and authentication is off, so anyone reaching it could read, write and delete everything: "+
		"give --auth (API tokens; see docs/security.md), or --insecure-no-auth to serve without authentication on a network you trust", o.listen)
}

// isLoopbackListen reports whether a listen address is only reachable
// from this machine: a loopback IP or localhost (":8080" and "0.0.0.0"
// are every interface).
func isLoopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// memoryHeadroom is what the auto memory limit allows on top of the
// node's memory budget: what the budget does not count (connections,
// goroutine stacks, the runtime, the Redis and S3 clients).
const memoryHeadroom = 64 << 20

// setMemoryLimit sets the Go heap's soft limit. Without one the heap
// grows to about twice the live data before a collection, so a node
// under sustained overload, its budget full, would reach about twice the
// budget of RSS; with it, the collector runs harder instead (measured in
// docs/benchmarks.md).
func setMemoryLimit(o serveOptions, log *slog.Logger) error {
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok && v != "" {
		log.Info("memory limit from GOMEMLIMIT", "limit", v)
		return nil
	}
	var limit int64
	switch o.memoryLimit {
	case "off":
		return nil
	case "auto", "":
		limit = o.nodeConfig(chunk.CodecNone).Budget() + memoryHeadroom
	default:
		var b cliflag.ByteSize
		if err := b.Set(o.memoryLimit); err != nil || b <= 0 {
			return fmt.Errorf("--memory-limit %q: want auto, off or a size such as 1GiB", o.memoryLimit)
		}
		limit = int64(b)
	}
	debug.SetMemoryLimit(limit)
	log.Info("memory limit", "bytes", limit)
	return nil
}

// nodeConfig is the ingest node's configuration the flags give. Sizes
// left zero (the memory budget and its shares) are derived by the node
// (ingest.Config.MemoryBudget).
func (o serveOptions) nodeConfig(codec chunk.Codec) ingest.Config {
	return ingest.Config{
		NodeID:            o.nodeID,
		FlushBytes:        int(o.flushBytes),
		FlushInterval:     o.flushInterval,
		MaxBufferedBytes:  int64(o.maxBuffered),
		MemoryBudget:      int64(o.memoryBudget),
		UploadConcurrency: o.uploads,
		CacheBytes:        int64(o.cacheBytes),
		ReadGapBytes:      int64(o.readGapBytes),
		ReadMaxBytes:      int64(o.readMaxBytes),
		ReadConcurrency:   o.readConcurrency,
		ReadAheadBytes:    int64(o.readAheadBytes),
		CatchUpCacheBytes: int64(o.catchUpBytes),
		MaxRecordBytes:    int(o.maxRecordBytes),
		WriteTimeout:      o.writeTimeout,
		MaxWait:           o.maxWait,
		MaxLongPolls:      o.maxLongPolls,
		Codec:             codec,
	}
}

// servePprof serves net/http/pprof on its own listener, apart from the
// API, and only on a loopback address: profiles reveal memory contents.
// The returned function stops it.
func servePprof(addr string, log *slog.Logger) (func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--pprof-listen %q: want a loopback address such as 127.0.0.1:6060", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("serving pprof", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// serveWith runs a node with o's settings on the given Redis and bucket
// until it is signalled and has drained. onListen, if not nil, is told the
// API's address once it listens.
func serveWith(ctx context.Context, o serveOptions, log *slog.Logger, rdb redis.UniversalClient, store objectstore.Store, onListen func(addr string)) error {
	codec, err := parseCodec(o.codec)
	if err != nil {
		return err
	}
	tlsCfg, err := o.tls.serverConfig(log)
	if err != nil {
		return err
	}
	bootstrap, err := bootstrapToken(o)
	if err != nil {
		return err
	}
	cfg := o.nodeConfig(codec)
	if err := cfg.Validate(); err != nil {
		return err
	}
	if o.ckptInterval < 0 {
		return fmt.Errorf("--checkpoint-interval %v is negative", o.ckptInterval)
	}
	ckptCfg := recovery.CheckpointConfig{NodeID: o.nodeID, Interval: o.ckptInterval, Keep: o.ckptKept}
	if o.ckptInterval > 0 {
		if err := ckptCfg.Validate(); err != nil {
			return err
		}
	}
	meta := metadata.New(rdb, metadata.Options{Prefix: o.keyPrefix, DedupWindow: o.dedupWindow, MaxCommitAge: o.maxCommitAge})

	if err := ensureBootstrapToken(ctx, bootstrap, meta, log); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	metrics.RegisterAll(reg, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The node and the checkpointer share one instrumented store: every
	// bucket call of the process is in mamba_objectstore_*. Encryption
	// sits above it, so the metrics count the bytes and requests the
	// store really serves.
	store, ring, err := sealStore(bucket.Instrument(store, reg), o.encryptionKeyFile)
	if err != nil {
		return err
	}
	log.Info("encryption at rest", "keys", describeEncryption(ring))
	node, err := ingest.New(cfg, meta, store, reg, log)
	if err != nil {
		return err
	}
	var ckpt *recovery.Checkpointer
	if o.ckptInterval > 0 {
		if ckpt, err = recovery.NewCheckpointer(ckptCfg, meta, store, reg, log); err != nil {
			return err
		}
	}
	o.tiering.gc.checkpointInterval = o.ckptInterval // the collector's grace and checkpoint gate follow it
	jobs, err := tieringJobs(o.tiering, o.nodeID, meta, store, reg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	hopts := httpapi.Options{MaxRequestBytes: int64(o.maxRequestBytes), BodyReadTimeout: o.bodyTimeout,
		Quotas: o.quotas.quotas(), DedupWindow: o.dedupWindow, Budget: node.Budget()}
	if err := hopts.Validate(); err != nil {
		return err
	}
	if o.auth {
		hopts.Tokens = meta
	} else {
		log.Warn("authentication is off: anyone who reaches the API can do everything (mamba serve --auth turns it on)", "listen", o.listen)
		if o.quotas != defaultQuotaFlags() {
			log.Warn("the --quota-* flags apply to API tokens, so not while authentication is off")
		}
	}
	srv := &http.Server{
		Handler:           httpapi.NewHandler(node, hopts, reg, reg, log),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       httpapi.DefaultMaxBodyTime,
		// A response may wait for its body (up to the whole-body limit,
		// past which it is answered 408), then for a flush and its
		// retries, or for a long-poll. The deadline runs from the end of
		// the request's headers: shorter, and a body trickling to the
		// limit would get a closed connection instead of its 408.
		WriteTimeout: httpapi.DefaultMaxBodyTime + max(o.maxWait, o.writeTimeout+o.flushInterval) + time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:    tlsCfg, // nil: plain HTTP
	}
	if onListen != nil {
		onListen(ln.Addr().String())
	}
	return serve(ctx, log, node, ckpt, jobs, srv, ln, o.shutdownTimeout)
}

// serve runs the node, the checkpointer (if not nil), the background jobs
// and the HTTP server until SIGTERM or SIGINT (or ctx ends), then drains:
// the node stops taking records and answers all it accepted while the
// server finishes the requests in progress; once the node has drained, the
// checkpointer writes a last checkpoint, which holds everything the node
// committed, and the jobs give up their leases.
func serve(ctx context.Context, log *slog.Logger, node *ingest.Node, ckpt *recovery.Checkpointer, jobs []*tiering.Job, srv *http.Server, ln net.Listener, drain time.Duration) error {
	sigCtx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()

	errs := make(chan error, 2)
	go func() { errs <- node.Run(runCtx) }()
	ckptDone := make(chan struct{})
	go func() {
		defer close(ckptDone)
		if ckpt != nil {
			_ = ckpt.Run(runCtx) // logs its failures and retries; ends with runCtx
		}
	}()
	var jobsDone sync.WaitGroup
	for _, j := range jobs {
		jobsDone.Go(func() { _ = j.Run(runCtx) }) // logs its failures; ends with runCtx
	}
	// Serve sets srv.TLSConfig up for HTTP/2 (even without TLS): read it
	// before.
	useTLS, clientCerts := srv.TLSConfig != nil, srv.TLSConfig != nil && srv.TLSConfig.ClientCAs != nil
	go func() {
		var err error
		if useTLS {
			err = srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig.GetCertificate
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errs <- err
		}
	}()
	log.Info("serving", "addr", ln.Addr().String(), "tls", useTLS, "client_certificates", clientCerts)
	var runErr error
	select {
	case <-sigCtx.Done():
		log.Info("draining")
	case runErr = <-errs:
		log.Error("stopping", "err", runErr)
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := node.Close(dctx); err != nil {
			log.Error("drain node", "err", err)
		}
		if ckpt != nil {
			if err := ckpt.Close(dctx); err != nil {
				log.Error("final checkpoint", "err", err)
			}
		}
	})
	wg.Go(func() {
		if err := srv.Shutdown(dctx); err != nil {
			log.Error("shut down HTTP server", "err", err)
		}
	})
	wg.Wait()
	cancelRun()
	<-ckptDone
	jobsDone.Wait()
	log.Info("stopped")
	return runErr
}
