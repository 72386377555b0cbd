package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/cliflag"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/storeurl"
	"github.com/mambamq/mamba/recovery"
)

type restoreOptions struct {
	redisURL    string
	redisTLS    redisTLSOptions
	bucket      string
	keyPrefix   string
	force       bool
	dedupWindow time.Duration
	// maxCommitAge is serve's --max-commit-age: how far before the
	// checkpoint replay starts.
	maxCommitAge time.Duration
	concurrency  int
	// allowMissingChunks is --allow-missing-chunks: drop the index
	// entries up to chunks the checkpoint names that the bucket lacks,
	// instead of failing.
	allowMissingChunks bool
	// encryptionKeyFile is --encryption-key-file: the keys that open a
	// sealed bucket (empty: MAMBA_ENCRYPTION_KEY, else none).
	encryptionKeyFile string
}

// allowMissingChunksUsage is the help of --allow-missing-chunks, on
// restore, dr failover and dev.
const allowMissingChunksUsage = "when the checkpoint names chunks the bucket does not hold, drop every index entry up to theirs " +
	"(their records are lost) instead of failing; only for chunks gone for good, never for a replica still catching up"

// addAllowMissingChunksFlag adds --allow-missing-chunks.
func addAllowMissingChunksFlag(f *pflag.FlagSet, v *bool) {
	f.BoolVar(v, "allow-missing-chunks", false, allowMissingChunksUsage)
}

func newRestoreCmd() *cobra.Command {
	o := restoreOptions{
		redisURL:     "redis://127.0.0.1:6379/0",
		keyPrefix:    metadata.DefaultPrefix,
		dedupWindow:  metadata.DefaultDedupWindow,
		maxCommitAge: metadata.MaxCommitAge,
		concurrency:  recovery.DefaultRestoreConcurrency,
	}
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Rebuild Redis from the bucket",
		Long: `Rebuild Mamba's metadata in an empty Redis from the bucket: load the newest
metadata checkpoint that decodes, then index the chunks written since.

Run it with no node serving the Redis, then start the nodes. Records
committed before the checkpoint keep their offsets; records committed after
it are all indexed once, but may get different offsets than before. Consumer
group offsets are those of the checkpoint.

It refuses a Redis that holds keys under --key-prefix; --force deletes those
keys first. It stops, before changing Redis, when the checkpoint names
chunks the bucket does not hold (a replica still catching up: wait and run
again); --allow-missing-chunks drops their index entries instead, losing
those records. Every flag can also be set with the environment variable shown
beside it.`,
		Example: `  mamba restore --bucket 's3://mamba?endpoint=http://127.0.0.1:9000' --redis redis://127.0.0.1:6379/0
  MAMBA_BUCKET=s3://mamba-replica MAMBA_REDIS=redis://redis-dr:6379/0 mamba restore --force`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return cliflag.BindEnv(cmd.Flags())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRestore(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.redisURL, "redis", o.redisURL, "Redis URL to restore into (redis://[user:password@]host:port/db, rediss:// for TLS)")
	addRedisTLSFlags(f, &o.redisTLS)
	f.StringVar(&o.bucket, "bucket", "", "bucket URL to restore from: s3://bucket/prefix?endpoint=..., file:///dir (see docs/objectstore.md); required")
	f.StringVar(&o.keyPrefix, "key-prefix", o.keyPrefix, "prefix of every Redis key, as given to mamba serve")
	f.BoolVar(&o.force, "force", false, "delete every key under --key-prefix before restoring, instead of refusing a Redis that has some")
	f.DurationVar(&o.dedupWindow, "dedup-window", o.dedupWindow, "how long idempotency keys of replayed records are remembered, as given to mamba serve")
	f.DurationVar(&o.maxCommitAge, "max-commit-age", o.maxCommitAge, "as given to mamba serve: chunks this much older than the checkpoint are replayed too")
	f.IntVar(&o.concurrency, "concurrency", o.concurrency, "chunk directories read from the bucket at once")
	addAllowMissingChunksFlag(f, &o.allowMissingChunks)
	addEncryptionKeyFlag(f, &o.encryptionKeyFile)
	cliflag.DocumentEnv(f)
	return cmd
}

func runRestore(ctx context.Context, o restoreOptions, stdout, stderr io.Writer) error {
	sum, err := restoreBucket(ctx, o, stderr)
	if sum != nil {
		printSummary(stdout, *sum)
	}
	return err
}

// errRefused marks a restore that did not start: bad options, an
// unreachable store or Redis, or a Redis that is not empty.
var errRefused = errors.New("restore refused")

type refusedError struct{ err error }

func (e refusedError) Error() string       { return e.err.Error() }
func (e refusedError) Unwrap() []error     { return []error{e.err, errRefused} }
func refused(err error) error              { return refusedError{err} }
func refusedf(f string, args ...any) error { return refused(fmt.Errorf(f, args...)) }

