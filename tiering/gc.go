package tiering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/metrics"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

// Garbage collection defaults.
const (
	// GCJobName is the garbage collector's job (and lease) name.
	GCJobName = "gc"
	// DefaultGCGrace is how long an object stays unreferenced before it
	// is deleted.
	DefaultGCGrace = time.Hour
	// DefaultGCBatch is how many chunks one pass examines, and how many
	// pending objects it deletes at most.
	DefaultGCBatch = 1000
	// MaxGCBatch bounds GCConfig.Batch.
	MaxGCBatch = 100_000
	// DefaultMaxGCPending bounds the pending set: a pass marks nothing
	// while the set holds this many objects.
	DefaultMaxGCPending = 100_000
	// DefaultGCConcurrency is how many objects a pass examines or deletes
	// at once.
	DefaultGCConcurrency = 16
	// gcTopicCacheEntries bounds the collector's memory of which topics a
	// chunk holds (chunks are immutable): below it a chunk's directory is
	// read once per node; a bucket holding more chunks past the commit age
	// limit reads most of them again each cycle of the cursor.
	gcTopicCacheEntries = 100_000
)

// GCConfig configures a Collector. Zero fields take their defaults.
type GCConfig struct {
	// Grace is how long an object must have been found unreferenced
	// before it is deleted; DefaultGCGrace when zero.
	Grace time.Duration
	// Batch is how many chunks a pass examines from its listing, and
	// again from trims' hand-over lists, and the most pending objects it
	// deletes; DefaultGCBatch when zero.
	Batch int
	// MaxPending bounds the pending set; DefaultMaxGCPending when zero.
	MaxPending int
	// Concurrency is how many objects are read or deleted at once;
	// DefaultGCConcurrency when zero.
	Concurrency int
	// CheckpointGate, set when checkpoints are on, deletes an object only
	// once a checkpoint newer than its mark is in the bucket, so that the
	// newest checkpoint never names a deleted chunk. With no checkpoint in
	// the bucket nothing is deleted.
	CheckpointGate bool
}

func (c GCConfig) withDefaults() GCConfig {
	if c.Grace <= 0 {
		c.Grace = DefaultGCGrace
	}
	if c.Batch <= 0 {
		c.Batch = DefaultGCBatch
	}
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxGCPending
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultGCConcurrency
	}
	return c
}

// Validate reports every problem with the configuration.
func (c GCConfig) Validate() error {
	var errs []error
	if c.Grace < 0 {
		errs = append(errs, fmt.Errorf("gc: grace %v is negative", c.Grace))
	}
	if c.Batch < 0 || c.Batch > MaxGCBatch {
		errs = append(errs, fmt.Errorf("gc: batch %d not in [1, %d]", c.Batch, MaxGCBatch))
	}
	if c.MaxPending < 0 || c.Concurrency < 0 {
		errs = append(errs, errors.New("gc: max pending and concurrency must not be negative"))
	}
	return errors.Join(errs...)
}

// Collector deletes bucket objects that nothing references any more (see
// the package documentation for the rules). Its Pass runs as a Job.
type Collector struct {
	cfg    GCConfig
	meta   *metadata.Store
	bucket *bucket.Bucket
	log    *slog.Logger

	mu     sync.Mutex
	topics map[string][]metadata.ObjectRef // chunk id -> topics it holds

	deleted, deletedBytes, errs prometheus.Counter
	pending                     prometheus.Gauge
}

// NewCollector returns a Collector of the objects in store, whose
// references meta holds; reg (which may be nil) gets its metrics.
func NewCollector(cfg GCConfig, meta *metadata.Store, store objectstore.Store, reg prometheus.Registerer, log *slog.Logger) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Collector{
		cfg: cfg.withDefaults(), meta: meta, bucket: bucket.New(store), log: log.With("job", GCJobName),
		topics: map[string][]metadata.ObjectRef{},
		deleted: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamba_gc_deleted_objects_total", Help: "Bucket objects (chunks and topic configs) garbage collection deleted.",
		})),
		deletedBytes: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamba_gc_deleted_bytes_total", Help: "Bytes of the chunks garbage collection deleted.",
		})),
		errs: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamba_gc_errors_total", Help: "Objects garbage collection could not examine or delete (retried by a later pass).",
		})),
		pending: metrics.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mamba_gc_pending_objects", Help: "Objects found unreferenced and waiting for their grace period (as of this node's last pass).",
		})),
	}, nil
}

