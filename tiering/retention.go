package tiering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mambamq/mamba/internal/metrics"
	"github.com/mambamq/mamba/metadata"
)

// RetentionJobName is the retention job's name: its lease in Redis and its
// job label in metrics.
const RetentionJobName = "retention"

// Defaults of RetentionConfig.
const (
	// DefaultRetentionInterval is the time between two retention passes.
	DefaultRetentionInterval = 30 * time.Second
	// DefaultRetentionLeaseTTL is how long a dead node holds the retention
	// job. A step (one Head and one Trim of at most MaxTrim entries) takes
	// milliseconds, so the lease is renewed far more often than this.
	DefaultRetentionLeaseTTL = 30 * time.Second
)

// RetentionConfig configures the retention pass.
type RetentionConfig struct {
	// MaxTrim is the most index entries one step trims from one partition,
	// 1..metadata.MaxTrimEntries; zero means metadata.MaxTrimEntries.
	MaxTrim int
	// Now is the clock entries' ages are measured by, read once at the
	// start of each pass; nil means Redis's clock (metadata.Store.Now), the
	// one commit and garbage collection use, so that no node's clock skew
	// trims early.
	Now func() time.Time
}

// Validate reports every problem with the configuration.
func (c RetentionConfig) Validate() error {
	if c.MaxTrim < 0 || c.MaxTrim > metadata.MaxTrimEntries {
		return fmt.Errorf("retention: max trim %d is outside 1..%d", c.MaxTrim, metadata.MaxTrimEntries)
	}
	return nil
}

// Retention enforces topics' retention_ms and retention_bytes by trimming
// the oldest index entries of each partition (metadata.Store.Trim), which
// raises the partition's log start offset. It removes no object: garbage
// collection deletes an object once no index entry names it.
//
// The rules, applied to each partition's entries in offset order, an entry
// (one batch) at a time and only ever to a prefix of the index:
//
//   - time: with retention_ms > 0, an entry goes once its chunk was
//     created more than retention_ms ago. The time of an entry is its
//     chunk's creation time, decoded from the chunk id: the append time of
//     all its records (Kafka's LogAppendTime), never the producer's record
//     timestamps. An entry whose object id carries no time is kept.
//   - bytes: with retention_bytes > 0, an entry goes while the partition's
//     stored bytes minus the entry's length stay at or above
//     retention_bytes, so the partition is left at or just above the bound
//     (never below it by trimming).
//
// The first entry that neither rule removes stops the partition's trim:
// entries behind it wait even if they are older, so offsets stay
// contiguous from the log start.
type Retention struct {
	meta    *metadata.Store
	maxTrim int
	now     func() time.Time
	log     *slog.Logger

	trimmedEntries prometheus.Counter
	trimmedBytes   prometheus.Counter
	storedBytes    *prometheus.GaugeVec
	objects        *prometheus.GaugeVec
	logStartAge    *prometheus.GaugeVec

	mu     sync.Mutex
	gauged map[string]bool // topics with gauge series
}

// NewRetention returns the retention pass; reg (which may be nil) gets its
// metrics.
func NewRetention(cfg RetentionConfig, meta *metadata.Store, reg prometheus.Registerer, log *slog.Logger) (*Retention, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxTrim == 0 {
		cfg.MaxTrim = metadata.MaxTrimEntries
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return metrics.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"topic"}))
	}
	return &Retention{
		meta: meta, maxTrim: cfg.MaxTrim, now: cfg.Now, log: log.With("job", RetentionJobName),
		trimmedEntries: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamba_retention_trimmed_entries_total",
			Help: "Index entries (batches) retention trimmed on this node.",
		})),
		trimmedBytes: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamba_retention_trimmed_bytes_total",
			Help: "Stored bytes of the index entries retention trimmed on this node.",
		})),
		storedBytes: gauge("mamba_topic_stored_bytes",
			"Bytes of the topic's indexed batches, set by the retention job's lease holder at the end of each pass."),
		objects: gauge("mamba_topic_objects",
			"Objects the topic's index refers to, set by the retention job's lease holder at the end of each pass."),
		logStartAge: gauge("mamba_topic_log_start_age_seconds",
			"Age of the topic's oldest remaining batch by its chunk's creation time (0 when empty), set by the retention job's lease holder."),
		gauged: map[string]bool{},
	}, nil
}

// NewRetentionJob returns the retention job: the pass of NewRetention(cfg,
// ...) run under a lease as job.Name (normally RetentionJobName).
func NewRetentionJob(job JobConfig, cfg RetentionConfig, meta *metadata.Store, reg prometheus.Registerer, log *slog.Logger) (*Job, error) {
	r, err := NewRetention(cfg, meta, reg, log)
	if err != nil {
		return nil, err
	}
	job.Idle = r.clearGauges
	return NewJob(job, meta, r.Pass, reg, log)
}

// clearGauges deletes every per-topic gauge: another node holds the
// retention lease and publishes them.
func (r *Retention) clearGauges() { r.setGauges(nil) }

// topicGauges are one topic's figures at the end of a pass.
type topicGauges struct {
	stored, objects int64
	logStartAge     time.Duration
}

