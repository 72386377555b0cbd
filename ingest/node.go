// Package ingest is Mamba's ingest node: it takes records (through the
// Service interface, which package ingest/httpapi serves over HTTP),
// buffers them for all topics at once, writes each flush as one chunk to
// the bucket, commits the chunk's offsets in Redis and only then answers
// the producers. It also serves fetches by offset, from its cache of recent
// batches, from its catch-up cache, or with ranged GETs that read adjacent
// batches of a chunk together (fetchread.go), and long-polls at the end of a
// partition until a commit on any node wakes it. It owns the validation of
// a caller's input (validate.go); the HTTP layer only parses.
//
// A Node is stateless: everything it acknowledged is in the bucket and in
// Redis, so any number of nodes can serve the same topics behind a plain
// load balancer, and killing one loses nothing that was acknowledged.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/internal/membudget"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

// topicCacheTTL is how long a node trusts its copy of a topic's registry
// entry. A topic deleted meanwhile is caught by the commit, which checks
// the topic's id.
const topicCacheTTL = 2 * time.Second

// Node is one ingest node. Create it with New, start it with Run, and stop
// it with Close, which drains what was accepted.
type Node struct {
	cfg     Config
	meta    *metadata.Store
	bucket  *bucket.Bucket // every object key comes from package bucket
	log     *slog.Logger
	metrics *nodeMetrics
	ids     *chunkid.Generator
	now     func() time.Time
	cache   *batchCache // recently written batches, for tailing consumers
	catchUp *batchCache // batches read from the bucket by catch-up fetches
	// budget is the node's memory budget (Config.MemoryBudget): buffered
	// requests, fetches, long-polls and both caches reserve from it, and
	// the HTTP layer reserves request bodies from it (Budget).
	budget *membudget.Budget
	gets   singleflight.Group
	// lookup is meta.Lookup (a field so that tests of the read path need
	// no Redis).
	lookup func(ctx context.Context, topic string, partition int32, offset int64, maxEntries int) ([]metadata.IndexEntry, metadata.PartitionStats, error)

	topicsMu sync.Mutex
	topics   map[string]cachedTopic

	mu       sync.Mutex
	open     *pendingChunk // accepting requests; nil when empty
	buffered int64         // bytes accepted and not yet answered
	closing  bool
	stopping chan struct{} // closed by Close: long-polls return at once
	drained  chan struct{} // closed when closing and nothing is buffered

	// Sealed chunks wait here, in seal order, for the pipeline; the
	// queue is a slice so that sealing never blocks while holding mu.
	sealQueue  []*pendingChunk
	sealSignal chan struct{}

	waiters *waiters
	// longPolls counts the fetches waiting at the high watermark.
	longPolls atomic.Int64
}

type cachedTopic struct {
	topic   metadata.Topic
	fetched time.Time
}

// New returns a node. It does not start any work until Run. The node
// reaches store through bucket.Instrument, registered on reg, unless store
// is instrumented already.
func New(cfg Config, meta *metadata.Store, store objectstore.Store, reg prometheus.Registerer, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ingest config: %w", err)
	}
	cfg = cfg.withDefaults()
	if limit := meta.CommitAgeLimit() / 2; cfg.WriteTimeout > limit {
		return nil, fmt.Errorf("ingest config: write timeout: %v is over %v, half the age past which Redis refuses a chunk's commit (--max-commit-age)",
			cfg.WriteTimeout, limit)
	}
	ids, err := chunkid.NewGenerator(cfg.NodeID, nil)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	budget := membudget.New(cfg.MemoryBudget, reg)
	cache, catchUp := newBatchCache(cfg.CacheBytes, budget.Start(membudget.Cache)), newBatchCache(cfg.CatchUpCacheBytes, budget.Start(membudget.Cache))
	n := &Node{
		budget:     budget,
		cfg:        cfg,
		meta:       meta,
		bucket:     bucket.New(bucket.Instrument(store, reg)),
		log:        log,
		metrics:    newNodeMetrics(reg, cache, catchUp),
		ids:        ids,
		now:        time.Now,
		cache:      cache,
		catchUp:    catchUp,
		topics:     make(map[string]cachedTopic),
		drained:    make(chan struct{}),
		stopping:   make(chan struct{}),
		sealSignal: make(chan struct{}, 1),
		waiters:    newWaiters(),
	}
	if meta != nil {
		n.lookup = meta.Lookup
	}
	return n, nil
}

var _ Service = (*Node)(nil)

// Budget is the node's memory budget, which the HTTP layer reserves
// request bodies and responses from (httpapi.Options.Budget).
func (n *Node) Budget() *membudget.Budget { return n.budget }

// Run runs the flush pipeline and the commit subscription until Close has
// drained the node or ctx ends. If ctx ends first, requests still waiting
// get ErrShuttingDown.
func (n *Node) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait() // runs after cancel: the goroutines stop on ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	sub, err := n.meta.SubscribeCommits(ctx)
	if err != nil {
		return err
	}
	defer sub.Close()
	wg.Go(func() {
		_ = sub.Run(ctx, func(e metadata.CommitEvent) { n.waiters.wake(e.Topic, e.Partition) }, func() {
			n.metrics.missedCommits.Inc()
			n.waiters.wakeAll()
		})
	})

	commitQueue := make(chan *pendingChunk, 64)
	wg.Go(func() { n.dispatch(ctx, commitQueue) })
	wg.Go(func() { n.commitLoop(ctx, commitQueue) })

	select {
	case <-n.drained:
	case <-ctx.Done():
		n.abort()
	}
	return nil
}

