package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/internal/metrics"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

// Defaults for CheckpointConfig.
const (
	// DefaultCheckpointInterval is how often a checkpoint is written. It
	// bounds what a restore cannot give back exactly: offsets of records
	// committed after the newest checkpoint may change, and consumer
	// group positions committed after it are lost.
	DefaultCheckpointInterval = 10 * time.Second
	// DefaultCheckpointsKept is how many checkpoints stay in the bucket.
	DefaultCheckpointsKept = 5
)

// CheckpointJob names the checkpoint job's lease and last run in Redis.
const CheckpointJob = "checkpoint"

// CheckpointConfig configures a Checkpointer. Zero fields take their
// defaults.
type CheckpointConfig struct {
	// NodeID names this node in checkpoint keys and as the lease holder;
	// required.
	NodeID string
	// Interval is the time between checkpoints.
	Interval time.Duration
	// Keep is how many of the newest checkpoints are kept; older ones are
	// deleted after each write.
	Keep int
	// LeaseTTL is how long the checkpoint lease lasts without renewal:
	// how long the job pauses when its node dies. Default: three
	// intervals, at least 30 seconds.
	LeaseTTL time.Duration
	// Now is the clock for metrics; time.Now when nil. Checkpoint times
	// come from Redis.
	Now func() time.Time
}

func (cfg CheckpointConfig) withDefaults() CheckpointConfig {
	if cfg.Interval == 0 {
		cfg.Interval = DefaultCheckpointInterval
	}
	if cfg.Keep == 0 {
		cfg.Keep = DefaultCheckpointsKept
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = max(3*cfg.Interval, 30*time.Second)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}

// Validate reports every bad field at once, after defaults are applied.
func (cfg CheckpointConfig) Validate() error {
	cfg = cfg.withDefaults()
	var errs []error
	if err := chunkid.ValidateNode(cfg.NodeID); err != nil {
		errs = append(errs, fmt.Errorf("node id: %w", err))
	}
	if cfg.Interval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("checkpoint interval: %v is under 10ms", cfg.Interval))
	}
	if cfg.Keep < 1 || cfg.Keep > 1000 {
		errs = append(errs, fmt.Errorf("checkpoints kept: %d is outside 1..1000", cfg.Keep))
	}
	if cfg.LeaseTTL < cfg.Interval {
		errs = append(errs, fmt.Errorf("lease ttl: %v is shorter than the interval %v", cfg.LeaseTTL, cfg.Interval))
	}
	return errors.Join(errs...)
}

// CheckpointInfo describes one written checkpoint.
type CheckpointInfo struct {
	Key      string
	Time     time.Time
	Bytes    int
	Duration time.Duration
}

// Checkpointer writes metadata checkpoints to the bucket while its node
// holds the checkpoint lease. Every node runs one; Run it, then Close it
// after the node has drained, which writes a last checkpoint.
type Checkpointer struct {
	cfg    CheckpointConfig
	meta   *metadata.Store
	bucket *bucket.Bucket
	lease  *metadata.JobLease
	log    *slog.Logger

	written, failures prometheus.Counter
	lastBytes         prometheus.Gauge
	lastDuration      prometheus.Gauge

	mu     sync.Mutex // serialises ticks, checkpoints and Close
	closed bool

	lastMu  sync.Mutex
	last    time.Time // newest checkpoint this node knows of
	started time.Time
}

// NewCheckpointer returns a Checkpointer, registering its metrics on reg
// (which may be nil) with internal/metrics; it reaches store through
// bucket.Instrument unless store is instrumented already. It does not
// contact Redis or the bucket.
func NewCheckpointer(cfg CheckpointConfig, meta *metadata.Store, store objectstore.Store, reg prometheus.Registerer, log *slog.Logger) (*Checkpointer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("checkpoint config: %w", err)
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Checkpointer{
		cfg:     cfg,
		meta:    meta,
		bucket:  bucket.New(bucket.Instrument(store, reg)),
		lease:   meta.JobLease(CheckpointJob, cfg.NodeID, cfg.LeaseTTL),
		log:     log,
		started: cfg.Now(),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamba_checkpoints_written_total", Help: "Metadata checkpoints this node wrote to the bucket.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamba_checkpoint_failures_total", Help: "Checkpoints this node failed to take or write.",
		}),
		lastBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mamba_checkpoint_last_bytes", Help: "Size of the last checkpoint this node wrote.",
		}),
		lastDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mamba_checkpoint_last_duration_seconds", Help: "Time the last checkpoint this node wrote took, snapshot to PUT.",
		}),
	}
	c.written = metrics.Register(reg, c.written)
	c.failures = metrics.Register(reg, c.failures)
	c.lastBytes = metrics.Register(reg, c.lastBytes)
	c.lastDuration = metrics.Register(reg, c.lastDuration)
	metrics.RegisterAll(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mamba_checkpoint_age_seconds",
		Help: "Seconds since the newest checkpoint any node wrote, as this node last learned it " +
			"(since this node started, when it knows of none).",
	}, c.age))
	return c, nil
}

func (c *Checkpointer) age() float64 {
	c.lastMu.Lock()
	since := c.last
	if since.IsZero() {
		since = c.started
	}
	c.lastMu.Unlock()
	return math.Max(0, c.cfg.Now().Sub(since).Seconds())
}

