package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// DefaultSessionTimeout is how long a group member may go without a
// heartbeat before the group hands its partitions to the others.
const DefaultSessionTimeout = 10 * time.Second

type groupConfig struct {
	fetch             fetchConfig
	session           time.Duration
	heartbeat         time.Duration
	autoCommit        time.Duration
	startAtNewest     bool
	offsetReset       string
	onAssigned        func([]TopicPartition)
	onRevoked         func([]TopicPartition)
	errs              []error
	heartbeatExplicit bool
}

type groupOpt func(*groupConfig)

func (o groupOpt) applyGroup(c *groupConfig) { o(c) }

// WithSessionTimeout sets how long the member may go without a heartbeat
// before the group expires it and hands its partitions to the others.
// The node accepts 1 s to 5 min, to the millisecond. Default
// DefaultSessionTimeout.
func WithSessionTimeout(d time.Duration) GroupOpt {
	return groupOpt(func(c *groupConfig) {
		if d < time.Millisecond {
			c.errs = append(c.errs, fmt.Errorf("WithSessionTimeout: %v is below 1ms", d))
		}
		c.session = d
	})
}

// WithHeartbeatInterval sets how often the member heartbeats, which is
// also how soon it learns of assignment changes. It must be below the
// session timeout. Default: a third of the session timeout.
func WithHeartbeatInterval(d time.Duration) GroupOpt {
	return groupOpt(func(c *groupConfig) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithHeartbeatInterval: %v is not positive", d))
		}
		c.heartbeat, c.heartbeatExplicit = d, true
	})
}

// WithAutoCommit commits, every interval, the position after the last
// record returned by Fetch or Records, from within those calls (so a
// record is committed only once the caller has asked for more, which
// gives at-least-once processing), and on Close. Off by default: call
// Commit.
func WithAutoCommit(interval time.Duration) GroupOpt {
	return groupOpt(func(c *groupConfig) {
		if interval <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithAutoCommit: %v is not positive", interval))
		}
		c.autoCommit = interval
	})
}

// WithStartAtNewest starts a partition the group has no committed offset
// for at its high watermark, reading only records produced from then on.
// By default such a partition is read from its log start offset. A
// committed offset below the log start offset (retention deleted records
// the group had not read) continues per the group's offset reset policy
// (WithOffsetReset).
func WithStartAtNewest() GroupOpt {
	return groupOpt(func(c *groupConfig) { c.startAtNewest = true })
}

// Offset reset policies (WithOffsetReset).
const (
	// OffsetResetEarliest continues from the log start offset, the oldest
	// record still kept: nothing kept is skipped.
	OffsetResetEarliest = "earliest"
	// OffsetResetLatest continues from the high watermark: records the
	// group had not read are skipped, up to those produced from then on.
	OffsetResetLatest = "latest"
)

// WithOffsetReset sets the group's offset reset policy: where a member
// continues when the group's committed offset for a partition is below
// the partition's log start offset (retention deleted records the group
// had not read), OffsetResetEarliest or OffsetResetLatest. The policy
// belongs to the group: the join sends it to the node, which keeps it for
// the group, and a consumer without this option follows the group's
// policy (earliest unless a member set it). A partition the group never
// committed an offset for starts per WithStartAtNewest instead.
func WithOffsetReset(policy string) GroupOpt {
	return groupOpt(func(c *groupConfig) {
		if policy != OffsetResetEarliest && policy != OffsetResetLatest {
			c.errs = append(c.errs, fmt.Errorf("%w: WithOffsetReset: %q is neither %q nor %q", ErrInvalidRequest, policy, OffsetResetEarliest, OffsetResetLatest))
		}
		c.offsetReset = policy
	})
}

// WithOnAssigned calls fn with the partitions the member was given,
// whenever it is given some. See GroupConsumer for when callbacks run.
func WithOnAssigned(fn func([]TopicPartition)) GroupOpt {
	return groupOpt(func(c *groupConfig) { c.onAssigned = fn })
}

// WithOnRevoked calls fn with the partitions the member lost or is
// handing over (the group moves them to another member, the member's
// session expired, a commit found their lease gone, or Close left the
// group). By then the member no longer reads them and has dropped what it
// fetched but did not return. A partition the group moves cooperatively
// is still held, under its lease, until the next Fetch or Records call
// commits it (with auto-commit; a Commit by the caller before then works
// too) and releases it; otherwise its uncommitted position is gone and
// commits for it fail with ErrLeaseLost. See GroupConsumer for when
// callbacks run.
func WithOnRevoked(fn func([]TopicPartition)) GroupOpt {
	return groupOpt(func(c *groupConfig) { c.onRevoked = fn })
}

