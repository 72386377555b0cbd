package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"strings"
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
// the group had not read) always continues from the log start offset.
func WithStartAtNewest() GroupOpt {
	return groupOpt(func(c *groupConfig) { c.startAtNewest = true })
}

// WithOnAssigned calls fn with the partitions the member was given,
// whenever it is given some. See GroupConsumer for when callbacks run.
func WithOnAssigned(fn func([]TopicPartition)) GroupOpt {
	return groupOpt(func(c *groupConfig) { c.onAssigned = fn })
}

// WithOnRevoked calls fn with the partitions the member lost (the group
// gave them to another member, the member's session expired, a commit
// found their lease gone, or Close left the group). By then the member
// no longer reads them and has dropped their uncommitted positions;
// commits for them would fail with ErrLeaseLost. See GroupConsumer for
// when callbacks run.
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
// record returned, under the partition's lease. A partition can move to
// another member between two heartbeats; until the old member learns of
// it, both may read it, and the old member's commits fail with
// ErrLeaseLost. So processing is at least once: records returned but not
// committed are read again by the next owner.
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
	parts   map[TopicPartition]*groupPartition
	order   []*groupPartition
	rr      int
	events  []groupEvent
	notify  chan struct{}
	lastHB  time.Time
	joinErr error
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
		parts: make(map[TopicPartition]*groupPartition),
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

// Group protocol requests.

func (gc *GroupConsumer) joinRequest(ctx context.Context) (string, []Assignment, error) {
	in := struct {
		Topics           []string `json:"topics"`
		SessionTimeoutMS int64    `json:"session_timeout_ms"`
	}{gc.topics, gc.cfg.session.Milliseconds()}
	var out struct {
		MemberID    string          `json:"member_id"`
		Assignments []apiAssignment `json:"assignments"`
	}
	if _, err := gc.c.sendJSON(ctx, http.MethodPost, apiPath("v1", "groups", gc.group, "members"), false, in, &out); err != nil {
		return "", nil, fmt.Errorf("join group %s: %w", gc.group, err)
	}
	if out.MemberID == "" {
		return "", nil, fmt.Errorf("join group %s: answer has no member id", gc.group)
	}
	return out.MemberID, assignmentsOf(out.Assignments), nil
}

func (gc *GroupConsumer) heartbeatRequest(ctx context.Context, member string) ([]Assignment, error) {
	var out struct {
		Assignments []apiAssignment `json:"assignments"`
	}
	if _, err := gc.c.sendJSON(ctx, http.MethodPost, apiPath("v1", "groups", gc.group, "members", member, "heartbeat"), false, nil, &out); err != nil {
		return nil, fmt.Errorf("heartbeat group %s member %s: %w", gc.group, member, err)
	}
	return assignmentsOf(out.Assignments), nil
}

func (gc *GroupConsumer) leaveRequest(ctx context.Context, member string) error {
	if _, err := gc.c.do(ctx, &request{method: http.MethodDelete, path: apiPath("v1", "groups", gc.group, "members", member), idempotent: true}); err != nil {
		return fmt.Errorf("leave group %s member %s: %w", gc.group, member, err)
	}
	return nil
}

type offsetCommit struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Lease     int64  `json:"lease"`
}

func (gc *GroupConsumer) commitRequest(ctx context.Context, offsets []offsetCommit) error {
	in := struct {
		Offsets []offsetCommit `json:"offsets"`
	}{offsets}
	if _, err := gc.c.sendJSON(ctx, http.MethodPost, apiPath("v1", "groups", gc.group, "offsets"), true, in, nil); err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", gc.group, err)
	}
	return nil
}

// Membership.

// join makes the consumer a member (again). memberMu must be held.
func (gc *GroupConsumer) join(ctx context.Context) error {
	member, as, err := gc.joinRequest(ctx)
	gc.mu.Lock()
	if err != nil {
		if !IsRetryable(err) && ctx.Err() == nil {
			gc.joinErr = err
			gc.notifyLocked()
		}
		gc.mu.Unlock()
		return err
	}
	if gc.closed {
		// Close ran while the join was in flight: leave again at once
		// rather than hold partitions until the session expires.
		gc.mu.Unlock()
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), gc.c.timeout)
		defer cancel()
		_ = gc.leaveRequest(lctx, member)
		return ErrClosed
	}
	gc.member, gc.joinErr, gc.lastHB = member, nil, time.Now()
	gc.c.log.Info("mamba: joined group", "group", gc.group, "member", member, "partitions", len(as))
	gc.applyLocked(member, as)
	gc.mu.Unlock()
	return nil
}

