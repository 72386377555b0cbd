// Package metadata keeps Mamba's metadata in Redis: the topic registry,
// each partition's high watermark and log start offset, the chunk index,
// and idempotency records. It is an index of the bucket, not a second copy
// of the data: everything here can be rebuilt from the chunks.
//
// # Key layout
//
// Every key of a topic shares the hash tag {topic}, so a commit is one
// atomic script even on Redis Cluster. With the default prefix "mamba":
//
//	mamba:topics                 set    names of all topics (no hash tag)
//	mamba:{T}:meta               hash   name, partitions, retention_ms, retention_bytes, created_ms
//	mamba:{T}:hw                 hash   partition -> high watermark (next offset)
//	mamba:{T}:lso                hash   partition -> log start offset
//	mamba:{T}:idx:P              zset   chunk index of partition P: score = base
//	                                    offset, member = "base|count|chunk|off|len"
//	mamba:{T}:refs               hash   object (chunk id) -> number of index entries
//	                                    naming it; no field: no entry of T names it
//	mamba:{T}:bytes              hash   partition -> bytes of its indexed batches
//	mamba:{T}:unref              list   objects trims of T left unreferenced by T, oldest
//	                                    first, for garbage collection to take
//	                                    (TakeUnreferenced); at most MaxUnreferenced
//	mamba:{T}:chunk:ID           string result of committing chunk ID to T; lives
//	                                    max(10m, the commit age limit)
//	                                    (kept so that a retried commit returns it)
//	mamba:{T}:idem:K             string answer to the request with idempotency key K,
//	                                    kept for the dedup window
//	mamba:commits                pub/sub channel: "T<TAB>p:hw,p:hw..." per commit
//	mamba:job:J:lease            string holder of background job J's lease (see JobLease)
//	mamba:job:J:last             string when job J last completed, unix ms
//	mamba:gc:pending             zset   bucket key -> unix ms garbage collection first found
//	                                    it unreferenced (see gc.go; bounded by the collector)
//	mamba:gc:cursor              string last chunk key garbage collection examined
//
// Consumer groups have keys of their own, listed in groups.go; API tokens
// too (mamba:{@auth}:..., tokens.go). Neither is in a Snapshot: a restore
// gives back no token.
//
// Snapshot reads the topics, offsets, index, markers, idempotency records
// and group offsets in one pass, and LoadSnapshot writes them back into an
// empty Redis: that is how a checkpoint in the bucket (package recovery)
// becomes a working index again.
//
// Offsets of a partition are contiguous from its log start offset to its
// high watermark: every commit appends count records at the current high
// watermark and raises it by count, in one script, so no two batches get
// overlapping offsets and there is no gap.
//
// # Scripts
//
// Every write that must be atomic is a Lua script in metadata/scripts/, one
// file per script (commit.lua, group_sync.lua, commit_offsets.lua,
// create_topic.lua, update_topic.lua, delete_topic.lua, trim.lua,
// job_acquire.lua, job_release.lua, set_max.lua, delete_group.lua,
// forget_offsets.lua), compiled in with go:embed (scripts.go). Each file opens
// with a comment stating its KEYS, ARGV, reply and invariants. Scripts are
// loaded once per connection pool (Load) and called by SHA: go-redis falls
// back to EVAL when Redis does not know a script (after a restart), and
// CommitChunks loads the commit script again when its pipeline gets
// NOSCRIPT.
//
// Each script has a table test (scripts_*_test.go) that calls it through
// the Store's methods and checks the reply and every key the call wrote or
// deleted, including the cases the script guards against (a retried
// commit, a recreated topic, a known idempotency key, a lost lease, an
// expired member). Every table runs on miniredis, whose Lua engine is
// gopher-lua, and on a real redis-server; the cases that need the clock to
// jump run on miniredis only. Tests that need a redis-server skip when it
// is not installed, unless CI=true.
package metadata

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	// ErrTopicExists is returned when creating a topic whose name is taken.
	ErrTopicExists = errors.New("topic already exists")
	// ErrTopicNotFound is returned for a topic that does not exist (or was
	// deleted while a commit was on its way).
	ErrTopicNotFound = errors.New("topic not found")
	// ErrPartitionNotFound is returned for a partition the topic does not
	// have.
	ErrPartitionNotFound = errors.New("partition not found")
	// ErrChunkTooOld is returned when a commit comes later than
	// MaxCommitAge after its chunk was created; the chunk is never indexed
	// and garbage collection may delete it.
	ErrChunkTooOld = errors.New("chunk too old to commit")
	// ErrOffsetOutOfRange is returned by lookups below the log start offset
	// or at or beyond the high watermark.
	ErrOffsetOutOfRange = errors.New("offset out of range")
	// ErrUnavailable wraps failures to reach Redis: the call may succeed
	// if tried again.
	ErrUnavailable = errors.New("metadata store unavailable")
)

// DefaultPrefix begins every key.
const DefaultPrefix = "mamba"

// DefaultDedupWindow is how long an idempotency key is remembered.
const DefaultDedupWindow = 10 * time.Minute

// commitMarkerTTL is how long the result of a chunk commit is remembered, so
// that a commit retried after a lost reply gets the same offsets. A node
// retries a commit only within its write timeout (seconds); ten minutes
// leaves a wide margin while keeping one small key per topic per chunk.
const commitMarkerTTL = 10 * time.Minute

