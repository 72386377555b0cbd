// Committing offsets under the partitions' leases, by hand or
// automatically.

package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

type offsetCommit struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Lease     int64  `json:"lease"`
}

// commitRequest commits offsets as the member the consumer is now, with
// its session key.
func (gc *GroupConsumer) commitRequest(ctx context.Context, offsets []offsetCommit) error {
	gc.mu.Lock()
	member, key := gc.member, gc.sessionKey
	gc.mu.Unlock()
	if member == "" {
		return fmt.Errorf("commit offsets of group %s: not a member: %w", gc.group, ErrMemberNotFound)
	}
	in := struct {
		MemberID string         `json:"member_id"`
		Offsets  []offsetCommit `json:"offsets"`
	}{member, offsets}
	if err := gc.memberRequest(ctx, http.MethodPost, apiPath("v1", "groups", gc.group, "offsets"), key, true, in, nil); err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", gc.group, err)
	}
	return nil
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

// Commit stores, for each partition the member holds, the offset after
// the last record returned, under the partition's lease. If a lease is
// no longer current (the partition changed hands), nothing is stored at
// first; Commit then asks the group for the member's partitions, drops
// those it lost (OnRevoked follows), commits the others, and returns an
// error wrapping ErrLeaseLost that names the partitions whose offsets
// were not committed: those of the lost partitions that had records
// returned since their last commit. OnRevoked names every partition lost,
// with or without such records, so it may name more.
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
	// A member that expired (it stalled past its session) lost every
	// lease with it: the heartbeat below finds it gone and joins again,
	// and the commit fails as for lost leases.
	if !errors.Is(err, ErrLeaseLost) && !errors.Is(err, ErrMemberNotFound) {
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
		gp := gc.heldLocked(TopicPartition{o.Topic, o.Partition})
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
	return fmt.Errorf("commit offsets of group %s: %w: offsets of %s not committed (the partitions changed hands)", gc.group, ErrLeaseLost, strings.Join(lost, ", "))
}

// heldLocked returns the partition the member holds, read or waiting to
// be released, or nil.
func (gc *GroupConsumer) heldLocked(tp TopicPartition) *groupPartition {
	if gp := gc.parts[tp]; gp != nil {
		return gp
	}
	return gc.releasing[tp]
}

// pendingCommits returns the positions not committed yet, of the
// partitions read and of those waiting to be released.
func (gc *GroupConsumer) pendingCommits() []offsetCommit {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	var out []offsetCommit
	add := func(gp *groupPartition) {
		if gp.consumed >= 0 && gp.consumed != gp.committed {
			out = append(out, offsetCommit{Topic: gp.tp.Topic, Partition: gp.tp.Partition, Offset: gp.consumed, Lease: gp.lease})
		}
	}
	for _, gp := range gc.order {
		add(gp)
	}
	for _, gp := range gc.releasing {
		add(gp)
	}
	return out
}

func (gc *GroupConsumer) markCommitted(offsets []offsetCommit) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	for _, o := range offsets {
		if gp := gc.heldLocked(TopicPartition{o.Topic, o.Partition}); gp != nil && gp.lease == o.Lease {
			gp.committed = o.Offset
		}
	}
}

// releaseRevoked hands back the partitions the group revoked: with
// auto-commit it first commits what the caller was given (the caller has
// asked for more, so it processed it), then releases them in a
// heartbeat, so that their next owner starts where this member stopped.
// Without auto-commit it releases them as they are: what the caller
// committed is where the next owner starts. A failed commit or release
// is logged and tried again at a later call; the group's release
// deadline bounds the wait for the next owner.
func (gc *GroupConsumer) releaseRevoked(ctx context.Context) {
	gc.mu.Lock()
	n := len(gc.releasing)
	wait := time.Now().Before(gc.releaseAfter)
	gc.mu.Unlock()
	if n == 0 || wait {
		return
	}
	err := error(nil)
	if gc.cfg.autoCommit > 0 {
		err = gc.Commit(ctx)
		if err == nil {
			gc.mu.Lock()
			gc.lastCommit = time.Now()
			gc.mu.Unlock()
		}
	}
	if err == nil || errors.Is(err, ErrLeaseLost) {
		gc.memberMu.Lock()
		err = gc.heartbeatReleasing(ctx, true)
		gc.memberMu.Unlock()
	}
	if err != nil && ctx.Err() == nil {
		gc.mu.Lock()
		gc.releaseAfter = time.Now().Add(gc.c.retry.backoff(1))
		gc.mu.Unlock()
		gc.c.log.Warn("mamba: releasing revoked partitions failed", "group", gc.group, "partitions", n, "err", err)
	}
}
