package ingest

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// TestLongPollsCapped fills the node's long-poll slots with fetches
// waiting at the high watermark: one more is not refused (a consumer
// reading many idle partitions must not fail) but answers empty after at
// most a second, without a slot; a slot is free again once a waiting
// fetch is answered.
func TestLongPollsCapped(t *testing.T) {
	c := newCluster(t)
	n := c.node(Config{MaxLongPolls: 2}, nil)
	ctx := t.Context()
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	wait := FetchRequest{Topic: "t", Partition: 0, Offset: 0, Wait: 20 * time.Second}
	answers := make(chan error, 2)
	for range 2 {
		go func() {
			res, err := n.Fetch(ctx, wait)
			if err == nil && len(res.Records) != 1 {
				err = errors.New("woke without the record")
			}
			answers <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for n.longPolls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches waiting, want 2", n.longPolls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	res, err := n.Fetch(ctx, wait)
	if err != nil || len(res.Records) != 0 {
		t.Fatalf("third long-poll: %d records, %v; want an empty answer", len(res.Records), err)
	}
	if d := time.Since(start); d < overCapWait/2 || d > 5*time.Second {
		t.Errorf("the third long-poll answered after %s; want about %s", d, overCapWait)
	}
	if got := n.longPolls.Load(); got != 2 {
		t.Errorf("%d slots held after the shortened poll, want 2", got)
	}
	// A fetch that does not wait is not limited.
	if _, err := n.Fetch(ctx, FetchRequest{Topic: "t", Partition: 0, Offset: 0}); err != nil {
		t.Errorf("a fetch without wait while the slots are full: %v", err)
	}
	if _, err := n.Produce(ctx, "t", []ProduceRecord{{Value: []byte("v"), Partition: 0}}, ProduceOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-answers; err != nil {
			t.Fatalf("waiting fetch: %v", err)
		}
	}
	if got := n.longPolls.Load(); got != 0 {
		t.Errorf("%d long-poll slots held after every fetch returned, want 0", got)
	}
	// The slots are free again.
	if _, err := n.Fetch(ctx, FetchRequest{Topic: "t", Partition: 0, Offset: 1, Wait: 50 * time.Millisecond}); err != nil {
		t.Errorf("a long-poll after the slots were released: %v", err)
	}
}

// TestWakeAll: wakeAll releases every waiting fetch, of every partition,
// and leaves no waiter registered.
func TestWakeAll(t *testing.T) {
	w := newWaiters()
	chs := []chan struct{}{w.add("a", 0), w.add("a", 0), w.add("a", 1), w.add("b", 3)}
	w.wakeAll()
	for i, ch := range chs {
		select {
		case <-ch:
		default:
			t.Errorf("waiter %d not woken", i)
		}
	}
	if len(w.m) != 0 {
		t.Errorf("%d partitions still have waiters", len(w.m))
	}
	// A waiter removed after wakeAll is a no-op, and new waiters work.
	w.remove("a", 0, chs[0])
	ch := w.add("a", 0)
	w.wake("a", 0)
	select {
	case <-ch:
	default:
		t.Error("a waiter added after wakeAll is not woken by wake")
	}
}

// TestLongPollAfterSubscriptionLoss kills the node's commit subscription
// (CLIENT KILL TYPE pubsub): the node counts the gap (and wakes every
// long-poll), and a long-poll parked across the loss is then woken by the
// next commit well before the 5 s re-check.
func TestLongPollAfterSubscriptionLoss(t *testing.T) {
	c := newCluster(t)
	n := c.node(Config{FlushInterval: 5 * time.Millisecond}, nil)
	ctx := t.Context()
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		res FetchResult
		err error
		at  time.Time
	}
	answers := make(chan answer, 1)
	go func() {
		res, err := n.Fetch(ctx, FetchRequest{Topic: "t", Partition: 0, Offset: 0, Wait: 20 * time.Second})
		answers <- answer{res, err, time.Now()}
	}()
	waitFor(t, "the fetch to park", func() bool { return n.longPolls.Load() == 1 })

	admin := redis.NewClient(&redis.Options{Addr: c.redis.Addr})
	defer admin.Close()
	if killed, err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Int(); err != nil || killed != 1 {
		t.Fatalf("CLIENT KILL TYPE pubsub = %d, %v; want the node's subscription killed", killed, err)
	}
	waitFor(t, "the gap to be counted", func() bool { return testutil.ToFloat64(n.metrics.missedCommits) >= 1 })
	waitFor(t, "the fetch to park again", func() bool { return n.longPolls.Load() == 1 })

	produced := time.Now()
	if _, err := n.Produce(ctx, "t", []ProduceRecord{{Value: []byte("v"), Partition: 0}}, ProduceOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-answers:
		if a.err != nil || len(a.res.Records) != 1 {
			t.Fatalf("fetch = %+v, %v; want the record", a.res, a.err)
		}
		if d := a.at.Sub(produced); d > 2*time.Second {
			t.Errorf("fetch answered %v after the produce, want well before the %v re-check", d, recheckInterval)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the fetch was not answered")
	}
}

// waitFor polls cond until it holds, failing after 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not synchronising
	}
}
