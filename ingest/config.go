package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/chunkid"
)

// Defaults for Config. What they cost on AWS S3 is in docs/operations.md.
const (
	// DefaultFlushBytes seals a chunk once this much is buffered.
	DefaultFlushBytes = 8 << 20
	// DefaultFlushInterval seals a chunk once its oldest record is this
	// old: the floor of a durable produce's latency, and the most PUTs a
	// node makes per second when idle traffic trickles in (4 per second).
	DefaultFlushInterval = 250 * time.Millisecond
	// DefaultMaxBufferedBytes bounds the bytes a node holds that are not
	// yet acknowledged; beyond it produce answers 429.
	DefaultMaxBufferedBytes = 256 << 20
	// DefaultUploadConcurrency is how many chunk PUTs run at once.
	DefaultUploadConcurrency = 4
	// DefaultCacheBytes bounds the node's cache of recent batches.
	DefaultCacheBytes = 256 << 20
	// DefaultMaxRecordBytes bounds one record (key, value and headers).
	DefaultMaxRecordBytes = 1 << 20
	// DefaultWriteTimeout bounds the retries of a chunk's PUT and commit;
	// past it the waiting producers get 503.
	DefaultWriteTimeout = 15 * time.Second
	// DefaultMaxWait caps a fetch's long-poll.
	DefaultMaxWait = 30 * time.Second
	// DefaultMaxLongPolls bounds the fetches one node keeps waiting at
	// the high watermark at once.
	DefaultMaxLongPolls = 1000
	// DefaultReadGapBytes is the largest gap between two batches of one
	// chunk that a fetch still reads with a single ranged GET (the gap's
	// bytes are read and dropped): 64 KiB costs about as much transfer
	// time as a GET's first byte latency on S3, and one GET saved pays
	// for 2.5 GB of gap at list prices.
	DefaultReadGapBytes = 64 << 10
	// DefaultReadMaxBytes bounds one ranged GET of a fetch.
	DefaultReadMaxBytes = 8 << 20
	// DefaultReadConcurrency is how many ranged GETs one fetch runs at once.
	DefaultReadConcurrency = 4
	// DefaultReadAheadBytes is how far past its own batches a catch-up
	// fetch reads (in batch bytes, never past the high watermark).
	DefaultReadAheadBytes = 4 << 20
	// DefaultCatchUpCacheBytes bounds the cache that catch-up reads fill:
	// the read-ahead windows of 16 catch-up readers.
	DefaultCatchUpCacheBytes = 64 << 20
	// DefaultMemoryBudget is the node's memory budget when neither it nor
	// any of its shares is set: the default buffer (a third), cache (a
	// third) and catch-up cache (a twelfth), and a quarter for requests
	// in flight.
	DefaultMemoryBudget = 768 << 20
)

