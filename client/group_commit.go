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

func (gc *GroupConsumer) commitRequest(ctx context.Context, offsets []offsetCommit) error {
	in := struct {
		Offsets []offsetCommit `json:"offsets"`
	}{offsets}
	if _, err := gc.c.sendJSON(ctx, http.MethodPost, apiPath("v1", "groups", gc.group, "offsets"), true, in, nil); err != nil {
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
