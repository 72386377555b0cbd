package client_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
)

// startNodeWithMeta starts a node as startNode does and returns, with it,
// a metadata store on the node's Redis, to play the retention job.
func startNodeWithMeta(t *testing.T) (*testserver.Mamba, *metadata.Store) {
	t.Helper()
	m := testserver.StartMinIO(t)
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	node := testserver.StartMamba(t, m, r, m.CreateBucket(t, "mamba"), "node-a", "--flush-interval", "20ms", "--log-level", "warn")
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	return node, metadata.New(rdb, metadata.Options{})
}

// trimTo removes the partition's index entries that end at or below
// offset, as retention does, and returns the new log start offset.
func trimTo(t *testing.T, meta *metadata.Store, topic string, offset int64) int64 {
	t.Helper()
	ctx := t.Context()
	tp, err := meta.Topic(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	head, _, err := meta.Head(ctx, topic, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for n < len(head) && head[n].NextOffset() <= offset {
		n++
	}
	start, ok, err := meta.Trim(ctx, tp, 0, head[:n])
	if err != nil || !ok {
		t.Fatalf("trim: %v %v", ok, err)
	}
	return start
}

func produceOne(t *testing.T, p *client.Producer, topic string, i int) {
	t.Helper()
	if _, err := p.Produce(t.Context(), client.Record{Topic: topic, Value: []byte("v" + strconv.Itoa(i)), Partition: new(int32(0))}); err != nil {
		t.Fatal(err)
	}
}

// consumeAndCommit reads n records as a member of group, commits and
// leaves.
func consumeAndCommit(t *testing.T, c *client.Client, group, topic string, n int, opts ...client.GroupOpt) {
	t.Helper()
	g := newGroupConsumer(t, c, group, []string{topic}, append(opts, client.WithMaxWait(200*time.Millisecond))...)
	got := fetchUntil(t, g, func(got []client.ConsumedRecord) bool { return len(got) >= n })
	if len(got) != n {
		t.Fatalf("read %d records, want %d", len(got), n)
	}
	if err := g.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Two groups commit offset 2, retention then raises the log start to 4
// (high watermark 6). The group with the default policy continues from
// the log start; the group whose first member chose latest continues,
// with a member that names no policy, from the high watermark. Describe
// flags both partitions below the log start.
func TestGroupConsumerOffsetReset(t *testing.T) {
	node, meta := startNodeWithMeta(t)
	c := newClient(t, node.URL)
	ctx := t.Context()
	topic := createTopic(t, c, 1)
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	produceOne(t, p, topic, 0)
	produceOne(t, p, topic, 1)
	consumeAndCommit(t, c, "early", topic, 2)
	consumeAndCommit(t, c, "late", topic, 2, client.WithOffsetReset(client.OffsetResetLatest))
	for i := 2; i < 6; i++ {
		produceOne(t, p, topic, i) // one index entry each
	}
	if start := trimTo(t, meta, topic, 4); start != 4 {
		t.Fatalf("log start %d after the trim, want 4", start)
	}
	for _, group := range []string{"early", "late"} {
		d, err := c.DescribeGroup(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		o := d.Offsets[0]
		if len(d.Offsets) != 1 || o.CommittedOffset != 2 || o.LogStartOffset != 4 || o.HighWatermark != 6 || o.Lag != 2 || !o.BelowLogStart {
			t.Fatalf("describe %s: %+v, want committed 2, log start 4, high watermark 6, lag 2, below the log start", group, d.Offsets)
		}
	}
	if d, _ := c.DescribeGroup(ctx, "late"); d.OffsetReset != client.OffsetResetLatest {
		t.Fatalf("group late's policy is %q", d.OffsetReset)
	}

	early := newGroupConsumer(t, c, "early", []string{topic}, client.WithMaxWait(200*time.Millisecond))
	got := fetchUntil(t, early, func(got []client.ConsumedRecord) bool { return len(got) >= 1 })
	if got[0].Offset != 4 {
		t.Fatalf("earliest: first record at offset %d, want 4 (the log start)", got[0].Offset)
	}
	late := newGroupConsumer(t, c, "late", []string{topic}, client.WithMaxWait(200*time.Millisecond))
	// The member resets whenever its first fetch runs: produce until it
	// returns something. Records 4 and 5 are never among it.
	deadline := time.Now().Add(time.Minute)
	for i := 6; ; i++ {
		produceOne(t, p, topic, i)
		fctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		recs, err := late.Fetch(fctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		if len(recs) > 0 {
			if recs[0].Offset < 6 {
				t.Fatalf("latest: first record at offset %d, want one produced after the reset (6 or later)", recs[0].Offset)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("latest: nothing read in a minute")
		}
	}

	if _, err := c.NewGroupConsumer("g", []string{topic}, client.WithOffsetReset("newest")); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("WithOffsetReset(newest): err = %v", err)
	}
}

// DeleteGroup against a real node: refused while a member is live,
// done once it left, then the group is not found.
func TestDeleteGroup(t *testing.T) {
	node := startNode(t)
	c := newClient(t, node.URL)
	ctx := t.Context()
	topic := createTopic(t, c, 1)
	g := newGroupConsumer(t, c, "billing", []string{topic}, client.WithMaxWait(100*time.Millisecond))
	fctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, _ = g.Fetch(fctx) // joins
	if err := c.DeleteGroup(ctx, "billing"); !errors.Is(err, client.ErrGroupNotEmpty) {
		t.Fatalf("delete with a live member: err = %v", err)
	}
	if err := g.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteGroup(ctx, "billing"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := c.DeleteGroup(ctx, "billing"); !errors.Is(err, client.ErrGroupNotFound) {
		t.Fatalf("second delete: err = %v", err)
	}
	if _, err := c.DescribeGroup(ctx, "billing"); !errors.Is(err, client.ErrGroupNotFound) {
		t.Fatalf("describe after delete: err = %v", err)
	}
	if err := c.DeleteGroup(ctx, "a b"); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("delete a bad name: err = %v", err)
	}
}

// A node run with a short --group-retention expires a group once its
// last member left, and keeps a group whose member is live.
func TestServeExpiresIdleGroups(t *testing.T) {
	node := startNode(t, "--group-retention", "1s", "--group-janitor-interval", "100ms")
	c := newClient(t, node.URL)
	ctx := t.Context()
	topic := createTopic(t, c, 1)
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	produceOne(t, p, topic, 0)
	consumeAndCommit(t, c, "idle", topic, 1)
	live := newGroupConsumer(t, c, "live", []string{topic}, client.WithMaxWait(100*time.Millisecond),
		client.WithSessionTimeout(3*time.Second))
	_ = fetchUntil(t, live, func(got []client.ConsumedRecord) bool { return len(got) >= 1 })
	deadline := time.Now().Add(15 * time.Second)
	for {
		groups, err := c.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(groups) == 1 && groups[0] == "live" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("groups %v 15s after the idle group's member left, want only live", groups)
		}
		// Keep the live member's session going while we wait.
		fctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, _ = live.Fetch(fctx)
		cancel()
	}
	if _, err := c.DescribeGroup(ctx, "idle"); !errors.Is(err, client.ErrGroupNotFound) {
		t.Fatalf("describe the expired group: err = %v", err)
	}
}