// openBucket opens the store at a bucket URL for a one-shot command,
// through bucket.Instrument like every store of the product (the command
// has no metrics endpoint, so nothing is registered) and the keyring of
// keyFile (see sealStore).
func openBucket(ctx context.Context, rawURL, keyFile string) (objectstore.Store, error) {
	store, err := storeurl.Open(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	sealed, _, err := sealStore(bucket.Instrument(store, nil), keyFile)
	if err != nil {
		objectstore.Close(store)
		return nil, err
	}
	return sealed, nil
}

// restoreBucket rebuilds the Redis at o.redisURL from o.bucket with
// recovery.Restore, showing progress on stderr. It is the restore of both
// mamba restore and mamba dr failover. The summary is nil when the restore
// did not start (the error then wraps errRefused).
func restoreBucket(ctx context.Context, o restoreOptions, stderr io.Writer) (*recovery.RestoreSummary, error) {
	if o.bucket == "" {
		return nil, refusedf("--bucket (or MAMBA_BUCKET) is required, for example s3://mamba?endpoint=http://127.0.0.1:9000")
	}
	if o.concurrency < 1 || o.concurrency > 1024 {
		return nil, refusedf("--concurrency %d: want 1 to 1024", o.concurrency)
	}
	rdb, err := openRedis(o.redisURL, o.redisTLS, nil)
	if err != nil {
		return nil, refused(err)
	}
	defer rdb.Close()
	store, err := openBucket(ctx, o.bucket, o.encryptionKeyFile)
	if err != nil {
		return nil, refused(err)
	}
	defer objectstore.Close(store)
	meta := metadata.New(rdb, metadata.Options{Prefix: o.keyPrefix, DedupWindow: o.dedupWindow, MaxCommitAge: o.maxCommitAge})
	if err := meta.Ping(ctx); err != nil {
		return nil, refusedf("redis: %w", err)
	}

	prog := newRestoreProgress(stderr)
	sum, err := recovery.Restore(ctx, store, meta, recovery.RestoreOptions{
		Force:              o.force,
		Concurrency:        o.concurrency,
		Progress:           prog.update,
		AllowMissingChunks: o.allowMissingChunks,
	})
	prog.finish()
	if errors.Is(err, metadata.ErrNotEmpty) {
		return nil, refusedf("the Redis at --redis already holds keys under prefix %q: restore only fills an empty Redis; "+
			"stop every node and run again with --force to delete those keys first", o.keyPrefix)
	}
	if errors.Is(err, recovery.ErrMissingChunks) {
		return nil, refusedf("restore stopped before changing Redis: %w", err)
	}
	if err != nil {
		return &sum, fmt.Errorf("restore failed, leaving Redis partly restored (run again with --force): %w", err)
	}
	return &sum, nil
}

func printSummary(w io.Writer, s recovery.RestoreSummary) {
	if s.KeysWiped > 0 {
		fmt.Fprintf(w, "deleted %d existing keys (--force)\n", s.KeysWiped)
	}
	for _, c := range s.CorruptCheckpoints {
		fmt.Fprintf(w, "skipped corrupt checkpoint %s: %v\n", c.Key, c.Err)
	}
	if s.Checkpoint != "" {
		fmt.Fprintf(w, "checkpoint:  %s (taken %s)\n", s.Checkpoint, s.CheckpointTime.UTC().Format(time.RFC3339Nano))
	} else {
		fmt.Fprintln(w, "checkpoint:  none found; replaying every chunk")
	}
	if s.ChunksMissing > 0 {
		fmt.Fprintf(w, "missing:     %d chunks named by the checkpoint are not in the bucket; %d index entries up to theirs dropped (--allow-missing-chunks)\n",
			s.ChunksMissing, s.EntriesDropped)
	}
	since := "the beginning"
	if !s.Since.IsZero() {
		since = s.Since.UTC().Format(time.RFC3339Nano)
	}
	fmt.Fprintf(w, "chunks:      %d listed, %d since %s: %d replayed, %d already indexed or only of deleted topics, %d unreadable\n",
		s.ChunksListed, s.ChunksScanned, since, s.ChunksReplayed, s.ChunksSkipped, s.ChunksUnreadable)
	fmt.Fprintf(w, "indexed:     %d records in %d batches; %d duplicate batches dropped by idempotency key, %d batches skipped\n",
		s.RecordsIndexed, s.BatchesIndexed, s.BatchesDuplicate, s.BatchesSkipped)
	fmt.Fprintf(w, "topics:      %d (%d created from the bucket, %d replaced by a newer incarnation)\n",
		s.Topics, s.TopicsCreated, s.TopicsReplaced)
	for _, warning := range s.Warnings {
		fmt.Fprintf(w, "warning:     %s\n", warning)
	}
	fmt.Fprintf(w, "took:        %v\n", s.Duration.Round(time.Millisecond))
}

// restoreProgress shows a restore's progress on stderr: a bar on a
// terminal, otherwise a line per phase and per tenth of the replay.
type restoreProgress struct {
	w         io.Writer
	terminal  bool
	bar       *progressbar.ProgressBar
	phase     string
	lastTenth int
	started   time.Time
}

func newRestoreProgress(w io.Writer) *restoreProgress {
	f, ok := w.(*os.File)
	return &restoreProgress{w: w, terminal: ok && term.IsTerminal(int(f.Fd())), lastTenth: -1, started: time.Now()}
}

var phaseNames = map[string]string{
	recovery.PhaseCheckpoint: "loading the newest checkpoint",
	recovery.PhaseList:       "listing topic configs and chunks",
	recovery.PhaseReplay:     "replaying chunks",
}

func (p *restoreProgress) update(pr recovery.Progress) {
	if pr.Phase != p.phase {
		p.phase = pr.Phase
		if p.terminal && pr.Phase == recovery.PhaseReplay {
			p.bar = progressbar.NewOptions(pr.Total,
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription("replaying chunks"),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionFullWidth(),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }))
		} else if !p.terminal || p.bar == nil {
			fmt.Fprintf(p.w, "%s...\n", phaseNames[pr.Phase])
		}
	}
	if pr.Phase != recovery.PhaseReplay {
		return
	}
	if p.bar != nil {
		_ = p.bar.Set(pr.Done)
		return
	}
	if pr.Total > 0 {
		if tenth := pr.Done * 10 / pr.Total; tenth > p.lastTenth {
			p.lastTenth = tenth
			fmt.Fprintf(p.w, "replayed %d of %d chunks (%d%%) after %v\n", pr.Done, pr.Total, tenth*10, time.Since(p.started).Round(time.Millisecond))
		}
	}
}

func (p *restoreProgress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