// heartbeat sends one heartbeat, or joins when the consumer is not a
// member, and applies the answer. memberMu must be held.
func (gc *GroupConsumer) heartbeat(ctx context.Context) error {
	gc.mu.Lock()
	member := gc.member
	gc.mu.Unlock()
	if member == "" {
		return gc.join(ctx)
	}
	as, err := gc.heartbeatRequest(ctx, member)
	gc.mu.Lock()
	if err == nil {
		gc.lastHB = time.Now()
		gc.applyLocked(member, as)
		gc.mu.Unlock()
		return nil
	}
	gone := errors.Is(err, ErrMemberNotFound)
	if !gone && ctx.Err() == nil && time.Since(gc.lastHB) >= gc.cfg.session {
		// No heartbeat got through for a whole session: the group has
		// expired the member and handed its partitions on.
		gc.c.log.Warn("mamba: group session expired without a heartbeat", "group", gc.group, "member", member, "err", err)
		gone = true
	}
	if gone && gc.member == member {
		gc.c.log.Info("mamba: left group by expiry, rejoining", "group", gc.group, "member", member)
		gc.member = ""
		gc.revokeAllLocked()
	}
	gc.mu.Unlock()
	if gone && errors.Is(err, ErrMemberNotFound) {
		return gc.join(ctx)
	}
	return err
}

// applyLocked makes the member's partitions those of as: it starts
// fetching the new ones and drops the lost ones (a lease that changed
// means the partition changed hands in between).
//
// Once the consumer is closed it only drops partitions, so that Close's
// final commit knows which leases are gone, and starts no fetch.
func (gc *GroupConsumer) applyLocked(member string, as []Assignment) {
	if member != gc.member {
		return
	}
	keep := make(map[TopicPartition]bool, len(as))
	var assigned, revoked []TopicPartition
	for _, a := range as {
		gp := gc.parts[a.TopicPartition]
		if gp != nil && gp.lease == a.Lease {
			keep[a.TopicPartition] = true
			continue
		}
		if gp != nil {
			revoked = append(revoked, gp.tp)
			gc.dropLocked(gp)
		}
		if gc.closed {
			continue
		}
		keep[a.TopicPartition] = true
		gc.startLocked(a)
		assigned = append(assigned, a.TopicPartition)
	}
	for _, gp := range slices.Clone(gc.order) {
		if !keep[gp.tp] {
			revoked = append(revoked, gp.tp)
			gc.dropLocked(gp)
		}
	}
	if len(revoked) > 0 {
		gc.events = append(gc.events, groupEvent{revoked: true, tps: revoked})
	}
	if len(assigned) > 0 {
		gc.events = append(gc.events, groupEvent{tps: assigned})
	}
	if len(revoked)+len(assigned) > 0 {
		gc.notifyLocked()
	}
}

func (gc *GroupConsumer) revokeAllLocked() {
	if len(gc.order) == 0 {
		return
	}
	var revoked []TopicPartition
	for _, gp := range slices.Clone(gc.order) {
		revoked = append(revoked, gp.tp)
		gc.dropLocked(gp)
	}
	gc.events = append(gc.events, groupEvent{revoked: true, tps: revoked})
	gc.notifyLocked()
}

func (gc *GroupConsumer) startLocked(a Assignment) {
	ctx, cancel := context.WithCancel(gc.ctx)
	gp := &groupPartition{tp: a.TopicPartition, lease: a.Lease, committed: a.CommittedOffset, consumed: -1, cancel: cancel}
	gc.parts[gp.tp] = gp
	gc.order = append(gc.order, gp)
	gc.wg.Add(1)
	go gc.fetchLoop(ctx, gp, a.CommittedOffset)
}

func (gc *GroupConsumer) dropLocked(gp *groupPartition) {
	gp.cancel()
	gp.buf = nil
	delete(gc.parts, gp.tp)
	if i := slices.Index(gc.order, gp); i >= 0 {
		gc.order = slices.Delete(gc.order, i, i+1)
	}
}