// Pass trims every partition of every topic, in steps of at most MaxTrim
// entries with renew called after each, then sets the per-topic gauges and
// deletes those of topics that no longer exist. A topic deleted (or
// recreated) during the pass is skipped. It stops at the first failure of
// renew or Redis; the next pass starts over, and the trims done so far
// stand.
func (r *Retention) Pass(ctx context.Context, renew func() error) error {
	now, err := r.clock(ctx)
	if err != nil {
		return err
	}
	topics, err := r.meta.Topics(ctx)
	if err != nil {
		return err
	}
	seen := make(map[string]topicGauges, len(topics))
	for _, t := range topics {
		if err := renew(); err != nil {
			return err
		}
		g, err := r.topic(ctx, t, now, renew)
		if errors.Is(err, metadata.ErrTopicNotFound) {
			r.log.Debug("topic deleted during retention pass", "topic", t.Name)
			continue
		}
		if err != nil {
			return err
		}
		seen[t.Name] = g
	}
	r.setGauges(seen)
	return nil
}

// clock returns the pass's time: the configured clock's, or Redis's.
func (r *Retention) clock(ctx context.Context) (time.Time, error) {
	if r.now != nil {
		return r.now(), nil
	}
	return r.meta.Now(ctx)
}

// topic trims each of the topic's partitions at now and returns its
// figures.
func (r *Retention) topic(ctx context.Context, t metadata.Topic, now time.Time, renew func() error) (topicGauges, error) {
	if t.RetentionMS > 0 || t.RetentionBytes > 0 {
		for p := range t.Partitions {
			if err := r.partition(ctx, t, int32(p), now, renew); err != nil {
				return topicGauges{}, err
			}
		}
	}
	u, err := r.meta.Usage(ctx, t.Name)
	if err != nil {
		return topicGauges{}, err
	}
	first, ok, err := r.meta.FirstEntries(ctx, t.Name, t.Partitions)
	if err != nil {
		return topicGauges{}, err
	}
	// Deleted since the trims: no gauges for it.
	if cur, err := r.meta.Topic(ctx, t.Name); err != nil {
		return topicGauges{}, err
	} else if cur.ID != t.ID {
		return topicGauges{}, fmt.Errorf("topic %s recreated: %w", t.Name, metadata.ErrTopicNotFound)
	}
	return topicGauges{stored: u.StoredBytes, objects: u.Objects, logStartAge: metadata.LogStartAge(first, ok, now)}, nil
}

// maxLostTrims is how many times in a row a partition's trim may find its
// head changed (by a compaction swap, say) before the pass leaves the
// partition to the next pass.
const maxLostTrims = 3

// partition trims the partition's expired entries at now, one step (one
// TopicHead, one Trim of at most maxTrim entries, one renew) at a time,
// until the first entry that stays. Each step decides by the topic's
// retention as TopicHead reads it with the entries, not as the pass
// started: a retention raised (or turned off) during the pass stops the
// trim at the next step.
func (r *Retention) partition(ctx context.Context, t metadata.Topic, p int32, now time.Time, renew func() error) error {
	for lost := 0; lost < maxLostTrims; {
		h, err := r.meta.TopicHead(ctx, t.Name, p, r.maxTrim)
		if err != nil {
			return err
		}
		if h.Topic.ID != t.ID {
			return fmt.Errorf("topic %s recreated: %w", t.Name, metadata.ErrTopicNotFound)
		}
		n, freed := expired(h.Topic, h.Entries, h.StoredBytes, now)
		if n == 0 {
			return nil
		}
		_, trimmed, err := r.meta.Trim(ctx, h.Topic, p, h.Entries[:n])
		if err != nil {
			return err
		}
		if trimmed {
			lost = 0
			r.trimmedEntries.Add(float64(n))
			r.trimmedBytes.Add(float64(freed))
		} else {
			lost++ // the head changed under us: read it again
		}
		if err := renew(); err != nil {
			return err
		}
	}
	r.log.Info("retention: partition's head keeps changing, left for the next pass", "topic", t.Name, "partition", p)
	return nil
}

// expired returns how many of entries (a partition's oldest, in offset
// order, with the partition's stored bytes) retention removes at now, and
// their bytes: the longest prefix each of whose entries is older than
// retention_ms or leaves at least retention_bytes behind.
func expired(t metadata.Topic, entries []metadata.IndexEntry, stored int64, now time.Time) (int, int64) {
	keep := time.Duration(t.RetentionMS) * time.Millisecond
	var freed int64
	for i, e := range entries {
		old := false
		if t.RetentionMS > 0 {
			created, ok := e.Created()
			old = ok && now.Sub(created) > keep
		}
		big := t.RetentionBytes > 0 && stored-freed-e.Length >= t.RetentionBytes
		if !old && !big {
			return i, freed
		}
		freed += e.Length
	}
	return len(entries), freed
}

// setGauges sets the gauges of the topics in seen and deletes those of
// every other topic.
func (r *Retention) setGauges(seen map[string]topicGauges) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range r.gauged {
		if _, ok := seen[name]; !ok {
			r.storedBytes.DeleteLabelValues(name)
			r.objects.DeleteLabelValues(name)
			r.logStartAge.DeleteLabelValues(name)
			delete(r.gauged, name)
		}
	}
	for name, g := range seen {
		r.storedBytes.WithLabelValues(name).Set(float64(g.stored))
		r.objects.WithLabelValues(name).Set(float64(g.objects))
		r.logStartAge.WithLabelValues(name).Set(g.logStartAge.Seconds())
		r.gauged[name] = true
	}
}
