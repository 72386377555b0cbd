package metadata

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// CommitEvent announces that a partition's high watermark moved.
type CommitEvent struct {
	Topic         string
	Partition     int32
	HighWatermark int64
}

// Liveness of a commit subscription. go-redis notices a dead subscription
// connection only when a write to it fails: a peer gone without a reset,
// or a proxy that keeps the socket open after its backend died, leave it
// waiting for minutes while every announcement is lost. So the
// subscription also listens on a channel of its own, to which Run
// publishes a beat every BeatInterval through the ordinary connection
// pool; a subscription that received nothing (no commit, no beat) for
// StaleAfter is stale: Run reports it (resubscribed) every BeatInterval
// until it is fresh again, and subscribes anew at most every StaleAfter.
const (
	BeatInterval = time.Second
	StaleAfter   = 3 * BeatInterval
)

// CommitSubscription receives the commits of every node.
type CommitSubscription struct {
	s    *Store
	beat string // this subscription's own channel

	mu     sync.Mutex
	sub    *redis.PubSub
	closed bool
}

// SubscribeCommits subscribes to commit announcements. When it returns,
// the subscription is active: every later commit will be delivered to Run.
func (s *Store) SubscribeCommits(ctx context.Context) (*CommitSubscription, error) {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	c := &CommitSubscription{s: s, beat: s.prefix + ":beat:" + hex.EncodeToString(id[:])}
	sub, err := c.subscribe(ctx)
	if err != nil {
		return nil, unavailable("subscribe to commits", err)
	}
	c.sub = sub
	return c, nil
}

// subscribe subscribes to the commits and beat channels and waits for
// both confirmations, so that Run sees only those of later reconnects.
func (c *CommitSubscription) subscribe(ctx context.Context) (*redis.PubSub, error) {
	sub := c.s.rdb.Subscribe(ctx, c.s.CommitsChannel(), c.beat)
	for range 2 {
		if _, err := sub.Receive(ctx); err != nil {
			sub.Close()
			return nil, err
		}
	}
	return sub, nil
}

// Run calls fn for every commit until ctx ends or the subscription is
// closed. Delivery is at most once: while the connection is down events
// are missed. resubscribed (if not nil) is called whenever announcements
// may have been missed, so that waiters look again: after go-redis made
// the subscription again following a reconnect it noticed, and every
// BeatInterval while the subscription is stale (see StaleAfter). fn and
// resubscribed run on Run's goroutine and should not block.
func (c *CommitSubscription) Run(ctx context.Context, fn func(CommitEvent), resubscribed func()) error {
	if resubscribed == nil {
		resubscribed = func() {}
	}
	ch, ok := c.channel()
	if !ok {
		return nil
	}
	tick := time.NewTicker(BeatInterval)
	defer tick.Stop()
	last, renewed := time.Now(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				if ch, ok = c.channel(); !ok || ch == nil {
					return nil
				}
				continue
			}
			last = time.Now()
			switch msg := m.(type) {
			case *redis.Subscription:
				if msg.Kind == "subscribe" && msg.Channel == c.s.CommitsChannel() {
					resubscribed()
				}
			case *redis.Message:
				if msg.Channel != c.beat {
					parseCommit(msg.Payload, fn)
				}
			}
		case now := <-tick.C:
			if now.Sub(last) > StaleAfter {
				resubscribed()
				if now.Sub(renewed) > StaleAfter {
					renewed = now
					if next, ok := c.renew(ctx); ok {
						ch = next
					} else {
						return nil
					}
				}
			}
			bctx, cancel := context.WithTimeout(ctx, BeatInterval)
			_ = c.s.rdb.Publish(bctx, c.beat, "").Err() // a lost beat only makes it stale sooner
			cancel()
		}
	}
}

// channel is the current subscription's message channel; false once
// closed.
func (c *CommitSubscription) channel() (<-chan any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false
	}
	return c.sub.ChannelWithSubscriptions(), true
}

// renew replaces a stale subscription by a new one, lazily connected: its
// confirmations arrive on the returned channel and count as
// resubscriptions. False once closed.
func (c *CommitSubscription) renew(ctx context.Context) (<-chan any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false
	}
	_ = c.sub.Close()
	c.sub = c.s.rdb.Subscribe(ctx, c.s.CommitsChannel(), c.beat)
	return c.sub.ChannelWithSubscriptions(), true
}

// parseCommit calls fn for each partition of a commit announcement
// ("topic\tpartition:hw,partition:hw"), skipping malformed pairs.
func parseCommit(payload string, fn func(CommitEvent)) {
	topic, list, found := strings.Cut(payload, "\t")
	if !found {
		return
	}
	for pair := range strings.SplitSeq(list, ",") {
		p, hw, _ := strings.Cut(pair, ":")
		pi, err1 := strconv.ParseInt(p, 10, 32)
		hwi, err2 := strconv.ParseInt(hw, 10, 64)
		if err1 == nil && err2 == nil {
			fn(CommitEvent{Topic: topic, Partition: int32(pi), HighWatermark: hwi})
		}
	}
}

// Close ends the subscription.
func (c *CommitSubscription) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return c.sub.Close()
}
