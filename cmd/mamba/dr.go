package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mambamq/mamba/internal/cliflag"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/envelope"
	"github.com/mambamq/mamba/recovery"
)

func newDRCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dr",
		Short: "Disaster recovery: watch the replica bucket, fail over to it",
		Long: `Disaster recovery across regions. The object store replicates the bucket
(MinIO bucket replication or S3 Cross-Region Replication, set up with the
scripts in deploy/replication); mamba dr status compares the bucket with its
replica, and mamba dr failover rebuilds a Redis in the second region from
the replica so that nodes there can serve. See docs/dr.md.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newDRStatusCmd(), newDRFailoverCmd())
	return cmd
}

// drBucket is one bucket in dr status's report.
type drBucket struct {
	URL string `json:"url"`
	recovery.BucketState
}

// drStatus is what dr status prints: recovery's report, with the buckets'
// URLs (the outer Source and Target hide the report's in JSON), and the
// check of the encryption keys when there are keys to check.
type drStatus struct {
	Source drBucket `json:"source"`
	Target drBucket `json:"target"`
	recovery.ReplicaReport
	Keys *drKeys `json:"keys,omitempty"`
}

// compareBuckets opens both buckets and compares them with
// recovery.CompareBuckets.
func compareBuckets(ctx context.Context, source, target string, withReplication bool) (drStatus, error) {
	var s drStatus
	// Comparing lists keys and sizes only: no object is opened, so no
	// encryption key is needed.
	src, err := openBucket(ctx, source, "")
	if err != nil {
		return s, fmt.Errorf("source: %w", err)
	}
	defer objectstore.Close(src)
	dst, err := openBucket(ctx, target, "")
	if err != nil {
		return s, fmt.Errorf("target: %w", err)
	}
	defer objectstore.Close(dst)
	r, err := recovery.CompareBuckets(ctx, src, dst, recovery.CompareOptions{ReplicationStatus: withReplication})
	if err != nil {
		return s, fmt.Errorf("compare %s with %s: %w", source, target, err)
	}
	return drStatus{
		Source:        drBucket{URL: source, BucketState: r.Source},
		Target:        drBucket{URL: target, BucketState: r.Target},
		ReplicaReport: r,
	}, nil
}

func printDRStatus(w io.Writer, s drStatus) {
	for _, b := range []struct {
		name string
		st   drBucket
	}{{"source", s.Source}, {"target", s.Target}} {
		fmt.Fprintf(w, "%s: %s\n", b.name, b.st.URL)
		if b.st.NewestChunk != "" {
			fmt.Fprintf(w, "  chunks:      %d, newest %s (%s)\n", b.st.Chunks, b.st.NewestChunk, b.st.NewestChunkTime.Format(time.RFC3339Nano))
		} else {
			fmt.Fprintln(w, "  chunks:      none")
		}
		if b.st.NewestCheckpoint != "" {
			fmt.Fprintf(w, "  checkpoints: %d, newest %s (%s)\n", b.st.Checkpoints, b.st.NewestCheckpoint, b.st.NewestCheckpointTime.Format(time.RFC3339Nano))
		} else {
			fmt.Fprintln(w, "  checkpoints: none")
		}
	}
	fmt.Fprintf(w, "lag:         %v between the newest chunks; %d chunks and %d checkpoints of the source newer than the target's newest\n",
		s.Lag(), s.ChunksNewer, s.CheckpointsNewer)
	fmt.Fprintf(w, "missing:     %d chunks and %d checkpoints of the source are not in the target\n", s.ChunksMissing, s.CheckpointsMissing)
	for _, r := range s.Replication {
		fmt.Fprintf(w, "replication: %s %s\n", r.Key, r.Status)
	}
	if k := s.Keys; k != nil {
		switch {
		case k.Error != "":
			fmt.Fprintf(w, "keys:        cannot open %s: %s\n", k.Checkpoint, k.Error)
		case k.KeyID != "":
			fmt.Fprintf(w, "keys:        open %s (sealed under key id %s)\n", k.Checkpoint, k.KeyID)
		case k.Checkpoint != "":
			fmt.Fprintf(w, "keys:        %s is in the clear\n", k.Checkpoint)
		default:
			fmt.Fprintln(w, "keys:        no checkpoint to open")
		}
	}
	if s.InSync {
		fmt.Fprintln(w, "status:      in sync")
	} else {
		fmt.Fprintln(w, "status:      behind")
	}
}

type drStatusOptions struct {
	source, target string
	output         string
	replication    bool
	failBehind     bool
	// encryptionKeyFile is --encryption-key-file: keys to try on the
	// replica's newest checkpoint (empty: MAMBA_ENCRYPTION_KEY, else no
	// check).
	encryptionKeyFile string
}

func newDRStatusCmd() *cobra.Command {
	o := drStatusOptions{output: "text", replication: true}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Compare the bucket with its replica",
		Long: `Compare the bucket in region A (--source) with its replica in region B