// sessionLoop heartbeats every heartbeat interval (sooner, with backoff,
// after a failure) and rejoins when the member is gone, until Close.
func (gc *GroupConsumer) sessionLoop() {
	defer gc.wg.Done()
	timer := time.NewTimer(gc.cfg.heartbeat)
	defer timer.Stop()
	attempt := 0
	for {
		select {
		case <-gc.ctx.Done():
			return
		case <-timer.C:
		}
		gc.memberMu.Lock()
		err := gc.heartbeat(gc.ctx)
		gc.memberMu.Unlock()
		wait := gc.cfg.heartbeat
		if err != nil {
			if gc.ctx.Err() != nil {
				return
			}
			attempt++
			wait = min(gc.c.retry.backoff(attempt), gc.cfg.heartbeat)
			gc.c.log.Warn("mamba: group heartbeat failed", "group", gc.group, "attempt", attempt, "retry_in", wait, "err", err)
		} else {
			attempt = 0
		}
		timer.Reset(wait)
	}
}

// ensureJoined joins the group on first use and starts the session
// loop. Afterwards it only reports a join the session loop could not
// make for a reason other than a transient one.
func (gc *GroupConsumer) ensureJoined(ctx context.Context) error {
	gc.mu.Lock()
	if gc.closed {
		gc.mu.Unlock()
		return ErrClosed
	}
	if gc.started {
		err := gc.joinErr
		if gc.member != "" {
			err = nil
		}
		gc.mu.Unlock()
		return err
	}
	gc.mu.Unlock()
	gc.memberMu.Lock()
	defer gc.memberMu.Unlock()
	gc.mu.Lock()
	started := gc.started
	gc.mu.Unlock()
	if started {
		return nil
	}
	if err := gc.join(ctx); err != nil {
		return err
	}
	gc.mu.Lock()
	gc.started = true
	gc.wg.Add(1)
	go gc.sessionLoop()
	gc.mu.Unlock()
	return nil
}

// Fetching.

// fetchLoop reads one assigned partition into its buffer until the
// partition is dropped.
func (gc *GroupConsumer) fetchLoop(ctx context.Context, gp *groupPartition, pos int64) {
	defer gc.wg.Done()
	tp := gp.tp
	attempt := 0
	retry := func(err error) bool {
		if ctx.Err() != nil {
			return false
		}
		attempt++
		wait := gc.c.retry.backoff(attempt)
		if !IsRetryable(err) {
			// Report it, and try again slowly: the topic may come back.
			wait = gc.c.retry.max
			gc.mu.Lock()
			if gc.parts[tp] == gp {
				gp.err = err
				gc.notifyLocked()
			}
			gc.mu.Unlock()
		}
		gc.c.log.Warn("mamba: group fetch failed", "group", gc.group, "partition", tp.String(), "offset", pos, "retry_in", wait, "err", err)
		return sleep(ctx, wait) == nil
	}
	for ctx.Err() == nil {
		if pos < 0 {
			which := OffsetOldest
			if gc.cfg.startAtNewest {
				which = OffsetNewest
			}
			off, err := gc.c.resolveOffset(ctx, tp.Topic, tp.Partition, which)
			if err != nil {
				if !retry(err) {
					return
				}
				continue
			}
			pos = off
		}
		res, err := gc.c.fetch(ctx, tp.Topic, tp.Partition, pos, gc.cfg.fetch)
		if err != nil {
			if errors.Is(err, ErrOffsetOutOfRange) && ctx.Err() == nil {
				// Retention deleted records the group had not read:
				// carry on from the oldest record still kept.
				off, rerr := gc.c.resolveOffset(ctx, tp.Topic, tp.Partition, OffsetOldest)
				if rerr != nil {
					if !retry(rerr) {
						return
					}
					continue
				}
				gc.c.log.Warn("mamba: group offset out of range, continuing from the log start", "group", gc.group, "partition", tp.String(), "offset", pos, "log_start_offset", off)
				pos = off
				continue
			}
			if !retry(err) {
				return
			}
			continue
		}
		attempt = 0
		pos = res.nextOffset
		if len(res.records) == 0 {
			continue
		}
		gc.mu.Lock()
		if gc.parts[tp] != gp {
			gc.mu.Unlock()
			return
		}
		gp.buf = append(gp.buf, res.records...)
		drained := make(chan struct{})
		gp.drained = drained
		gc.notifyLocked()
		gc.mu.Unlock()
		select {
		case <-drained:
		case <-ctx.Done():
			return
		}
	}
}

