package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/membudget"
	"github.com/mambamq/mamba/metadata"
)

// Errors the node returns; the HTTP layer maps each to one status and
// error code (the error table of package ingest/httpapi, whose codes are
// wire.Codes).
var (
	ErrTopicNotFound     = metadata.ErrTopicNotFound     // 404 topic_not_found
	ErrTopicExists       = metadata.ErrTopicExists       // 409 topic_exists
	ErrPartitionNotFound = metadata.ErrPartitionNotFound // 404 partition_not_found
	ErrOffsetOutOfRange  = metadata.ErrOffsetOutOfRange  // 400 offset_out_of_range
	// ErrInvalidRequest wraps every complaint about the caller's input.
	ErrInvalidRequest = errors.New("invalid request") // 400 invalid_request
	// ErrTooLarge: a request or record over the configured limits.
	ErrTooLarge = errors.New("payload too large") // 413 payload_too_large
	// ErrOverloaded: the node's buffer or memory budget is full; retry
	// after RetryAfter.
	ErrOverloaded = errors.New("overloaded") // 429 overloaded
	// ErrUnavailable: the bucket or Redis could not be reached before the
	// deadline. Nothing the failed request sent was indexed, unless the
	// failure was in the commit itself, in which case a retry with the same
	// idempotency key returns the first answer.
	ErrUnavailable = errors.New("unavailable") // 503 unavailable
	// ErrShuttingDown: the node is draining and takes no new records.
	ErrShuttingDown = errors.New("node is shutting down") // 503 unavailable
)

// OverloadedError is an ErrOverloaded with the time after which a retry is
// likely to be accepted.
type OverloadedError struct {
	RetryAfter time.Duration
	// What is full; "buffer full" when empty.
	What string
}

func (e *OverloadedError) Error() string {
	what := e.What
	if what == "" {
		what = "buffer full"
	}
	return fmt.Sprintf("overloaded: %s, retry after %v", what, e.RetryAfter)
}

// Unwrap makes errors.Is(err, ErrOverloaded) true.
func (e *OverloadedError) Unwrap() error { return ErrOverloaded }

// AckMode says when a produce call returns.
type AckMode int

const (
	// AckDurable returns once the records' chunk is in the bucket and their
	// offsets are committed in Redis. The default.
	AckDurable AckMode = iota
	// AckBuffered returns once the records are in the node's buffer: a node
	// crash before the flush loses them. Offsets are not known yet.
	AckBuffered
)

// AnyPartition in ProduceRecord.Partition lets the node choose: by key
// hash when the record has a key, otherwise one partition per request.
const AnyPartition int32 = -1

// ProduceRecord is one record to append.
type ProduceRecord struct {
	// Key is nil for a record without a key.
	Key   []byte
	Value []byte
	// Headers keep their order.
	Headers []chunk.Header
	// Timestamp in Unix milliseconds; 0 means the time the node received it.
	Timestamp int64
	// Partition is the target partition, or AnyPartition.
	Partition int32
}

// ProduceOptions are per-request settings.
type ProduceOptions struct {
	// IdempotencyKey makes a retry inside the dedup window return the
	// first answer and append nothing. Empty means none.
	IdempotencyKey string
	Ack            AckMode
}

// ProduceRequest is one produce call, as a Service receives it.
type ProduceRequest struct {
	Topic   string
	Records []ProduceRecord
	Options ProduceOptions
	// Release, when not nil, is called exactly once by the Service when it
	// no longer reads the bytes Records point into: after it has copied
	// them into a chunk, or at once when it refuses the request (invalid,
	// overloaded, shutting down). The caller must not reuse those bytes
	// before. The HTTP layer uses it to recycle request bodies.
	Release func()
	// Memory, when not nil, is what the caller reserved from the node's
	// memory budget (Node.Budget) for this request's body and decoded
	// records. The Service takes it over: it keeps it, grown to the
	// request's buffered size, until the request is answered, or
	// releases it at once when it refuses the request. When nil the
	// Service reserves on its own.
	Memory *membudget.Reservation
}

// RecordResult is where one produced record went. Offset is -1 under
// AckBuffered.
type RecordResult struct {
	Partition int32
	Offset    int64
}

// FetchRequest asks for records of one partition from Offset on.
type FetchRequest struct {
	Topic     string
	Partition int32
	Offset    int64
	// MaxRecords and MaxBytes bound the answer; at least one record is
	// returned when any is available, however large. Zero means default.
	MaxRecords int
	MaxBytes   int
	// Wait is how long to wait at the high watermark for new records
	// (capped by the node's MaxWait). Zero answers at once.
	Wait time.Duration
}

// FetchedRecord is a committed record and its offset.
type FetchedRecord struct {
	Offset int64
	chunk.Record
}

