// Membership: the group protocol's join, heartbeat and leave requests,
// the session loop, and following the assignments each answer gives.

package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/mambamq/mamba/internal/wire"
)

// joinAnswer is the answer to a join.
type joinAnswer struct {
	MemberID string `json:"member_id"`
	// SessionKey authorizes the member's heartbeats, leave and commits.
	SessionKey  string          `json:"session_key"`
	Assignments []apiAssignment `json:"assignments"`
	// Waiting: the member waits for partitions others still release.
	Waiting bool `json:"waiting"`
	// OffsetReset is the group's policy; absent from nodes that predate
	// it, which always continued from the log start.
	OffsetReset string `json:"offset_reset"`
}

func (gc *GroupConsumer) joinRequest(ctx context.Context) (joinAnswer, error) {
	in := struct {
		Topics           []string `json:"topics"`
		SessionTimeoutMS int64    `json:"session_timeout_ms"`
		OffsetReset      string   `json:"offset_reset,omitempty"`
	}{gc.topics, gc.cfg.session.Milliseconds(), gc.cfg.offsetReset}
	var out joinAnswer
	if _, err := gc.c.sendJSON(ctx, http.MethodPost, apiPath("v1", "groups", gc.group, "members"), false, in, &out); err != nil {
		return joinAnswer{}, fmt.Errorf("join group %s: %w", gc.group, err)
	}
	if out.MemberID == "" || out.SessionKey == "" {
		return joinAnswer{}, fmt.Errorf("join group %s: answer has no member id or no session key", gc.group)
	}
	if out.OffsetReset == "" {
		out.OffsetReset = OffsetResetEarliest
	}
	return out, nil
}

// releaseRef names a partition the member releases, with its lease.
type releaseRef struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Lease     int64  `json:"lease"`
}

// memberRequest sends a request of the member's, with its session key in
// wire.HeaderSessionKey, retried if idempotent.
func (gc *GroupConsumer) memberRequest(ctx context.Context, method, path, key string, idempotent bool, in, out any) error {
	r := &request{method: method, path: path, idempotent: idempotent, header: http.Header{wire.HeaderSessionKey: {key}}}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: encode body: %w", r, err)
		}
		r.body, r.contentType = b, "application/json"
	}
	resp, err := gc.c.do(ctx, r)
	if err != nil || out == nil {
		return err
	}
	return decodeJSON(resp, out)
}

func (gc *GroupConsumer) heartbeatRequest(ctx context.Context, member, key string, release []releaseRef) ([]Assignment, bool, error) {
	var out struct {
		Assignments []apiAssignment `json:"assignments"`
		Waiting     bool            `json:"waiting"`
	}
	var in any
	if len(release) > 0 {
		in = struct {
			Release []releaseRef `json:"release"`
		}{release}
	}
	if err := gc.memberRequest(ctx, http.MethodPost, apiPath("v1", "groups", gc.group, "members", member, "heartbeat"), key, false, in, &out); err != nil {
		return nil, false, fmt.Errorf("heartbeat group %s member %s: %w", gc.group, member, err)
	}
	return assignmentsOf(out.Assignments), out.Waiting, nil
}

func (gc *GroupConsumer) leaveRequest(ctx context.Context, member, key string) error {
	if err := gc.memberRequest(ctx, http.MethodDelete, apiPath("v1", "groups", gc.group, "members", member), key, true, nil, nil); err != nil {
		return fmt.Errorf("leave group %s member %s: %w", gc.group, member, err)
	}
	return nil
}

// join makes the consumer a member (again). memberMu must be held.
func (gc *GroupConsumer) join(ctx context.Context) error {
	ans, err := gc.joinRequest(ctx)
	member, as := ans.MemberID, assignmentsOf(ans.Assignments)
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
		_ = gc.leaveRequest(lctx, member, ans.SessionKey)
		return ErrClosed
	}
	gc.member, gc.sessionKey, gc.joinErr, gc.lastHB, gc.reset, gc.waiting = member, ans.SessionKey, nil, time.Now(), ans.OffsetReset, ans.Waiting
	gc.c.log.Info("mamba: joined group", "group", gc.group, "member", member, "partitions", len(as))
	gc.applyLocked(member, as)
	gc.mu.Unlock()
	return nil
}

// heartbeat sends one heartbeat, or joins when the consumer is not a
// member, and applies the answer. memberMu must be held.
func (gc *GroupConsumer) heartbeat(ctx context.Context) error {
	return gc.heartbeatReleasing(ctx, false)
}