// abort stops a node that was not drained: it takes no more records and
// fails what it holds that the pipeline has not taken, so that no producer
// waits for an answer that cannot come.
func (n *Node) abort() {
	n.mu.Lock()
	if !n.closing {
		n.closing = true
		close(n.stopping)
	}
	n.sealLocked()
	n.mu.Unlock()
	n.failQueued(ErrShuttingDown)
}

// Close stops accepting records, flushes what is buffered and waits until
// every accepted request has been answered, or ctx ends.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	if !n.closing {
		n.closing = true
		close(n.stopping)
		n.sealLocked()
		n.checkDrainedLocked()
	}
	n.mu.Unlock()
	select {
	case <-n.drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain ingest node: %w", ctx.Err())
	}
}

// checkDrainedLocked closes drained once the node is closing and holds no
// unanswered bytes.
func (n *Node) checkDrainedLocked() {
	if n.closing && n.buffered == 0 && n.open == nil {
		select {
		case <-n.drained:
		default:
			close(n.drained)
		}
	}
}

// Ready reports whether Redis and the bucket answer.
func (n *Node) Ready(ctx context.Context) error {
	if err := n.meta.Ping(ctx); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if err := n.bucket.Ping(ctx); err != nil {
		return fmt.Errorf("bucket: %w", err)
	}
	n.mu.Lock()
	closing := n.closing
	n.mu.Unlock()
	if closing {
		return ErrShuttingDown
	}
	return nil
}

// CreateTopic writes the topic's configuration to the bucket, then
// registers it in Redis: written before the topic becomes visible, the
// configs in the bucket alone know every topic (restore relies on it).
func (n *Node) CreateTopic(ctx context.Context, cfg TopicConfig) (TopicConfig, error) {
	if err := ValidateTopicConfig(cfg); err != nil {
		return TopicConfig{}, err
	}
	t := metadata.Topic{
		Name:           cfg.Name,
		ID:             ulid.Make().String(),
		Partitions:     cfg.Partitions,
		RetentionMS:    cfg.RetentionMS,
		RetentionBytes: cfg.RetentionBytes,
		CreatedMS:      n.now().UnixMilli(),
	}
	if err := t.Validate(); err != nil {
		return TopicConfig{}, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	if _, err := n.meta.Topic(ctx, t.Name); err == nil {
		return TopicConfig{}, fmt.Errorf("topic %s: %w", t.Name, ErrTopicExists)
	} else if !errors.Is(err, metadata.ErrTopicNotFound) {
		return TopicConfig{}, metaErr(err)
	}
	if _, err := n.bucket.PutTopicConfig(ctx, bucket.TopicConfig(t)); err != nil {
		return TopicConfig{}, fmt.Errorf("write topic config: %w: %w", ErrUnavailable, err)
	}
	if err := n.meta.CreateTopic(ctx, t); err != nil {
		// Lost a race with another creator: our config object names an
		// incarnation that never existed.
		_ = n.bucket.DeleteTopicConfig(context.WithoutCancel(ctx), t.Name, t.ID)
		return TopicConfig{}, metaErr(err)
	}
	return topicConfig(t), nil
}

// ListTopics returns every topic.
func (n *Node) ListTopics(ctx context.Context) ([]TopicConfig, error) {
	ts, err := n.meta.Topics(ctx)
	if err != nil {
		return nil, metaErr(err)
	}
	out := make([]TopicConfig, len(ts))
	for i, t := range ts {
		out[i] = topicConfig(t)
	}
	return out, nil
}

// DeleteTopic removes the topic's configuration from the bucket, then
// from Redis. Its chunks stay until garbage collection.
func (n *Node) DeleteTopic(ctx context.Context, name string) error {
	t, err := n.meta.Topic(ctx, name)
	if err != nil {
		return metaErr(err)
	}
	if err := n.bucket.DeleteTopicConfig(ctx, t.Name, t.ID); err != nil {
		return fmt.Errorf("delete topic config: %w: %w", ErrUnavailable, err)
	}
	if err := n.meta.DeleteTopic(ctx, name); err != nil {
		return metaErr(err)
	}
	n.topicsMu.Lock()
	delete(n.topics, name)
	n.topicsMu.Unlock()
	return nil
}

// topic returns the topic's registry entry, from a short-lived cache.
func (n *Node) topic(ctx context.Context, name string) (metadata.Topic, error) {
	now := n.now()
	n.topicsMu.Lock()
	c, ok := n.topics[name]
	n.topicsMu.Unlock()
	if ok && now.Sub(c.fetched) < topicCacheTTL {
		return c.topic, nil
	}
	t, err := n.meta.Topic(ctx, name)
	if err != nil {
		return metadata.Topic{}, metaErr(err)
	}
	n.topicsMu.Lock()
	n.topics[name] = cachedTopic{topic: t, fetched: now}
	n.topicsMu.Unlock()
	return t, nil
}

func (n *Node) forgetTopic(name string) {
	n.topicsMu.Lock()
	delete(n.topics, name)
	n.topicsMu.Unlock()
}

// metaErr maps metadata errors to the node's: Redis failures become
// ErrUnavailable, the rest keep their sentinels.
func metaErr(err error) error {
	if errors.Is(err, metadata.ErrUnavailable) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// recordSize is what a record counts against buffer and size limits.
func recordSize(key, value []byte, headers []chunk.Header) int {
	size := len(key) + len(value) + 16
	for _, h := range headers {
		size += len(h.Name) + len(h.Value) + 4
	}
	return size
}