// markerTTL is how long a commit marker lives: commitMarkerTTL, or the
// commit age limit when that is longer. Restore relies on it: a chunk
// young enough to be committed after a checkpoint (younger than the
// limit) that was committed before it has its marker in the checkpoint,
// so replay never indexes it again, even when retention trimmed all its
// entries before the checkpoint.
func (s *Store) markerTTL() time.Duration { return max(commitMarkerTTL, s.commitAge) }

// MaxCommitAge is the default of the oldest a chunk may be when Commit
// indexes it (Options.MaxCommitAge), by
// Redis's clock against the time in the chunk's id. A node gives up on a
// chunk's commit after its write timeout (seconds), so this only fences
// off commits delayed far beyond it. Garbage collection deletes a chunk
// that no index entry names only once it is older than MaxCommitAge plus a
// grace period, so a chunk on its way to being committed is never deleted.
const MaxCommitAge = 10 * time.Minute

// Options configures a Store. The zero value is usable.
type Options struct {
	// Prefix begins every key; DefaultPrefix when empty. Several
	// deployments can share one Redis with different prefixes.
	Prefix string
	// DedupWindow is how long idempotency keys are remembered;
	// DefaultDedupWindow when zero.
	DedupWindow time.Duration
	// MaxCommitAge is the oldest a chunk may be when Commit indexes it;
	// MaxCommitAge (the constant) when zero. Every node and the garbage
	// collector must use the same value.
	MaxCommitAge time.Duration
	// GroupLimits bound consumer groups; each zero field takes its
	// default (MaxGroupMembers, MaxGroupPartitions, MaxGroups).
	GroupLimits GroupLimits
}

// GroupLimits bound consumer groups (see MaxGroupMembers).
type GroupLimits struct {
	Members, Partitions, Groups int
}

// Store is the Redis-backed metadata store. It is safe for concurrent use.
type Store struct {
	rdb         redis.UniversalClient
	prefix      string
	dedupWindow time.Duration
	commitAge   time.Duration
	groupLimits GroupLimits
}

// New returns a Store on rdb. It does not contact Redis.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.DedupWindow <= 0 {
		opts.DedupWindow = DefaultDedupWindow
	}
	if opts.MaxCommitAge <= 0 {
		opts.MaxCommitAge = MaxCommitAge
	}
	gl := &opts.GroupLimits
	for _, l := range []struct {
		v   *int
		def int
	}{{&gl.Members, MaxGroupMembers}, {&gl.Partitions, MaxGroupPartitions}, {&gl.Groups, MaxGroups}} {
		if *l.v <= 0 {
			*l.v = l.def
		}
	}
	return &Store{rdb: rdb, prefix: opts.Prefix, dedupWindow: opts.DedupWindow, commitAge: opts.MaxCommitAge, groupLimits: *gl}
}

// CommitAgeLimit returns the oldest a chunk may be when Commit indexes it
// (Options.MaxCommitAge).
func (s *Store) CommitAgeLimit() time.Duration { return s.commitAge }

// DedupWindow returns how long idempotency keys are remembered.
func (s *Store) DedupWindow() time.Duration { return s.dedupWindow }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Load loads every script into Redis, so the first commit does not pay for
// it. Calls load scripts on demand anyway.
func (s *Store) Load(ctx context.Context) error {
	for _, sc := range scripts {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return unavailable("load scripts", err)
		}
	}
	return nil
}

func (s *Store) topicsKey() string { return s.prefix + ":topics" }

// CommitsChannel is the pub/sub channel that commits are announced on.
func (s *Store) CommitsChannel() string { return s.prefix + ":commits" }

func (s *Store) topicKey(topic, suffix string) string {
	return s.prefix + ":{" + topic + "}:" + suffix
}

func (s *Store) indexKey(topic string, partition int32) string {
	return s.topicKey(topic, "idx:"+strconv.Itoa(int(partition)))
}

// unavailable wraps an error talking to Redis. Errors returned by scripts
// on purpose are mapped by the caller before this.
func unavailable(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}

// scriptError maps the error replies our scripts raise on purpose.
func scriptError(op, topic string, err error) error {
	// Redis 7 prefixes error replies from scripts with "ERR ".
	msg := strings.TrimPrefix(err.Error(), "ERR ")
	switch {
	case strings.HasPrefix(msg, "TOPIC_NOT_FOUND"):
		return fmt.Errorf("%s %s: %w", op, topic, ErrTopicNotFound)
	case strings.HasPrefix(msg, "TOPIC_EXISTS"):
		return fmt.Errorf("%s %s: %w", op, topic, ErrTopicExists)
	case strings.HasPrefix(msg, "CHUNK_TOO_OLD"):
		return fmt.Errorf("%s %s: %w", op, topic, ErrChunkTooOld)
	case strings.HasPrefix(msg, "PARTITION_NOT_FOUND"):
		return fmt.Errorf("%s %s: %w: %s", op, topic, ErrPartitionNotFound, strings.TrimPrefix(msg, "PARTITION_NOT_FOUND"))
	}
	return unavailable(op+" "+topic, err)
}
