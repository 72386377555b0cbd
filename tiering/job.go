package tiering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mambamq/mamba/internal/metrics"
	"github.com/mambamq/mamba/metadata"
)

// A Pass is one run of a background job. It calls renew between bounded
// steps of its work: renew extends the job's lease and fails once this
// node no longer holds it (or ctx ended), and the pass must then stop, so
// that a node that stalled never works on beside the one that took over.
type Pass func(ctx context.Context, renew func() error) error

// JobConfig configures a Job.
type JobConfig struct {
	// Name is the job's name, its lease's name in Redis and its label in
	// metrics.
	Name string
	// Holder names this node in the lease.
	Holder string
	// Interval is the time between the starts of two passes.
	Interval time.Duration
	// LeaseTTL is how long the lease lasts after each renewal; a node that
	// dies mid-pass hands the job on after at most this long.
	LeaseTTL time.Duration
	// Idle, if set, is called when another node holds the lease: a job
	// whose pass publishes gauges clears them there, so that only the
	// node doing the work reports them.
	Idle func()
}

// Validate reports every problem with the configuration.
func (c JobConfig) Validate() error {
	var errs []error
	if c.Name == "" || c.Holder == "" {
		errs = append(errs, errors.New("job: name and holder are required"))
	}
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("job %s: interval %v is not positive", c.Name, c.Interval))
	}
	if c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("job %s: lease TTL %v is under 1s", c.Name, c.LeaseTTL))
	}
	return errors.Join(errs...)
}

// Job runs a Pass every interval on whichever node holds the job's lease:
// every node runs a Job, one at a time does the work, and when it dies
// another takes over once the lease runs out.
type Job struct {
	cfg   JobConfig
	meta  *metadata.Store
	lease *metadata.JobLease
	pass  Pass
	log   *slog.Logger

	runs     *prometheus.CounterVec
	duration prometheus.Histogram
}

// NewJob returns a Job; reg (which may be nil) gets its metrics.
func NewJob(cfg JobConfig, meta *metadata.Store, pass Pass, reg prometheus.Registerer, log *slog.Logger) (*Job, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	label := prometheus.Labels{"job": cfg.Name}
	runs := metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name:        "mamba_tiering_job_runs_total",
		Help:        "Passes of background jobs this node ran, by job and result (ok, error, lost_lease).",
		ConstLabels: label,
	}, []string{"result"}))
	duration := metrics.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:        "mamba_tiering_job_duration_seconds",
		Help:        "Duration of background job passes this node ran, by job.",
		ConstLabels: label,
		Buckets:     prometheus.ExponentialBuckets(0.001, 4, 10),
	}))
	return &Job{
		cfg: cfg, meta: meta, lease: meta.JobLease(cfg.Name, cfg.Holder, cfg.LeaseTTL), pass: pass,
		log: log.With("job", cfg.Name), runs: runs, duration: duration,
	}, nil
}

// Name is the job's name (JobConfig.Name).
func (j *Job) Name() string { return j.cfg.Name }

// errLeaseLost ends a pass whose node no longer holds the job's lease.
var errLeaseLost = errors.New("lease lost")

// RunOnce runs one pass if this node holds (or can take) the lease. It
// reports whether it ran.
func (j *Job) RunOnce(ctx context.Context) (bool, error) {
	held, err := j.lease.Acquire(ctx)
	if err != nil || !held {
		if err == nil && j.cfg.Idle != nil {
			j.cfg.Idle()
		}
		return false, err
	}
	start := time.Now()
	renew := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		held, err := j.lease.Acquire(ctx)
		if err != nil {
			return err
		}
		if !held {
			return errLeaseLost
		}
		return nil
	}
	err = j.pass(ctx, renew)
	j.duration.Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, errLeaseLost):
		j.runs.WithLabelValues("lost_lease").Inc()
		return true, err
	case err != nil:
		j.runs.WithLabelValues("error").Inc()
		return true, err
	}
	j.runs.WithLabelValues("ok").Inc()
	if err := j.meta.SetJobLastRun(ctx, j.cfg.Name, time.Now()); err != nil {
		j.log.Warn("record job run", "err", err)
	}
	return true, nil
}

// Run runs passes every interval until ctx ends, then gives the lease up
// so that another node can take the job at once. Failures are logged and
// counted, never fatal. It returns nil when ctx ends.
func (j *Job) Run(ctx context.Context) error {
	t := time.NewTicker(j.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := j.RunOnce(ctx); err != nil && ctx.Err() == nil {
			j.log.Warn("background job pass", "err", err)
		}
		select {
		case <-ctx.Done():
			release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := j.lease.Release(release); err != nil {
				j.log.Warn("release job lease", "err", err)
			}
			cancel()
			return nil
		case <-t.C:
		}
	}
}