// takeLocked removes up to max buffered records, from the partitions in
// turn, and marks them returned.
func (gc *GroupConsumer) takeLocked(max int) []ConsumedRecord {
	var withData int
	for _, gp := range gc.order {
		if len(gp.buf) > 0 {
			withData++
		}
	}
	if withData == 0 {
		return nil
	}
	share := max / withData
	if share == 0 {
		share = 1
	}
	var out []ConsumedRecord
	n := len(gc.order)
	for pass := 0; pass < 2 && len(out) < max; pass++ {
		for i := 0; i < n && len(out) < max; i++ {
			gp := gc.order[(gc.rr+i)%n]
			k := min(len(gp.buf), max-len(out))
			if pass == 0 {
				k = min(k, share)
			}
			if k == 0 {
				continue
			}
			out = append(out, gp.buf[:k]...)
			clear(gp.buf[:k])
			gp.buf = gp.buf[k:]
			gp.consumed = out[len(out)-1].Offset + 1
			if len(gp.buf) == 0 {
				gp.buf = nil
				if gp.drained != nil {
					close(gp.drained)
					gp.drained = nil
				}
			}
		}
	}
	gc.rr++
	return out
}

// takeErrLocked returns, once, a fetch error of some partition.
func (gc *GroupConsumer) takeErrLocked() error {
	for _, gp := range gc.order {
		if err := gp.err; err != nil {
			gp.err = nil
			return err
		}
	}
	return nil
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

// autoCommit commits if auto-commit is on and due. Its errors are
// logged: the next commit covers the same records.
func (gc *GroupConsumer) autoCommit(ctx context.Context) {
	if gc.cfg.autoCommit <= 0 {
		return
	}
	gc.mu.Lock()
	due := time.Since(gc.lastCommit) >= gc.cfg.autoCommit
	if due {
		gc.lastCommit = time.Now()
	}
	gc.mu.Unlock()
	if !due {
		return
	}
	if err := gc.Commit(ctx); err != nil && ctx.Err() == nil {
		gc.c.log.Warn("mamba: auto-commit failed", "group", gc.group, "err", err)
	}
}

// poll returns up to max records, waiting up to the max wait for some.
func (gc *GroupConsumer) poll(ctx context.Context, max int) ([]ConsumedRecord, error) {
	if err := gc.ensureJoined(ctx); err != nil {
		return nil, err
	}
	// The timers are made only when the call has to wait.
	var timeout <-chan time.Time
	var tick <-chan time.Time
	for {
		gc.runCallbacks()
		gc.autoCommit(ctx)
		gc.mu.Lock()
		if gc.closed {
			gc.mu.Unlock()
			return nil, ErrClosed
		}
		if recs := gc.takeLocked(max); len(recs) > 0 {
			gc.mu.Unlock()
			return recs, nil
		}
		if err := gc.takeErrLocked(); err != nil {
			gc.mu.Unlock()
			return nil, err
		}
		if gc.member == "" && gc.joinErr != nil {
			err := gc.joinErr
			gc.mu.Unlock()
			return nil, err
		}
		if gc.notify == nil {
			gc.notify = make(chan struct{})
		}
		ch := gc.notify
		gc.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(gc.cfg.fetch.maxWait)
			defer t.Stop()
			timeout = t.C
			if gc.cfg.autoCommit > 0 {
				t := time.NewTicker(gc.cfg.autoCommit)
				defer t.Stop()
				tick = t.C
			}
		}
		select {
		case <-ch:
		case <-tick:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout:
			gc.runCallbacks()
			return nil, nil
		}
	}
}

// Fetch returns records from the member's partitions, taking from each in
// turn, up to the max records (1,000 when WithMaxRecords is not given).
// It joins the group on first use, and runs the assignment callbacks. It
// waits up to the max wait for records and may return none. Returned
// records count as consumed for Commit.
func (gc *GroupConsumer) Fetch(ctx context.Context) ([]ConsumedRecord, error) {
	max := gc.cfg.fetch.maxRecords
	if max <= 0 {
		max = 1000
	}
	return gc.poll(ctx, max)
}

