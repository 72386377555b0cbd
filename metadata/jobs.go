package metadata

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Background jobs (checkpoints, and in time compaction, retention and
// garbage collection) run on one node at a time. A node holds a job's lease
// while it runs the job and renews it each time it runs it again; when the
// node stops renewing, the lease expires and any other node takes the job
// over. Keys, not part of a Snapshot:
//
//	mamba:job:J:lease        string  holder of job J's lease, with a TTL
//	mamba:job:J:last         string  when job J last completed (unix ms)
//
// A lease is not a fence: a holder that stalls past the TTL may run the job
// alongside its successor for a moment. Jobs are written so that this is
// harmless (two checkpoints instead of one, for example).

// JobLease is one node's handle on a job's lease. It is safe for
// concurrent use.
type JobLease struct {
	s      *Store
	job    string
	holder string
	ttl    time.Duration
}

// JobLease returns a handle on the lease of job for holder (a node id),
// which lasts ttl after each Acquire. It does not contact Redis.
func (s *Store) JobLease(job, holder string, ttl time.Duration) *JobLease {
	return &JobLease{s: s, job: job, holder: holder, ttl: max(ttl, time.Millisecond)}
}

func (s *Store) jobKey(job, suffix string) string { return s.prefix + ":job:" + job + ":" + suffix }

// Acquire takes the lease if it is free, or renews it if the holder holds
// it already, for the lease's TTL from now. It reports whether the holder
// holds the lease afterwards.
func (l *JobLease) Acquire(ctx context.Context) (bool, error) {
	n, err := acquireScript.Run(ctx, l.s.rdb, []string{l.s.jobKey(l.job, "lease")}, l.holder, l.ttl.Milliseconds()).Int()
	if err != nil {
		return false, unavailable("acquire lease of job "+l.job, err)
	}
	return n == 1, nil
}

// Release gives the lease up if the holder holds it, so that another node
// can take the job at once instead of after the TTL.
func (l *JobLease) Release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, l.s.rdb, []string{l.s.jobKey(l.job, "lease")}, l.holder).Err(); err != nil {
		return unavailable("release lease of job "+l.job, err)
	}
	return nil
}

// JobHolder returns the node holding the job's lease, or "" when nobody does.
func (s *Store) JobHolder(ctx context.Context, job string) (string, error) {
	v, err := s.rdb.Get(ctx, s.jobKey(job, "lease")).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", unavailable("lease of job "+job, err)
	}
	return v, nil
}

// SetJobLastRun records that the job last completed at t, for every node
// to see (a node that does not hold the lease reports it in its metrics).
// An earlier t than the one recorded is ignored.
func (s *Store) SetJobLastRun(ctx context.Context, job string, t time.Time) error {
	err := setMaxScript.Run(ctx, s.rdb, []string{s.jobKey(job, "last")}, t.UnixMilli()).Err()
	if err != nil {
		return unavailable("record run of job "+job, err)
	}
	return nil
}

// JobLastRun returns when the job last completed, and false if it never
// did.
func (s *Store) JobLastRun(ctx context.Context, job string) (time.Time, bool, error) {
	v, err := s.rdb.Get(ctx, s.jobKey(job, "last")).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, unavailable("last run of job "+job, err)
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("last run of job %s: malformed time %q", job, v)
	}
	return time.UnixMilli(ms), true, nil
}