// heartbeatReleasing is heartbeat that, with release set, also hands back
// the partitions the group revoked (those in gc.releasing). memberMu must
// be held.
func (gc *GroupConsumer) heartbeatReleasing(ctx context.Context, release bool) error {
	gc.mu.Lock()
	member, key := gc.member, gc.sessionKey
	var refs []releaseRef
	if release {
		for _, gp := range gc.releasing {
			refs = append(refs, releaseRef{gp.tp.Topic, gp.tp.Partition, gp.lease})
		}
	}
	gc.mu.Unlock()
	if member == "" {
		return gc.join(ctx)
	}
	as, waiting, err := gc.heartbeatRequest(ctx, member, key, refs)
	gc.mu.Lock()
	if err == nil {
		gc.lastHB = time.Now()
		if member == gc.member {
			gc.waiting = waiting
		}
		if member == gc.member {
			for _, r := range refs {
				tp := TopicPartition{r.Topic, r.Partition}
				if gp := gc.releasing[tp]; gp != nil && gp.lease == r.Lease {
					delete(gc.releasing, tp)
				}
			}
		}
		gc.applyLocked(member, as)
		gc.mu.Unlock()
		if len(refs) > 0 {
			gc.c.log.Info("mamba: released partitions", "group", gc.group, "member", member, "partitions", len(refs))
		}
		return nil
	}
	// A key the group does not take (the member's entry predates
	// session keys) leaves the member as stuck as a gone one: join again.
	gone := errors.Is(err, ErrMemberNotFound) || errors.Is(err, ErrSessionInvalid)
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
	if gone && (errors.Is(err, ErrMemberNotFound) || errors.Is(err, ErrSessionInvalid)) {
		return gc.join(ctx)
	}
	return err
}

// applyLocked makes the member's partitions those of as: it starts
// fetching the new ones and drops the lost ones (a lease that changed
// means the partition changed hands in between). A partition the group
// revokes stops being read at once and waits in gc.releasing, with its
// position, for the next Fetch or Records call to commit it (with
// auto-commit) and release it.
//
// Once the consumer is closed it only drops partitions, so that Close's
// final commit knows which leases are gone, and starts no fetch.
func (gc *GroupConsumer) applyLocked(member string, as []Assignment) {
	if member != gc.member {
		return
	}
	keep := make(map[TopicPartition]bool, len(as))
	stillReleasing := make(map[TopicPartition]bool)
	var assigned, revoked []TopicPartition
	for _, a := range as {
		if a.Revoking {
			gp := gc.parts[a.TopicPartition]
			switch {
			case gp != nil && gp.lease == a.Lease:
				revoked = append(revoked, gp.tp)
				gc.dropLocked(gp)
				gc.releasing[gp.tp] = gp
			case gc.releasing[a.TopicPartition] != nil && gc.releasing[a.TopicPartition].lease == a.Lease:
			default:
				// Not read under this lease (yet): nothing to commit.
				gc.releasing[a.TopicPartition] = &groupPartition{tp: a.TopicPartition, lease: a.Lease, committed: a.CommittedOffset, consumed: -1}
			}
			stillReleasing[a.TopicPartition] = true
			continue
		}
		if r := gc.releasing[a.TopicPartition]; r != nil && r.lease == a.Lease {
			// The group gave the partition back before it was released:
			// read it again from the committed offset.
			delete(gc.releasing, a.TopicPartition)
		}
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
	for tp := range gc.releasing {
		if !stillReleasing[tp] {
			// Released, or taken from the member: nothing left to do.
			delete(gc.releasing, tp)
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
	clear(gc.releasing)
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

// waitingHeartbeat bounds the heartbeat interval while the member waits
// for partitions other members are releasing, so that it gets them soon
// after they are released.
const waitingHeartbeat = 250 * time.Millisecond

// nextHeartbeat is the heartbeat interval, shorter while the member waits
// for partitions.
func (gc *GroupConsumer) nextHeartbeat() time.Duration {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if gc.waiting {
		return min(gc.cfg.heartbeat, waitingHeartbeat)
	}
	return gc.cfg.heartbeat
}

// sessionLoop heartbeats every heartbeat interval (sooner, with backoff,
// after a failure, and while the member waits for partitions) and
// rejoins when the member is gone, until Close.
func (gc *GroupConsumer) sessionLoop() {
	defer gc.wg.Done()
	timer := time.NewTimer(gc.nextHeartbeat())
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
		wait := gc.nextHeartbeat()
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