// Records iterates over records of the member's partitions without end,
// following assignment changes. Each record counts as consumed for
// Commit once it is yielded. Retryable errors are retried with backoff;
// any other error is yielded once and ends the iteration. The iteration
// also ends, without an error, when ctx ends or after Close.
func (gc *GroupConsumer) Records(ctx context.Context) iter.Seq2[ConsumedRecord, error] {
	return func(yield func(ConsumedRecord, error) bool) {
		attempt := 0
		for ctx.Err() == nil {
			recs, err := gc.poll(ctx, 1)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, ErrClosed) {
					return
				}
				if IsRetryable(err) {
					attempt++
					if sleep(ctx, gc.c.retry.backoff(attempt)) != nil {
						return
					}
					continue
				}
				yield(ConsumedRecord{}, err)
				return
			}
			attempt = 0
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
			}
		}
	}
}

// Commit stores, for each partition the member holds, the offset after
// the last record returned, under the partition's lease. If a lease is
// no longer current (the partition changed hands), nothing is stored at
// first; Commit then asks the group for the member's partitions, drops
// those it lost (OnRevoked follows), commits the others, and returns an
// error wrapping ErrLeaseLost that names the partitions dropped.
func (gc *GroupConsumer) Commit(ctx context.Context) error {
	offsets := gc.pendingCommits()
	if len(offsets) == 0 {
		return nil
	}
	err := gc.commitRequest(ctx, offsets)
	if err == nil {
		gc.markCommitted(offsets)
		return nil
	}
	if !errors.Is(err, ErrLeaseLost) {
		return err
	}
	gc.memberMu.Lock()
	hbErr := gc.heartbeat(ctx)
	gc.memberMu.Unlock()
	if hbErr != nil {
		return errors.Join(err, hbErr)
	}
	var keep []offsetCommit
	var lost []string
	gc.mu.Lock()
	for _, o := range offsets {
		gp := gc.parts[TopicPartition{o.Topic, o.Partition}]
		if gp != nil && gp.lease == o.Lease {
			keep = append(keep, o)
		} else {
			lost = append(lost, TopicPartition{o.Topic, o.Partition}.String())
		}
	}
	gc.mu.Unlock()
	if len(keep) > 0 {
		if err := gc.commitRequest(ctx, keep); err != nil {
			return err
		}
		gc.markCommitted(keep)
	}
	if len(lost) == 0 {
		return err
	}
	return fmt.Errorf("commit offsets of group %s: %w: %s changed hands and were dropped", gc.group, ErrLeaseLost, strings.Join(lost, ", "))
}

func (gc *GroupConsumer) pendingCommits() []offsetCommit {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	var out []offsetCommit
	for _, gp := range gc.order {
		if gp.consumed >= 0 && gp.consumed != gp.committed {
			out = append(out, offsetCommit{Topic: gp.tp.Topic, Partition: gp.tp.Partition, Offset: gp.consumed, Lease: gp.lease})
		}
	}
	return out
}

func (gc *GroupConsumer) markCommitted(offsets []offsetCommit) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	for _, o := range offsets {
		if gp := gc.parts[TopicPartition{o.Topic, o.Partition}]; gp != nil && gp.lease == o.Lease {
			gp.committed = o.Offset
		}
	}
}

// Close stops the consumer: it commits (with auto-commit on), stops the
// heartbeat and the fetches, leaves the group so that its partitions go
// to the other members at once, and calls OnRevoked for the partitions
// it held. Fetch and Records return ErrClosed afterwards. Close returns
// the errors of the commit and the leave; a second call returns nil.
func (gc *GroupConsumer) Close(ctx context.Context) error {
	gc.mu.Lock()
	if gc.closed {
		gc.mu.Unlock()
		return nil
	}
	gc.closed = true
	gc.notifyLocked()
	gc.mu.Unlock()
	var errs []error
	if gc.cfg.autoCommit > 0 {
		if err := gc.Commit(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	gc.cancel()
	gc.memberMu.Lock()
	gc.mu.Lock()
	member := gc.member
	gc.member = ""
	gc.revokeAllLocked()
	gc.mu.Unlock()
	gc.memberMu.Unlock()
	gc.wg.Wait()
	if member != "" {
		if err := gc.leaveRequest(ctx, member); err != nil && !errors.Is(err, ErrMemberNotFound) {
			errs = append(errs, err)
		}
	}
	gc.runCallbacks()
	return errors.Join(errs...)
}