// GroupConsumer reads topics as a member of a consumer group: the group
// spreads the topics' partitions over its live members, and each
// partition is read by one member at a time, from the group's committed
// offset.
//
// The consumer joins the group on the first Fetch or Records call, then
// heartbeats in the background every heartbeat interval. Each heartbeat
// answers the member's current partitions, and the consumer follows: it
// starts reading partitions it gains from their committed offset (or,
// when the group has none, from the log start offset, or the high
// watermark with WithStartAtNewest), and stops reading partitions it
// loses, dropping what it fetched and its uncommitted positions. If the
// member's session expires it rejoins as a new member.
//
// Each assigned partition is fetched in the background with a long-poll,
// one answer buffered per partition; Fetch and Records return buffered
// records, taking from partitions in turn so that none starves the
// others. Commit stores, for each partition, the offset after the last
// record returned, under the partition's lease.
//
// # Rebalancing
//
// Partitions move cooperatively: when the group gives one of this
// member's partitions to another member, the next heartbeat says it is
// revoking; the member stops reading it at once (dropping what it fetched
// but did not return), and the next Fetch or Records call (the caller is
// done with what it was given) commits its position, with auto-commit,
// and releases it. Only then does the other member get it, from the
// committed offset, at its next heartbeat (every 250 ms at most while it
// waits for partitions); if the member neither releases it nor heartbeats, the
// group moves it after the session timeout. So the records handed twice
// across a move are those returned but not committed when the member
// released the partition: none when the caller commits before each Fetch
// or uses auto-commit; what was returned since the last Commit otherwise.
// Processing is at least once; a member that stalls past its session
// loses its partitions with its lease (commits then fail with
// ErrLeaseLost), and records it processed but did not commit are read
// again by the next owner.
//
// # Concurrency
//
// Fetch, Records and Commit are meant to be called from one goroutine;
// Close may be called from any goroutine, and ends a Fetch waiting in
// another with ErrClosed. The OnAssigned and OnRevoked callbacks run in
// the goroutine calling Fetch, Records or Close, one at a time, never
// concurrently with the caller's own processing of records; they must
// not call the consumer's methods. The heartbeat and the fetches run in
// background goroutines owned by the consumer until Close.
type GroupConsumer struct {
	c      *Client
	group  string
	topics []string
	cfg    groupConfig

	// ctx ends on Close and stops the session loop and the fetchers.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// memberMu serializes membership requests (join, heartbeat, leave),
	// so that their answers apply in order.
	memberMu   sync.Mutex
	callbackMu sync.Mutex

	mu      sync.Mutex
	started bool
	closed  bool
	member  string
	// sessionKey is the member's, from its join answer: its heartbeats,
	// leave and commits present it. Never logged.
	sessionKey string
	parts      map[TopicPartition]*groupPartition
	order      []*groupPartition
	// releasing holds the partitions the group revoked, no longer read,
	// until the next Fetch or Records call commits (with auto-commit) and
	// releases them.
	releasing map[TopicPartition]*groupPartition
	// releaseAfter delays the next release after one failed.
	releaseAfter time.Time
	rr           int
	events       []groupEvent
	notify       chan struct{}
	lastHB       time.Time
	joinErr      error
	// reset is the group's offset reset policy, as the last join answered.
	reset string
	// waiting is set while the last join or heartbeat said the member
	// waits for partitions other members are releasing.
	waiting bool
	// lastCommit is when auto-commit last ran.
	lastCommit time.Time
}

// groupPartition is an assigned partition. Fields are guarded by
// GroupConsumer.mu.
type groupPartition struct {
	tp    TopicPartition
	lease int64
	// committed is the group's committed offset as far as this member
	// knows, -1 for none; consumed is the offset after the last record
	// returned to the caller, -1 before the first.
	committed int64
	consumed  int64
	buf       []ConsumedRecord
	// drained is closed when buf empties, for the fetcher waiting to
	// fetch more.
	drained chan struct{}
	// err is a non-retryable fetch error for Fetch to return.
	err    error
	cancel context.CancelFunc
}

type groupEvent struct {
	revoked bool
	tps     []TopicPartition
}

