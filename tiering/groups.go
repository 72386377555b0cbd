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

// Group janitor defaults.
const (
	// DefaultGroupRetention is how long a group with no live member is
	// kept after its last activity, like Kafka's offsets.retention.minutes.
	DefaultGroupRetention = 7 * 24 * time.Hour
	// DefaultGroupJanitorInterval is the time between janitor passes.
	DefaultGroupJanitorInterval = time.Minute
	// DefaultGroupScanCount is the SSCAN/HSCAN COUNT of one step.
	DefaultGroupScanCount = 100
)

// GroupJanitorConfig configures a GroupJanitor.
type GroupJanitorConfig struct {
	// Retention is how long a group with no live member is kept after its
	// last join, heartbeat, leave or offset commit. Zero disables expiry;
	// the offsets of deleted topics are removed all the same.
	Retention time.Duration
	// ScanCount is how many groups (and offsets of one group) a step
	// asks Redis for; zero means DefaultGroupScanCount.
	ScanCount int64
}

// GroupJanitor is the pass of the "groups" job: it deletes consumer
// groups that have been empty and idle for longer than the retention, and
// removes every group's committed offsets of topics that no longer exist.
//
// Each step is bounded: one page of the groups set, then per group one
// delete_group.lua call (O(1): the group's keys go with UNLINK) or pages of
// its offsets, each followed by at most MaxForgetOffsets removals. The pass
// calls renew between steps and stops when the lease is lost. A group that
// comes and goes during the pass is handled at the next one (SSCAN returns
// every group present for the whole scan).
//
// A group's age is measured with Redis's clock (TIME in delete_group.lua),
// as its liveness is, not the lease holder's. That a topic exists is
// remembered for the rest of the pass; that it does not, only for the page
// of offsets it was looked up for (read before the lookup): a topic
// created again during the pass keeps the offsets committed to it since.
type GroupJanitor struct {
	meta *metadata.Store
	cfg  GroupJanitorConfig
	log  *slog.Logger

	expired        prometheus.Counter
	offsetsRemoved prometheus.Counter
}

// NewGroupJanitor returns the janitor; reg (which may be nil) gets its
// metrics, log (which may be nil) its reports.
func NewGroupJanitor(meta *metadata.Store, cfg GroupJanitorConfig, reg prometheus.Registerer, log *slog.Logger) (*GroupJanitor, error) {
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("group janitor: retention %v is negative", cfg.Retention)
	}
	if cfg.ScanCount <= 0 {
		cfg.ScanCount = DefaultGroupScanCount
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &GroupJanitor{
		meta: meta, cfg: cfg, log: log,
		expired: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamba_groups_expired_total",
			Help: "Consumer groups the group janitor deleted: no live member and idle for longer than --group-retention.",
		})),
		offsetsRemoved: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mamba_group_offsets_removed_total",
			Help: "Committed offsets of deleted topics the group janitor removed from groups.",
		})),
	}, nil
}

// Pass is one janitor pass over every group (a tiering Pass).
func (g *GroupJanitor) Pass(ctx context.Context, renew func() error) error {
	exists := map[string]bool{} // topics found to exist during this pass
	var cursor uint64
	for {
		names, next, err := g.meta.ScanGroups(ctx, cursor, g.cfg.ScanCount)
		if err != nil {
			return err
		}
		for _, name := range names {
			if err := renew(); err != nil {
				return err
			}
			if err := g.sweep(ctx, name, exists, renew); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// sweep expires one group, or removes its offsets of deleted topics.
func (g *GroupJanitor) sweep(ctx context.Context, group string, exists map[string]bool, renew func() error) error {
	if g.cfg.Retention > 0 {
		deleted, err := g.meta.ExpireGroup(ctx, group, g.cfg.Retention)
		if err != nil {
			return err
		}
		if deleted {
			g.expired.Inc()
			g.log.Info("expired consumer group", "group", group, "retention", g.cfg.Retention)
			return nil
		}
	}
	var cursor uint64
	for {
		offs, next, err := g.meta.ScanGroupOffsets(ctx, group, cursor, g.cfg.ScanCount)
		if err != nil {
			return err
		}
		var gone []metadata.GroupOffset
		missing := map[string]bool{} // topics not found, for this page only
		for _, o := range offs {
			if !exists[o.Topic] && !missing[o.Topic] {
				_, err := g.meta.Topic(ctx, o.Topic)
				switch {
				case errors.Is(err, metadata.ErrTopicNotFound):
					missing[o.Topic] = true
				case err != nil:
					return err
				default:
					exists[o.Topic] = true
				}
			}
			if missing[o.Topic] {
				gone = append(gone, o)
			}
		}
		for len(gone) > 0 {
			batch := gone[:min(len(gone), metadata.MaxForgetOffsets)]
			gone = gone[len(batch):]
			n, err := g.meta.ForgetGroupOffsets(ctx, group, batch)
			if err != nil {
				return err
			}
			g.offsetsRemoved.Add(float64(n))
		}
		if cursor = next; cursor == 0 {
			return nil
		}
		if err := renew(); err != nil {
			return err
		}
	}
}
