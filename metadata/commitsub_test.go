package metadata_test

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/metadata"
)

// blackhole is a TCP proxy whose connections can be frozen: a frozen
// connection stays open, and what either side sends is taken and
// dropped, as a proxy whose backend died, or a partition without a
// reset, would. Connections made after a freeze are forwarded.
type blackhole struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []*atomic.Bool // frozen flags of the connections so far
}

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go b.accept()
	return b
}

func (b *blackhole) addr() string { return b.ln.Addr().String() }

func (b *blackhole) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", b.target)
		if err != nil {
			c.Close()
			continue
		}
		frozen := new(atomic.Bool)
		b.mu.Lock()
		b.conns = append(b.conns, frozen)
		b.mu.Unlock()
		go pipe(up, c, frozen)
		go pipe(c, up, frozen)
	}
}

// pipe copies from src to dst until src ends, dropping what it reads
// once frozen.
func pipe(dst io.WriteCloser, src io.ReadCloser, frozen *atomic.Bool) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// freeze freezes every connection made so far.
func (b *blackhole) freeze() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.conns {
		f.Store(true)
	}
}

// TestCommitSubscriptionStale freezes every connection between the store
// and Redis without closing them, which go-redis does not notice on a
// subscription: Run hears neither commits nor its beat, reports that
// announcements may be missed within StaleAfter plus a beat, subscribes
// anew over a new connection, and delivers commits again.
func TestCommitSubscriptionStale(t *testing.T) {
	_, r := newStore(t)
	bh := newBlackhole(t, r.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: bh.addr(), ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	s := metadata.New(rdb, metadata.Options{DedupWindow: time.Minute})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	tp := topic("watched", 1)
	mustCreate(t, s, tp)
	events, stale := runSubscription(ctx, t, s)

	// Healthy: beats arrive, nothing is reported for longer than StaleAfter.
	select {
	case at := <-stale:
		t.Fatalf("a healthy subscription reported missed announcements at %v", at)
	case <-time.After(metadata.StaleAfter + 2*metadata.BeatInterval):
	}
	frozenAt := time.Now()
	bh.freeze()
	select {
	case at := <-stale:
		if d := at.Sub(frozenAt); d > metadata.StaleAfter+3*metadata.BeatInterval {
			t.Errorf("staleness reported %v after the freeze, want within %v", d, metadata.StaleAfter+3*metadata.BeatInterval)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a frozen subscription was not reported within 30s")
	}
	// Commits reach the subscription again, over a new connection.
	deadline := time.Now().Add(30 * time.Second)
	var next int64
	for {
		next++
		if _, err := s.Commit(ctx, tp, "c"+string(rune('a'+next%26))+time.Now().Format("150405.000"), []metadata.Batch{{Partition: 0, Records: 1, Offset: 0, Length: 1}}); err != nil && time.Now().After(deadline) {
			t.Fatalf("commit after the freeze: %v", err)
		}
		select {
		case e := <-events:
			if e.Topic != "watched" || e.Partition != 0 {
				t.Fatalf("event = %+v", e)
			}
			return
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no commit delivered within 30s of the freeze")
		}
	}
}

// runSubscription subscribes s to commits and runs the subscription until
// ctx ends: its events, and when it reported that announcements may have
// been missed.
func runSubscription(ctx context.Context, t *testing.T, s *metadata.Store) (<-chan metadata.CommitEvent, <-chan time.Time) {
	t.Helper()
	sub, err := s.SubscribeCommits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	events := make(chan metadata.CommitEvent, 100)
	missed := make(chan time.Time, 100)
	go sub.Run(ctx, func(e metadata.CommitEvent) { events <- e }, func() { missed <- time.Now() })
	return events, missed
}
