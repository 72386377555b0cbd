package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/cliflag"
	"github.com/mambamq/mamba/internal/embedredis"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore/filestore"
	"github.com/mambamq/mamba/recovery"
)

type devOptions struct {
	serveOptions
	dir       string
	redisAddr string
	// allowMissingChunks is passed to the restore at start
	// (--allow-missing-chunks).
	allowMissingChunks bool
}

func newDevCmd() *cobra.Command {
	o := devOptions{serveOptions: defaultServeOptions(), dir: "mamba-data", redisAddr: "127.0.0.1:0"}
	// A development node answers fast and checkpoints often, so that a
	// restart (even kill -9) loses at most a second of group offsets.
	o.nodeID = "dev"
	o.flushInterval = 20 * time.Millisecond
	o.ckptInterval = time.Second
	o.shutdownTimeout = 10 * time.Second
	o.logLevel = "warn"
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run Mamba on this machine with no servers to install",
		Long: `Run a complete Mamba on this machine: the bucket is a local directory
(--dir) and the metadata lives in an embedded Redis-compatible server that
runs the same scripts as Redis, on loopback. Nothing else is needed.

At start the metadata is rebuilt from the directory (the same restore that
rebuilds Redis from a bucket), so topics, records and consumer group offsets
survive a restart, clean or kill -9. Group offsets committed in the last
--checkpoint-interval before a kill -9 may be lost. If the checkpoint names
chunks missing from the directory, dev does not start;
--allow-missing-chunks starts it without the records up to them.

With --auth the API wants API tokens, as mamba serve --auth does; dev
creates an admin token at start and prints it (tokens live in the embedded
Redis and end with the process).

This is for development and tests: one process, one disk, no replication.
Run mamba serve against MinIO or S3 and Redis for anything that matters.`,
		Example: `  mamba dev
  mamba dev --dir /tmp/mamba --listen 127.0.0.1:9092`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return cliflag.BindEnv(cmd.Flags())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", o.dir, "directory holding the bucket (bucket/) and nothing else")
	addNodeFlags(f, &o.serveOptions)
	f.StringVar(&o.redisAddr, "redis-listen", o.redisAddr, "loopback address of the embedded Redis-compatible server (port 0 picks a free one)")
	f.DurationVar(&o.ckptInterval, "checkpoint-interval", o.ckptInterval, "how often metadata is checkpointed to the directory")
	addAllowMissingChunksFlag(f, &o.allowMissingChunks)
	cliflag.DocumentEnv(f)
	return cmd
}

func runDev(ctx context.Context, o devOptions) error {
	log, err := newLogger(o.logLevel)
	if err != nil {
		return err
	}
	if err := o.tls.check(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	unlock, err := lockDir(o.dir)
	if err != nil {
		return err
	}
	defer unlock()
	bucketDir := filepath.Join(o.dir, "bucket")
	store, err := filestore.Open(bucketDir)
	if err != nil {
		return err
	}
	defer store.Close()

	mr, err := embedredis.Start(o.redisAddr)
	if err != nil {
		return err
	}
	defer mr.Close()
	rdb := mr.Client
	meta := metadata.New(rdb, metadata.Options{Prefix: o.keyPrefix, DedupWindow: o.dedupWindow, MaxCommitAge: o.maxCommitAge})
	// serveWith instruments the store on the node's registry; the restore
	// before it goes through the wrapper too, with nowhere to report.
	sealed, _, err := sealStore(bucket.Instrument(store, nil), o.encryptionKeyFile)
	if err != nil {
		return err
	}
	sum, err := recovery.Restore(ctx, sealed, meta, recovery.RestoreOptions{Log: log, AllowMissingChunks: o.allowMissingChunks})
	if err != nil {
		return fmt.Errorf("rebuild metadata from %s: %w", bucketDir, err)
	}
	if sum.Topics > 0 {
		fmt.Fprintf(os.Stderr, "mamba dev: restored %d topics from %s (checkpoint %q, %d chunks replayed, %d records re-indexed) in %v\n",
			sum.Topics, bucketDir, sum.Checkpoint, sum.ChunksReplayed, sum.RecordsIndexed, sum.Duration.Round(time.Millisecond))
	}
	o.bucket = "file://" + bucketDir
	scheme, curl := "http", "curl -s"
	if o.tls.cert != "" {
		scheme, curl = "https", "curl -s --cacert CA.pem" // CA.pem: the CA that signed --tls-cert
	}
	if o.tls.clientCA != "" {
		curl += " --cert client.crt --key client.key"
	}
	tokenLine := ""
	if o.auth {
		tok, _, err := meta.CreateToken(ctx, "mamba dev", []string{metadata.ScopeAdmin})
		if err != nil {
			return fmt.Errorf("create the admin token: %w", err)
		}
		curl += " -H 'Authorization: Bearer " + tok + "'"
		tokenLine = "Admin token (export MAMBA_TOKEN=... for the CLI): " + tok + "\n\n"
	}
	return serveWith(ctx, o.serveOptions, log, rdb, store, func(addr string) {
		fmt.Fprintf(os.Stderr, `mamba dev: serving on %[4]s://%[1]s (data in %[2]s, embedded Redis on %[3]s)

  %[5]s -XPOST %[4]s://%[1]s/v1/topics -d '{"name":"orders","partitions":4}'
  %[5]s -XPOST %[4]s://%[1]s/v1/topics/orders/records -H 'Content-Type: application/json' \
    -d '{"records":[{"key":"customer-7","value":"hello"}]}'
  %[5]s '%[4]s://%[1]s/v1/topics/orders/partitions/1/records?offset=0'

%[6]sStop with Ctrl-C.
`, addr, o.dir, mr.Addr(), scheme, curl, tokenLine)
	})
}

// lockDir takes an exclusive lock on dir, so that two development servers
// never share one data directory.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another mamba dev", dir)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
