// Membership: the group protocol's join, heartbeat and leave requests,
// the session loop, and following the assignments each answer gives.

package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// joinAnswer is the answer to a join.
type joinAnswer struct {
	MemberID    string          `json:"member_id"`
	Assignments []apiAssignment `json:"assignments"`
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
	if out.MemberID == "" {
		return joinAnswer{}, fmt.Errorf("join group %s: answer has no member id", gc.group)
	}
	if out.OffsetReset == "" {
		out.OffsetReset = OffsetResetEarliest
	}
	return out, nil
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
		_ = gc.leaveRequest(lctx, member)
		return ErrClosed
	}
	gc.member, gc.joinErr, gc.lastHB, gc.reset = member, nil, time.Now(), ans.OffsetReset
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