// NewGCJob returns the leased job that runs the collector every
// jobCfg.Interval; jobCfg.Name defaults to GCJobName.
func NewGCJob(jobCfg JobConfig, cfg GCConfig, meta *metadata.Store, store objectstore.Store, reg prometheus.Registerer, log *slog.Logger) (*Job, error) {
	if jobCfg.Name == "" {
		jobCfg.Name = GCJobName
	}
	c, err := NewCollector(cfg, meta, store, reg, log)
	if err != nil {
		return nil, err
	}
	return NewJob(jobCfg, meta, c.Pass, reg, log)
}

// GCStats counts what one pass did: chunks examined, objects newly
// marked, deleted, and unmarked (referenced again, or gone), and objects
// that could not be examined or deleted.
type GCStats struct {
	Examined, Marked, Deleted, Unmarked, Errors int
	HandedOver                                  int // objects taken from trims' lists (metadata.Store.TakeUnreferenced)
	DeletedBytes                                int64
	Wrapped                                     bool // the cursor went back to the first chunk
}

// Pass sweeps (deletes the pending objects whose grace is over and that
// are still unreferenced), marks the chunks trims handed over (handOver),
// and then marks (examines the next Batch chunks from the cursor). It stops at the first Redis failure or lost lease.
func (c *Collector) Pass(ctx context.Context, renew func() error) error {
	_, err := c.RunPass(ctx, renew)
	return err
}

// RunPass is Pass, returning what it did.
func (c *Collector) RunPass(ctx context.Context, renew func() error) (GCStats, error) {
	var st GCStats
	now, err := c.meta.Now(ctx)
	if err != nil {
		return st, err
	}
	if err := c.sweep(ctx, renew, now, &st); err != nil {
		return st, err
	}
	if err := renew(); err != nil {
		return st, err
	}
	if err := c.handOver(ctx, renew, &st); err != nil {
		return st, err
	}
	if err := renew(); err != nil {
		return st, err
	}
	if err := c.mark(ctx, renew, now, &st); err != nil {
		return st, err
	}
	n, err := c.meta.GCPendingCount(ctx)
	if err != nil {
		return st, err
	}
	c.pending.Set(float64(n))
	c.log.Debug("gc pass", "examined", st.Examined, "marked", st.Marked, "deleted", st.Deleted,
		"deleted_bytes", st.DeletedBytes, "unmarked", st.Unmarked, "errors", st.Errors, "pending", n, "wrapped", st.Wrapped)
	return st, nil
}

// forEach runs fn on items, Concurrency at a time, calling renew between
// groups; it returns the first error of fn or renew.
func forEach[T any](ctx context.Context, c *Collector, renew func() error, items []T, fn func(context.Context, T) error) error {
	for start := 0; start < len(items); start += c.cfg.Concurrency {
		group := items[start:min(start+c.cfg.Concurrency, len(items))]
		errs := make([]error, len(group))
		var wg sync.WaitGroup
		for i, it := range group {
			wg.Go(func() { errs[i] = fn(ctx, it) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		if err := renew(); err != nil {
			return err
		}
	}
	return nil
}

// chunkTopics returns the topics the chunk holds batches of, from the
// cache or its directory.
func (c *Collector) chunkTopics(ctx context.Context, ch bucket.Chunk) ([]metadata.ObjectRef, int64, error) {
	id := ch.ID.String()
	c.mu.Lock()
	refs, ok := c.topics[id]
	c.mu.Unlock()
	if ok && ch.Size > 0 {
		return refs, ch.Size, nil
	}
	dir, err := c.bucket.ReadChunkDirectory(ctx, ch.ID)
	if err != nil {
		return nil, 0, err
	}
	seen := map[string]bool{}
	refs = nil
	for _, b := range dir.Batches {
		if !seen[b.Topic] {
			seen[b.Topic] = true
			// No incarnation: a topic of that name refers to the chunk
			// whichever incarnation it is, which errs on keeping it.
			refs = append(refs, metadata.ObjectRef{Topic: b.Topic})
		}
	}
	c.mu.Lock()
	if len(c.topics) >= gcTopicCacheEntries {
		for k := range c.topics { // evict an arbitrary entry
			delete(c.topics, k)
			break
		}
	}
	c.topics[id] = refs
	c.mu.Unlock()
	return refs, dir.Size, nil
}

func (c *Collector) forget(id string) {
	c.mu.Lock()
	delete(c.topics, id)
	c.mu.Unlock()
}