// Config configures a Node. Zero fields take their defaults.
type Config struct {
	// NodeID names this node in chunk ids; required, unique per node.
	NodeID string
	// FlushBytes and FlushInterval decide when the buffered records become
	// a chunk: whichever comes first.
	FlushBytes    int
	FlushInterval time.Duration
	// MaxBufferedBytes bounds unacknowledged bytes; must be at least
	// FlushBytes.
	MaxBufferedBytes int64
	// UploadConcurrency is how many chunk uploads run in parallel.
	UploadConcurrency int
	// CacheBytes bounds the cache of recently written and read batches.
	CacheBytes int64
	// MaxRecordBytes bounds one record.
	MaxRecordBytes int
	// WriteTimeout bounds the retries of one chunk's PUT and commit.
	WriteTimeout time.Duration
	// MaxWait caps how long a fetch waits for new records.
	MaxWait time.Duration
	// MaxLongPolls bounds the fetches waiting at the high watermark at
	// once, each with a wake-up registration, a timer and a lookup every
	// second. A fetch that would wait beyond it waits up to a second
	// without them, then answers what there is (nothing yet): its client
	// asks again, as it would after any empty long-poll.
	MaxLongPolls int
	// ReadGapBytes is the largest gap between two batches of one chunk
	// that a fetch reads through, to read both with one ranged GET.
	ReadGapBytes int64
	// ReadMaxBytes bounds the bytes of one ranged GET that merges
	// batches; a single batch larger than it is still read, alone.
	ReadMaxBytes int64
	// ReadConcurrency is how many ranged GETs one fetch runs at once.
	ReadConcurrency int
	// ReadAheadBytes is how many batch bytes past its own a fetch that
	// missed the caches and is far behind the high watermark reads into
	// the catch-up cache.
	ReadAheadBytes int64
	// CatchUpCacheBytes bounds the catch-up cache, which holds the batches
	// catch-up fetches read from the bucket, apart from the cache of
	// recently written batches (CacheBytes) that tailing consumers read.
	// At least ReadAheadBytes.
	CatchUpCacheBytes int64
	// Codec compresses each batch; CodecNone by default.
	Codec chunk.Codec
	// MemoryBudget bounds the memory the node holds on behalf of
	// requests and in its caches (package internal/membudget): buffered
	// records, request bodies being read and decoded, fetches until
	// answered, long-polls, and the two caches all reserve from it
	// before they allocate. When zero it is derived from the shares
	// (4/3 of MaxBufferedBytes + CacheBytes + CatchUpCacheBytes), and the
	// shares left zero are derived from it: a third for the buffer, a
	// third for the cache, a twelfth for the catch-up cache; the rest is
	// for requests in flight. DefaultMemoryBudget when all are zero.
	MemoryBudget int64
}

// requestShare is the least part of the memory budget the buffer and the
// caches must leave to requests being read and fetches being answered.
func requestShare(budget int64) int64 { return budget / 8 }

// withDefaults returns cfg with zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	set(&cfg.FlushBytes, DefaultFlushBytes)
	set(&cfg.UploadConcurrency, DefaultUploadConcurrency)
	set(&cfg.MaxRecordBytes, DefaultMaxRecordBytes)
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	cfg = cfg.withMemoryDefaults()
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	set(&cfg.ReadConcurrency, DefaultReadConcurrency)
	set(&cfg.MaxLongPolls, DefaultMaxLongPolls)
	set64 := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	set64(&cfg.ReadGapBytes, DefaultReadGapBytes)
	set64(&cfg.ReadMaxBytes, DefaultReadMaxBytes)
	set64(&cfg.ReadAheadBytes, DefaultReadAheadBytes)
	return cfg
}

// withMemoryDefaults derives the memory budget from its shares, or the
// shares left zero from the budget (see Config.MemoryBudget).
func (cfg Config) withMemoryDefaults() Config {
	flush := int64(cfg.FlushBytes)
	if flush == 0 {
		flush = DefaultFlushBytes
	}
	budget := cfg.MemoryBudget
	share := func(v *int64, def, fraction int64) {
		if *v != 0 {
			return
		}
		*v = def
		if budget > 0 {
			*v = budget / fraction
		}
	}
	share(&cfg.MaxBufferedBytes, DefaultMaxBufferedBytes, 3)
	cfg.MaxBufferedBytes = max(cfg.MaxBufferedBytes, flush)
	share(&cfg.CacheBytes, DefaultCacheBytes, 3)
	share(&cfg.CatchUpCacheBytes, DefaultCatchUpCacheBytes, 12)
	if budget == 0 {
		cfg.MemoryBudget = (cfg.MaxBufferedBytes + cfg.CacheBytes + cfg.CatchUpCacheBytes) / 3 * 4
	}
	return cfg
}

// Budget is the node's memory budget in bytes: Config.MemoryBudget, or
// what it is derived from.
func (cfg Config) Budget() int64 { return cfg.withDefaults().MemoryBudget }