(--target): the newest chunk and checkpoint in each, by key; the lag between
the newest chunks (chunk ids start with their creation time); how many
source chunks and checkpoints are newer than the target's newest, and how
many the target lacks. "in sync" means the target holds every chunk and
checkpoint of the source. Where the source store reports it (MinIO through
minio-go), the replication status of the newest source objects is shown:
PENDING, COMPLETED or FAILED.

Both buckets are opened with the same credentials (see docs/objectstore.md).
Each run lists every chunk key in both buckets. Every flag can also be set
with the environment variable shown beside it.`,
		Example: `  mamba dr status --source 's3://mamba?endpoint=http://minio-a:9000' --target 's3://mamba?endpoint=http://minio-b:9000'
  mamba dr status --source s3://mamba-eu --target 's3://mamba-us?region=us-east-1' -o json`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return cliflag.BindEnv(cmd.Flags())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDRStatus(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.source, "source", "", "bucket URL of region A, the bucket being replicated (see docs/objectstore.md); required")
	f.StringVar(&o.target, "target", "", "bucket URL of region B, the replica; required")
	f.StringVarP(&o.output, "output", "o", o.output, "text or json")
	f.BoolVar(&o.replication, "replication-status", o.replication, "ask the source store for the replication status of its newest objects")
	f.BoolVar(&o.failBehind, "fail-behind", false, "exit with status 3 when the target is not in sync")
	f.StringVar(&o.encryptionKeyFile, "encryption-key-file", "",
		"keys of a bucket the nodes seal (see mamba serve): also check that they open the target's newest checkpoint, as a failover will need; "+
			"without it "+envelope.EnvKey+" is used, and with neither nothing is opened")
	cliflag.DocumentEnv(f)
	return cmd
}

// errBehind is returned by dr status --fail-behind when the replica is
// not in sync.
var errBehind = errors.New("the target is not in sync with the source")

func runDRStatus(ctx context.Context, o drStatusOptions, stdout io.Writer) error {
	if o.source == "" || o.target == "" {
		return errors.New("--source and --target (or MAMBA_SOURCE and MAMBA_TARGET) are required")
	}
	if o.output != "text" && o.output != "json" {
		return fmt.Errorf("--output %q: want text or json", o.output)
	}
	s, err := compareBuckets(ctx, o.source, o.target, o.replication)
	if err != nil {
		return err
	}
	if s.Keys, err = checkReplicaKeys(ctx, o.target, o.encryptionKeyFile); err != nil {
		return err
	}
	if o.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			return err
		}
	} else {
		printDRStatus(stdout, s)
	}
	if s.Keys != nil && s.Keys.Error != "" {
		return fmt.Errorf("the keys do not open the target's newest checkpoint %s: %s", s.Keys.Checkpoint, s.Keys.Error)
	}
	if o.failBehind && !s.InSync {
		return errBehind
	}
	return nil
}

type drFailoverOptions struct {
	restore      restoreOptions
	waitSource   string
	waitTimeout  time.Duration
	waitInterval time.Duration
}

func newDRFailoverCmd() *cobra.Command {
	o := drFailoverOptions{
		restore: restoreOptions{
			keyPrefix:   metadata.DefaultPrefix,
			dedupWindow: metadata.DefaultDedupWindow,
			concurrency: recovery.DefaultRestoreConcurrency,
		},
		waitTimeout:  10 * time.Minute,
		waitInterval: time.Second,
	}
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "Rebuild region B's Redis from the replica bucket so that nodes there can serve",
		Long: `Fail over to region B: rebuild the Redis of region B from the replica
bucket, exactly as mamba restore does, then say how long it took and print
the mamba serve command that starts nodes in region B.

Stop every node of region A first (or make sure it is down): nodes in A
writing on after the failover would diverge from B. With
--wait-in-sync-with (a planned switch-over, region A still up) the restore
starts only once the replica holds every chunk and checkpoint of A's
bucket, as mamba dr status reports it.

Records acknowledged in region A but not yet replicated are lost; offsets
and consumer group positions are those of the newest replicated
checkpoint (see docs/dr.md). Every flag can also be set with the
environment variable shown beside it.`,
		Example: `  mamba dr failover --bucket 's3://mamba?endpoint=http://minio-b:9000' --redis redis://redis-b:6379/0
  mamba dr failover --bucket 's3://mamba?endpoint=http://minio-b:9000' --redis redis://redis-b:6379/0 \
      --wait-in-sync-with 's3://mamba?endpoint=http://minio-a:9000'`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return cliflag.BindEnv(cmd.Flags())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDRFailover(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.restore.bucket, "bucket", "", "URL of the replica bucket in region B (see docs/objectstore.md); required")
	f.StringVar(&o.restore.redisURL, "redis", "", "URL of region B's Redis, to restore into; required")
	addRedisTLSFlags(f, &o.restore.redisTLS)
	f.StringVar(&o.restore.keyPrefix, "key-prefix", o.restore.keyPrefix, "prefix of every Redis key, as given to mamba serve")
	f.BoolVar(&o.restore.force, "force", false, "delete every key under --key-prefix before restoring, instead of refusing a Redis that has some")
	f.DurationVar(&o.restore.dedupWindow, "dedup-window", o.restore.dedupWindow, "how long idempotency keys of replayed records are remembered, as given to mamba serve")
	f.IntVar(&o.restore.concurrency, "concurrency", o.restore.concurrency, "chunk directories read from the bucket at once")
	addEncryptionKeyFlag(f, &o.restore.encryptionKeyFile)
	addAllowMissingChunksFlag(f, &o.restore.allowMissingChunks)
	f.StringVar(&o.waitSource, "wait-in-sync-with", "", "URL of region A's bucket: wait until the replica is in sync with it before restoring")
	f.DurationVar(&o.waitTimeout, "wait-timeout", o.waitTimeout, "how long --wait-in-sync-with waits before giving up")
	f.DurationVar(&o.waitInterval, "wait-interval", o.waitInterval, "how often --wait-in-sync-with compares the buckets")
	cliflag.DocumentEnv(f)
	return cmd
}