// FetchResult is the answer to a fetch. NextOffset is the offset to ask
// for next: one past the last record returned, or the request's offset
// when none was.
type FetchResult struct {
	Records        []FetchedRecord
	NextOffset     int64
	HighWatermark  int64
	LogStartOffset int64
	// Memory, when not nil, holds what the node reserved from its memory
	// budget for reading and decoding Records (kind Fetch). The caller
	// owns it: it may grow it for the response it builds, and must
	// release it once it no longer holds the records.
	Memory *membudget.Reservation
}

// TopicConfig is what a caller sets when creating a topic.
type TopicConfig struct {
	Name       string
	Partitions int
	// RetentionMS is how long records are kept, by the time their chunk
	// was written (append time); 0 means forever. At most
	// MaxRetentionMS.
	RetentionMS int64
	// RetentionBytes bounds each partition's stored bytes: the oldest
	// batches go while the rest stays at least this big; 0 means no
	// bound. At most MaxRetentionBytes.
	RetentionBytes int64
}

// Bounds of a topic's retention settings: beyond them a value is a
// mistake (a unit slip), not a wish.
const (
	// MaxRetentionMS is 1,000 years in milliseconds.
	MaxRetentionMS int64 = 1000 * 365 * 24 * 3600 * 1000
	// MaxRetentionBytes is 1 EiB.
	MaxRetentionBytes int64 = 1 << 60
)

// TopicUpdate changes a topic's retention; a nil field stays as it is, and
// at least one must be set.
type TopicUpdate struct {
	RetentionMS    *int64
	RetentionBytes *int64
}

// TopicDescription is a topic, what it stores and its partitions' offsets.
type TopicDescription struct {
	TopicConfig
	// StoredBytes is the size of the topic's indexed batches, the sum of
	// its partitions' StoredBytes.
	StoredBytes int64
	// Objects is the number of objects (chunks) its index refers to.
	Objects int64
	// LogStartAge is the age of its oldest readable batch by append time;
	// zero when it holds nothing.
	LogStartAge    time.Duration
	PartitionStats []metadata.PartitionStats
}

// Admitter refuses a produce request from the size of its body alone,
// before the body is read: under overload a node would otherwise hold the
// bodies of every request it is about to refuse. AdmitProduce returns nil
// or the error the produce would get (an *OverloadedError); it is a hint,
// and Submit decides.
type Admitter interface {
	AdmitProduce(bodyBytes int64) error
}

// Service is what the HTTP API (package ingest/httpapi) serves. Node
// implements it. Every method validates its arguments (with the Validate
// functions of this package) and returns errors that match the sentinels
// above. The HTTP layer calls AdmitProduce before it reads a produce body,
// so that a 429 costs no memory, and passes the body's release in
// ProduceRequest.Release.
type Service interface {
	Admitter
	CreateTopic(ctx context.Context, cfg TopicConfig) (TopicConfig, error)
	// UpdateTopic changes the topic's retention and returns it as it is
	// afterwards.
	UpdateTopic(ctx context.Context, name string, u TopicUpdate) (TopicConfig, error)
	ListTopics(ctx context.Context) ([]TopicConfig, error)
	DescribeTopic(ctx context.Context, name string) (TopicDescription, error)
	DeleteTopic(ctx context.Context, name string) error
	// Submit appends req's records and calls req.Release exactly once
	// (see ProduceRequest).
	Submit(ctx context.Context, req ProduceRequest) ([]RecordResult, error)
	Fetch(ctx context.Context, req FetchRequest) (FetchResult, error)
	// MaxWait is the longest a Fetch waits at the high watermark: the
	// node's Config.MaxWait. The HTTP layer clamps wait_ms to it.
	MaxWait() time.Duration
	ListGroups(ctx context.Context) ([]string, error)
	DescribeGroup(ctx context.Context, group string) (GroupDescription, error)
	Join(ctx context.Context, req JoinGroupRequest) (JoinedGroup, error)
	DeleteGroup(ctx context.Context, group string) error
	// Heartbeat keeps the member alive, frees the partitions it releases,
	// and returns its partitions.
	// Heartbeat, LeaveGroup and CommitOffsets take the member's session
	// key, as the join answered it (JoinedGroup.SessionKey).
	Heartbeat(ctx context.Context, group, member, key string, release []metadata.TopicPartitionLease) (metadata.Synced, error)
	LeaveGroup(ctx context.Context, group, member, key string) error
	CommitOffsets(ctx context.Context, group, member, key string, offsets []metadata.OffsetCommit) error
	// ResetGroupOffsets plans, and unless req.DryRun applies, a reset of
	// the group's committed offsets in one topic.
	ResetGroupOffsets(ctx context.Context, req ResetOffsetsRequest) (ResetPlan, error)
	// Ready reports whether Redis and the bucket are reachable.
	Ready(ctx context.Context) error
}