// Run writes a checkpoint every interval while this node holds the lease,
// until ctx ends. Failures are logged and counted, never fatal: the next
// interval tries again. It returns nil when ctx ends.
func (c *Checkpointer) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := c.tick(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("checkpoint", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// tick writes a checkpoint if this node holds (or can take) the lease, and
// otherwise learns when the holder last wrote one. It reports whether it
// wrote.
func (c *Checkpointer) tick(ctx context.Context) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false, nil // Close wrote the last checkpoint and gave the lease up
	}
	held, err := c.lease.Acquire(ctx)
	if err != nil {
		c.failures.Inc()
		return false, err
	}
	if !held {
		last, ok, err := c.meta.JobLastRun(ctx, CheckpointJob)
		if err == nil && ok {
			c.noteLast(last)
		}
		return false, err
	}
	ctx, release := c.holdLease(ctx)
	_, err = c.checkpointLocked(ctx)
	if lost := release(); lost != nil && err != nil {
		err = fmt.Errorf("%w (%w)", err, lost)
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// errLeaseLost ends a checkpoint write whose node no longer holds the
// lease: another node has taken the job over.
var errLeaseLost = errors.New("checkpoint lease lost to another node")

// holdLease renews the lease every third of its TTL while a checkpoint is
// taken and written, so that a write longer than the TTL (a large index, a
// slow bucket) does not let a second node start another one alongside it.
// If the lease is lost all the same, the returned context is cancelled
// and the write stops. release stops the renewals and returns
// errLeaseLost if the lease was lost.
func (c *Checkpointer) holdLease(ctx context.Context) (context.Context, func() error) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(c.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			held, err := c.lease.Acquire(ctx)
			if err != nil {
				c.log.Warn("renew checkpoint lease", "err", err)
				continue // the write goes on; the lease may still hold
			}
			if !held {
				cancel(errLeaseLost)
				return
			}
		}
	}()
	return ctx, func() error {
		close(stop)
		<-done
		err := context.Cause(ctx)
		cancel(nil)
		if errors.Is(err, errLeaseLost) {
			return err
		}
		return nil
	}
}

func (c *Checkpointer) noteLast(t time.Time) {
	c.lastMu.Lock()
	if t.After(c.last) {
		c.last = t
	}
	c.lastMu.Unlock()
}

// Checkpoint takes a snapshot and writes it to the bucket now, whether or
// not this node holds the lease, then deletes old checkpoints. Calls are
// serialised.
func (c *Checkpointer) Checkpoint(ctx context.Context) (CheckpointInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checkpointLocked(ctx)
}

func (c *Checkpointer) checkpointLocked(ctx context.Context) (CheckpointInfo, error) {
	info, err := c.write(ctx)
	if err != nil {
		c.failures.Inc()
		return info, err
	}
	c.written.Inc()
	c.lastBytes.Set(float64(info.Bytes))
	c.lastDuration.Set(info.Duration.Seconds())
	c.noteLast(info.Time)
	if err := c.meta.SetJobLastRun(ctx, CheckpointJob, info.Time); err != nil {
		c.log.Warn("record checkpoint time", "err", err)
	}
	if err := c.prune(ctx, info.Key); err != nil {
		c.log.Warn("delete old checkpoints", "err", err)
	}
	c.log.Debug("checkpoint written", "key", info.Key, "bytes", info.Bytes, "duration", info.Duration)
	return info, nil
}

func (c *Checkpointer) write(ctx context.Context) (CheckpointInfo, error) {
	start := time.Now()
	snap, err := c.meta.Snapshot(ctx)
	if err != nil {
		return CheckpointInfo{}, fmt.Errorf("take snapshot: %w", err)
	}
	data, err := EncodeCheckpoint(snap)
	if err != nil {
		return CheckpointInfo{}, err
	}
	key, err := c.bucket.PutCheckpoint(ctx, snap.Time, c.cfg.NodeID, data)
	if err != nil {
		return CheckpointInfo{}, err
	}
	return CheckpointInfo{Key: key, Time: snap.Time, Bytes: len(data), Duration: time.Since(start)}, nil
}

// prune deletes all but the newest Keep checkpoints, never the one just
// written (a node whose clock is behind must not delete its own).
func (c *Checkpointer) prune(ctx context.Context, keep string) error {
	cps, err := c.bucket.ListCheckpoints(ctx)
	if err != nil {
		return err
	}
	if len(cps) <= c.cfg.Keep {
		return nil
	}
	var errs []error
	for _, cp := range cps[:len(cps)-c.cfg.Keep] {
		if cp.Key == keep {
			continue
		}
		if err := c.bucket.DeleteCheckpoint(ctx, cp); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", cp.Key, err))
		}
	}
	return errors.Join(errs...)
}

// Close writes a last checkpoint if this node holds the lease or nobody
// does, then releases the lease so that another node takes the job over at
// once. Call it after the node has drained, so the checkpoint holds
// everything the node committed. Later calls do nothing.
func (c *Checkpointer) Close(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	held, err := c.lease.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("final checkpoint: %w", err)
	}
	if !held {
		return nil
	}
	_, err = c.checkpointLocked(ctx)
	if rerr := c.lease.Release(ctx); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("final checkpoint: %w", err)
	}
	return nil
}