func runDRFailover(ctx context.Context, o drFailoverOptions, stdout, stderr io.Writer) error {
	if o.restore.bucket == "" || o.restore.redisURL == "" {
		return errors.New("--bucket and --redis (or MAMBA_BUCKET and MAMBA_REDIS) are required: the replica bucket and the Redis of region B")
	}
	start := time.Now()
	if o.waitSource != "" {
		if err := waitInSync(ctx, o, stderr); err != nil {
			return err
		}
	}
	restoreStart := time.Now()
	sum, err := restoreBucket(ctx, o.restore, stderr)
	if sum != nil {
		printSummary(stdout, *sum)
	}
	if err != nil {
		return err
	}
	took := time.Since(restoreStart)
	fmt.Fprintf(stdout, "\nregion B can serve: restore took %v", took.Round(time.Millisecond))
	if o.waitSource != "" {
		fmt.Fprintf(stdout, " (%v with the wait for replication)", time.Since(start).Round(time.Millisecond))
	}
	fmt.Fprintln(stdout)
	if sum.Checkpoint != "" {
		fmt.Fprintf(stdout, "offsets and consumer group positions are those of checkpoint %s (taken %s);\n"+
			"records written after it are indexed, possibly at new offsets\n",
			sum.Checkpoint, sum.CheckpointTime.UTC().Format(time.RFC3339Nano))
	}
	fmt.Fprintf(stdout, "start the nodes of region B, each with its own --node-id:\n  %s\n", serveCommandLine(o.restore))
	return nil
}

// waitInSync polls until the replica is in sync with the source bucket.
func waitInSync(ctx context.Context, o drFailoverOptions, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, o.waitTimeout)
	defer cancel()
	last := ""
	for {
		s, err := compareBuckets(ctx, o.waitSource, o.restore.bucket, false)
		var msg string
		switch {
		case err != nil:
			msg = "cannot compare the buckets: " + err.Error()
		case s.InSync:
			fmt.Fprintf(stderr, "replica in sync with %s: %d chunks, newest checkpoint %s\n", o.waitSource, s.Target.Chunks, s.Target.NewestCheckpoint)
			return nil
		default:
			msg = fmt.Sprintf("waiting for replication: %d chunks and %d checkpoints missing, lag %v",
				s.ChunksMissing, s.CheckpointsMissing, s.Lag())
		}
		if msg != last {
			fmt.Fprintln(stderr, msg)
			last = msg
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("--wait-in-sync-with: not in sync after %v (%s); fail over without it to accept losing what is not replicated", o.waitTimeout, msg)
			}
			return ctx.Err()
		case <-time.After(o.waitInterval):
		}
	}
}

// serveCommandLine is the mamba serve command for region B, with the
// Redis password (if any) masked.
func serveCommandLine(o restoreOptions) string {
	redisURL := o.redisURL
	if u, err := url.Parse(redisURL); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			redisURL = u.Redacted()
		}
	}
	args := []string{"mamba", "serve", "--bucket", shellQuote(o.bucket), "--redis", shellQuote(redisURL)}
	for _, f := range []struct{ flag, path string }{
		{"--redis-ca-file", o.redisTLS.caFile}, {"--redis-cert-file", o.redisTLS.certFile}, {"--redis-key-file", o.redisTLS.keyFile},
	} {
		if f.path != "" {
			args = append(args, f.flag, shellQuote(f.path))
		}
	}
	if o.keyPrefix != metadata.DefaultPrefix {
		args = append(args, "--key-prefix", shellQuote(o.keyPrefix))
	}
	if o.dedupWindow != metadata.DefaultDedupWindow {
		args = append(args, "--dedup-window", o.dedupWindow.String())
	}
	if o.encryptionKeyFile != "" {
		args = append(args, "--encryption-key-file", shellQuote(o.encryptionKeyFile))
	}
	// Checkpoints hold no tokens: region B's nodes make their first admin
	// token from the deployment's bootstrap token file.
	args = append(args, "--auth", "--bootstrap-token-file", "<bootstrap-token-file>")
	return strings.Join(append(args, "--node-id", "<node-b-1>"), " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@,+=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