// NewGroupConsumer returns a consumer of topics in group. It sends no
// request until the first Fetch or Records call.
func (c *Client) NewGroupConsumer(group string, topics []string, opts ...GroupOpt) (*GroupConsumer, error) {
	cfg := groupConfig{fetch: defaultFetchConfig(), session: DefaultSessionTimeout}
	for _, o := range opts {
		o.applyGroup(&cfg)
	}
	errs := append(cfg.errs, cfg.fetch.errs...)
	if err := validateName("group", group); err != nil {
		errs = append(errs, err)
	}
	if len(topics) == 0 {
		errs = append(errs, fmt.Errorf("%w: no topics", ErrInvalidRequest))
	}
	for _, t := range topics {
		if err := validateName("topic", t); err != nil {
			errs = append(errs, err)
		}
	}
	if !cfg.heartbeatExplicit {
		cfg.heartbeat = cfg.session / 3
	} else if cfg.heartbeat >= cfg.session {
		errs = append(errs, fmt.Errorf("heartbeat interval %v is not below the session timeout %v", cfg.heartbeat, cfg.session))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("mamba group consumer: %w", err)
	}
	topics = slices.Clone(topics)
	slices.Sort(topics)
	topics = slices.Compact(topics)
	gc := &GroupConsumer{
		c: c, group: group, topics: topics, cfg: cfg,
		parts: make(map[TopicPartition]*groupPartition), releasing: make(map[TopicPartition]*groupPartition),
	}
	gc.ctx, gc.cancel = context.WithCancel(context.Background())
	return gc, nil
}

// MemberID returns the member's id in the group, empty while it is not a
// member.
func (gc *GroupConsumer) MemberID() string {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	return gc.member
}

// Assigned returns the partitions the member holds now.
func (gc *GroupConsumer) Assigned() []TopicPartition {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	out := make([]TopicPartition, 0, len(gc.order))
	for _, gp := range gc.order {
		out = append(out, gp.tp)
	}
	return out
}

// notifyLocked wakes a Fetch waiting for records or assignment changes.
func (gc *GroupConsumer) notifyLocked() {
	if gc.notify != nil {
		close(gc.notify)
		gc.notify = nil
	}
}

// runCallbacks calls OnRevoked and OnAssigned for the assignment changes
// since the last call, in order.
func (gc *GroupConsumer) runCallbacks() {
	gc.callbackMu.Lock()
	defer gc.callbackMu.Unlock()
	for {
		gc.mu.Lock()
		if len(gc.events) == 0 {
			gc.mu.Unlock()
			return
		}
		ev := gc.events[0]
		gc.events = gc.events[1:]
		gc.mu.Unlock()
		if ev.revoked && gc.cfg.onRevoked != nil {
			gc.cfg.onRevoked(ev.tps)
		} else if !ev.revoked && gc.cfg.onAssigned != nil {
			gc.cfg.onAssigned(ev.tps)
		}
	}
}

// CloseTimeout bounds the final commit and the leave of
// GroupConsumer.Close.
const CloseTimeout = 5 * time.Second

// Close stops the consumer: it commits (with auto-commit on), stops the
// heartbeat and the fetches, leaves the group so that its partitions go
// to the other members at once, and calls OnRevoked for the partitions
// it held. Fetch and Records return ErrClosed afterwards. Close returns
// the errors of the commit and the leave; a second call returns nil.
//
// The commit and the leave run under their own context, ctx's values
// without its deadline or cancellation, bounded by CloseTimeout: Close
// works with the context whose end stopped Records, so that
// defer g.Close(ctx) leaves the group promptly however the consumer
// stopped.
func (gc *GroupConsumer) Close(ctx context.Context) error {
	gc.mu.Lock()
	if gc.closed {
		gc.mu.Unlock()
		return nil
	}
	gc.closed = true
	gc.notifyLocked()
	gc.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CloseTimeout)
	defer cancel()
	var errs []error
	if gc.cfg.autoCommit > 0 {
		if err := gc.Commit(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	gc.cancel()
	gc.memberMu.Lock()
	gc.mu.Lock()
	member, key := gc.member, gc.sessionKey
	gc.member, gc.sessionKey = "", ""
	gc.revokeAllLocked()
	gc.mu.Unlock()
	gc.memberMu.Unlock()
	gc.wg.Wait()
	if member != "" {
		if err := gc.leaveRequest(ctx, member, key); err != nil && !errors.Is(err, ErrMemberNotFound) {
			errs = append(errs, err)
		}
	}
	gc.runCallbacks()
	return errors.Join(errs...)
}