// Validate reports every bad field at once, after defaults are applied.
func (cfg Config) Validate() error {
	cfg = cfg.withDefaults()
	var errs []error
	if err := chunkid.ValidateNode(cfg.NodeID); err != nil {
		errs = append(errs, fmt.Errorf("node id: %w", err))
	}
	if cfg.FlushBytes < 1024 || cfg.FlushBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("flush bytes: %d is outside 1 KiB..1 GiB", cfg.FlushBytes))
	}
	if cfg.FlushInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("flush interval: %v is under 1ms", cfg.FlushInterval))
	}
	if cfg.MaxBufferedBytes < int64(cfg.FlushBytes) {
		errs = append(errs, fmt.Errorf("max buffered bytes: %d is less than flush bytes %d", cfg.MaxBufferedBytes, cfg.FlushBytes))
	}
	if cfg.UploadConcurrency < 1 || cfg.UploadConcurrency > 256 {
		errs = append(errs, fmt.Errorf("upload concurrency: %d is outside 1..256", cfg.UploadConcurrency))
	}
	if cfg.CacheBytes < 0 {
		errs = append(errs, fmt.Errorf("cache bytes: %d is negative", cfg.CacheBytes))
	}
	if cfg.MaxRecordBytes < 1 || cfg.MaxRecordBytes > chunk.MaxBatchBytes/2 {
		errs = append(errs, fmt.Errorf("max record bytes: %d is outside 1..%d", cfg.MaxRecordBytes, chunk.MaxBatchBytes/2))
	}
	if cfg.WriteTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("write timeout: %v is under 100ms", cfg.WriteTimeout))
	}
	if cfg.MaxLongPolls < 1 || cfg.MaxLongPolls > 1_000_000 {
		errs = append(errs, fmt.Errorf("max long polls: %d is outside 1..1000000", cfg.MaxLongPolls))
	}
	if cfg.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("max wait: %v is negative", cfg.MaxWait))
	}
	if cfg.ReadGapBytes < 0 || cfg.ReadGapBytes > 8<<20 {
		errs = append(errs, fmt.Errorf("read gap bytes: %d is outside 0..8 MiB", cfg.ReadGapBytes))
	}
	if cfg.ReadMaxBytes < 64<<10 || cfg.ReadMaxBytes > 256<<20 {
		errs = append(errs, fmt.Errorf("read max bytes: %d is outside 64 KiB..256 MiB", cfg.ReadMaxBytes))
	}
	if cfg.ReadConcurrency < 1 || cfg.ReadConcurrency > 64 {
		errs = append(errs, fmt.Errorf("read concurrency: %d is outside 1..64", cfg.ReadConcurrency))
	}
	if cfg.ReadAheadBytes < 0 || cfg.ReadAheadBytes > 256<<20 {
		errs = append(errs, fmt.Errorf("read-ahead bytes: %d is outside 0..256 MiB", cfg.ReadAheadBytes))
	}
	if cfg.CatchUpCacheBytes < cfg.ReadAheadBytes {
		errs = append(errs, fmt.Errorf("catch-up cache bytes: %d is less than read-ahead bytes %d, so read-ahead could not be kept", cfg.CatchUpCacheBytes, cfg.ReadAheadBytes))
	}
	if shares := cfg.MaxBufferedBytes + cfg.CacheBytes + cfg.CatchUpCacheBytes; cfg.MemoryBudget < 0 ||
		shares > cfg.MemoryBudget-requestShare(cfg.MemoryBudget) {
		errs = append(errs, fmt.Errorf("memory budget: %d bytes leave less than an eighth of it to requests in flight after max buffered bytes %d, cache bytes %d and catch-up cache bytes %d",
			cfg.MemoryBudget, cfg.MaxBufferedBytes, cfg.CacheBytes, cfg.CatchUpCacheBytes))
	}
	if cfg.Codec != chunk.CodecNone && cfg.Codec != chunk.CodecZstd {
		errs = append(errs, fmt.Errorf("codec: unknown codec %d", cfg.Codec))
	}
	return errors.Join(errs...)
}
