package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/miniostore"
)

// cluster is real MinIO and Redis, and ingest nodes sharing them.
type cluster struct {
	t     *testing.T
	minio *testserver.MinIO
	redis *testserver.Redis
	store objectstore.Store
	meta  *metadata.Store
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	m := testserver.StartMinIO(t)
	r := testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})
	bucket := m.CreateBucket(t, "mamba")
	store, err := miniostore.New(miniostore.Config{
		Endpoint: m.Endpoint, Bucket: bucket, PathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	return &cluster{t: t, minio: m, redis: r, store: store, meta: metadata.New(rdb, metadata.Options{})}
}

// node starts a node on the cluster (or on store, if given) and drains it
// when the test ends.
func (c *cluster) node(cfg Config, store objectstore.Store) *Node {
	c.t.Helper()
	if store == nil {
		store = c.store
	}
	if cfg.NodeID == "" {
		cfg.NodeID = fmt.Sprintf("node-%d", time.Now().UnixNano())
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 20 * time.Millisecond
	}
	n, err := New(cfg, c.meta, store, prometheus.NewRegistry(), nil)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	c.t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		if err := n.Close(dctx); err != nil {
			c.t.Errorf("close node: %v", err)
		}
		cancel()
		<-done
	})
	return n
}

type ack struct {
	partition int32
	offset    int64
	value     string
}

// readAll reads every partition of topic from n, from 0 to its high
// watermark.
func readAll(t *testing.T, n *Node, topic string) map[int32][]FetchedRecord {
	t.Helper()
	desc, err := n.DescribeTopic(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32][]FetchedRecord{}
	for _, ps := range desc.PartitionStats {
		off := ps.LogStartOffset
		for off < ps.HighWatermark {
			res, err := n.Fetch(t.Context(), FetchRequest{Topic: topic, Partition: ps.Partition, Offset: off, MaxRecords: 97})
			if err != nil {
				t.Fatalf("fetch %s/%d at %d: %v", topic, ps.Partition, off, err)
			}
			if len(res.Records) == 0 || res.NextOffset <= off {
				t.Fatalf("fetch %s/%d at %d below high watermark %d returned nothing", topic, ps.Partition, off, ps.HighWatermark)
			}
			out[ps.Partition] = append(out[ps.Partition], res.Records...)
			off = res.NextOffset
		}
	}
	return out
}

// checkAcks verifies that every acknowledged record is at its offset with
// its content, that offsets run from 0 without gaps, and that nothing
// unacknowledged is there.
func checkAcks(t *testing.T, read map[int32][]FetchedRecord, acks []ack) {
	t.Helper()
	byPos := map[[2]int64]string{}
	for _, a := range acks {
		k := [2]int64{int64(a.partition), a.offset}
		if prev, dup := byPos[k]; dup {
			t.Fatalf("two records acknowledged at %d/%d: %q and %q", a.partition, a.offset, prev, a.value)
		}
		byPos[k] = a.value
	}
	total := 0
	for p, recs := range read {
		for i, r := range recs {
			if r.Offset != int64(i) {
				t.Fatalf("partition %d: record %d has offset %d: gap or duplicate", p, i, r.Offset)
			}
			want, ok := byPos[[2]int64{int64(p), r.Offset}]
			if !ok {
				t.Fatalf("partition %d offset %d holds %q, which was never acknowledged", p, r.Offset, r.Value)
			}
			if string(r.Value) != want {
				t.Fatalf("partition %d offset %d holds %q, acknowledged %q", p, r.Offset, r.Value, want)
			}
			total++
		}
	}
	if total != len(acks) {
		t.Fatalf("read %d records, %d were acknowledged", total, len(acks))
	}
}

func TestTwoNodesConcurrentProducers(t *testing.T) {
	c := newCluster(t)
	a := c.node(Config{NodeID: "node-a"}, nil)
	b := c.node(Config{NodeID: "node-b"}, nil)
	ctx := t.Context()
	if _, err := a.CreateTopic(ctx, TopicConfig{Name: "orders", Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var acks []ack
	var wg sync.WaitGroup
	for w := range 8 {
		node := a
		if w%2 == 1 {
			node = b
		}
		wg.Go(func() {
			for i := range 40 {
				var recs []ProduceRecord
				for j := range 1 + i%4 {
					r := ProduceRecord{Value: fmt.Appendf(nil, "w%d-r%d-%d", w, i, j), Partition: AnyPartition}
					if j%2 == 0 {
						r.Key = fmt.Appendf(nil, "key-%d", (w+j)%7)
					}
					recs = append(recs, r)
				}
				res, err := node.Produce(ctx, "orders", recs, ProduceOptions{})
				if err != nil {
					t.Errorf("produce: %v", err)
					return
				}
				if len(res) != len(recs) {
					t.Errorf("%d results for %d records", len(res), len(recs))
					return
				}
				mu.Lock()
				for j, r := range res {
					acks = append(acks, ack{r.Partition, r.Offset, string(recs[j].Value)})
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Both nodes serve everything: a from its cache and the bucket, and a
	// node that wrote nothing only from the bucket.
	checkAcks(t, readAll(t, a, "orders"), acks)
	checkAcks(t, readAll(t, b, "orders"), acks)
	fresh := c.node(Config{NodeID: "node-c"}, nil)
	checkAcks(t, readAll(t, fresh, "orders"), acks)
}

func TestIdempotentRetry(t *testing.T) {
	c := newCluster(t)
	a := c.node(Config{NodeID: "node-a"}, nil)
	b := c.node(Config{NodeID: "node-b"}, nil)
	ctx := t.Context()
	if _, err := a.CreateTopic(ctx, TopicConfig{Name: "t", Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	recs := []ProduceRecord{
		{Value: []byte("one"), Partition: 2},
		{Value: []byte("two"), Partition: AnyPartition},
		{Value: []byte("three"), Partition: 0},
		{Value: []byte("four"), Partition: 2},
	}
	opts := ProduceOptions{IdempotencyKey: "req-42"}
	first, err := a.Produce(ctx, "t", recs, opts)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := a.DescribeTopic(ctx, "t")
	for _, n := range []*Node{a, b} {
		again, err := n.Produce(ctx, "t", recs, opts)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("retry answered %v, first answer was %v", again, first)
		}
	}
	// Two copies racing on the same node while the first is buffered.
	var wg sync.WaitGroup
	answers := make([][]RecordResult, 2)
	for i := range answers {
		wg.Go(func() {
			var err error
			answers[i], err = a.Produce(ctx, "t", recs, ProduceOptions{IdempotencyKey: "req-43"})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if fmt.Sprint(answers[0]) != fmt.Sprint(answers[1]) {
		t.Fatalf("concurrent copies got different answers: %v and %v", answers[0], answers[1])
	}
	after, _ := a.DescribeTopic(ctx, "t")
	var grew int64
	for p := range after.PartitionStats {
		grew += after.PartitionStats[p].HighWatermark - before.PartitionStats[p].HighWatermark
	}
	if grew != int64(len(recs)) {
		t.Fatalf("partitions grew by %d records after retries, want %d (one copy of req-43)", grew, len(recs))
	}
	read := readAll(t, a, "t")
	for _, r := range first {
		got := read[r.Partition][r.Offset]
		if got.Offset != r.Offset {
			t.Fatalf("acknowledged record %v not found", r)
		}
	}
}

// gatedStore blocks chunk uploads until the gate opens, and counts them.
type gatedStore struct {
	objectstore.Store
	gate    chan struct{} // nil: never blocks
	mu      sync.Mutex
	puts    atomic.Int64
	blocked atomic.Int64
}

func (g *gatedStore) Put(ctx context.Context, key string, data []byte) error {
	if strings.HasPrefix(key, bucket.ChunkPrefix) {
		g.puts.Add(1)
		g.mu.Lock()
		gate := g.gate
		g.mu.Unlock()
		if gate != nil {
			g.blocked.Add(1)
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return g.Store.Put(ctx, key, data)
}

func (g *gatedStore) List(ctx context.Context, prefix string) iter.Seq2[objectstore.ObjectInfo, error] {
	return g.Store.List(ctx, prefix)
}

func TestOverloadedUnderSlowStoreThenRecovers(t *testing.T) {
	c := newCluster(t)
	slow := &gatedStore{Store: c.store, gate: make(chan struct{})}
	n := c.node(Config{NodeID: "slow", FlushBytes: 16 << 10, MaxBufferedBytes: 64 << 10, WriteTimeout: time.Minute}, slow)
	ctx := t.Context()
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "t", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("x"), 4000)
	var pending sync.WaitGroup
	var overloaded *OverloadedError
	accepted := 0
	for i := 0; overloaded == nil; i++ {
		if i > 1000 {
			t.Fatal("no 429 after 1000 requests against a stalled store")
		}
		// Buffered acks let the test fill the buffer without waiting.
		_, err := n.Produce(ctx, "t", []ProduceRecord{{Value: value, Partition: AnyPartition}}, ProduceOptions{Ack: AckBuffered})
		switch {
		case errors.As(err, &overloaded):
		case err != nil:
			t.Fatal(err)
		default:
			accepted++
		}
	}
	if !errors.Is(overloaded, ErrOverloaded) || overloaded.RetryAfter < time.Second {
		t.Fatalf("overloaded error %v: want ErrOverloaded with a Retry-After of at least 1s", overloaded)
	}
	if accepted*4000 > 64<<10 {
		t.Fatalf("accepted %d bytes with a 64 KiB buffer", accepted*4000)
	}
	// A durable produce waits while the store is stalled ...
	pending.Go(func() {
		if _, err := n.Produce(ctx, "t", []ProduceRecord{{Value: []byte("after")}}, ProduceOptions{}); err == nil {
			return
		} else if !errors.As(err, &overloaded) {
			t.Errorf("produce while stalled: %v", err)
		}
	})
	// ... and once the store recovers, the node accepts and acknowledges.
	slow.mu.Lock()
	close(slow.gate)
	slow.gate = nil
	slow.mu.Unlock()
	pending.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := n.Produce(ctx, "t", []ProduceRecord{{Value: []byte("recovered")}}, ProduceOptions{})
		if err == nil {
			break
		}
		if !errors.As(err, &overloaded) || time.Now().After(deadline) {
			t.Fatalf("produce after the store recovered: %v", err)
		}
		time.Sleep(overloaded.RetryAfter / 10) // a client honouring Retry-After
	}
	desc, _ := n.DescribeTopic(ctx, "t")
	var total int64
	for _, ps := range desc.PartitionStats {
		total += ps.HighWatermark
	}
	if total < int64(accepted)+1 {
		t.Fatalf("%d records committed, %d were accepted before the stall", total, accepted)
	}
}

// The number of PUTs depends on bytes and time, never on partitions.
func TestPutsIndependentOfPartitions(t *testing.T) {
	c := newCluster(t)
	puts := map[int]int64{}
	for _, partitions := range []int{1, 256} {
		counting := &gatedStore{Store: c.store}
		n := c.node(Config{NodeID: fmt.Sprintf("p%d", partitions), FlushBytes: 64 << 10, FlushInterval: time.Hour}, counting)
		ctx := t.Context()
		topic := fmt.Sprintf("p%d", partitions)
		if _, err := n.CreateTopic(ctx, TopicConfig{Name: topic, Partitions: partitions}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 200 {
			var recs []ProduceRecord
			for j := range 10 {
				recs = append(recs, ProduceRecord{Key: fmt.Appendf(nil, "k%d-%d", i, j), Value: bytes.Repeat([]byte{'v'}, 100)})
			}
			wg.Go(func() {
				if _, err := n.Produce(ctx, topic, recs, ProduceOptions{Ack: AckBuffered}); err != nil {
					t.Error(err)
				}
			})
			wg.Wait() // one request at a time, so chunks seal at the same points
		}
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := n.Close(dctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		puts[partitions] = counting.puts.Load()
	}
	if puts[1] != puts[256] || puts[1] == 0 {
		t.Fatalf("PUTs for the same workload: %d with 1 partition, %d with 256", puts[1], puts[256])
	}
	t.Logf("PUTs for 200 requests of 10 records: %d (1 partition) and %d (256 partitions)", puts[1], puts[256])
}

func TestLongPollWokenByOtherNode(t *testing.T) {
	c := newCluster(t)
	a := c.node(Config{NodeID: "writer", FlushInterval: 5 * time.Millisecond}, nil)
	b := c.node(Config{NodeID: "reader"}, nil)
	ctx := t.Context()
	if _, err := a.CreateTopic(ctx, TopicConfig{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		got := make(chan time.Time, 1)
		var res FetchResult
		var ferr error
		go func() {
			res, ferr = b.Fetch(ctx, FetchRequest{Topic: "t", Partition: 0, Offset: int64(round), Wait: 20 * time.Second})
			got <- time.Now()
		}()
		if _, err := a.Produce(ctx, "t", []ProduceRecord{{Value: fmt.Appendf(nil, "r%d", round), Partition: 0}}, ProduceOptions{}); err != nil {
			t.Fatal(err)
		}
		committed := time.Now()
		var woke time.Time
		select {
		case woke = <-got:
		case <-time.After(20 * time.Second):
			t.Fatal("long-poll not woken")
		}
		if ferr != nil || len(res.Records) != 1 || string(res.Records[0].Value) != fmt.Sprintf("r%d", round) {
			t.Fatalf("long-poll returned %+v, %v", res, ferr)
		}
		if lag := woke.Sub(committed); lag > 100*time.Millisecond {
			t.Fatalf("long-poll returned %v after the commit on the other node, want within 100ms", lag)
		}
	}
}

func TestNodeErrors(t *testing.T) {
	c := newCluster(t)
	n := c.node(Config{NodeID: "errs", MaxRecordBytes: 1000}, nil)
	ctx := t.Context()
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "t", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Produce(ctx, "t", []ProduceRecord{{Value: []byte("x"), Partition: 0}}, ProduceOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"create existing topic", second(n.CreateTopic(ctx, TopicConfig{Name: "t", Partitions: 1})), ErrTopicExists},
		{"create bad name", second(n.CreateTopic(ctx, TopicConfig{Name: "bad name", Partitions: 1})), ErrInvalidRequest},
		{"create no partitions", second(n.CreateTopic(ctx, TopicConfig{Name: "u", Partitions: 0})), ErrInvalidRequest},
		{"describe missing", second(n.DescribeTopic(ctx, "nope")), ErrTopicNotFound},
		{"delete missing", n.DeleteTopic(ctx, "nope"), ErrTopicNotFound},
		{"produce missing topic", second(n.Produce(ctx, "nope", []ProduceRecord{{Value: []byte("x")}}, ProduceOptions{})), ErrTopicNotFound},
		{"produce no records", second(n.Produce(ctx, "t", nil, ProduceOptions{})), ErrInvalidRequest},
		{"produce partition out of range", second(n.Produce(ctx, "t", []ProduceRecord{{Value: []byte("x"), Partition: 2}}, ProduceOptions{})), ErrPartitionNotFound},
		{"produce negative partition", second(n.Produce(ctx, "t", []ProduceRecord{{Value: []byte("x"), Partition: -5}}, ProduceOptions{})), ErrInvalidRequest},
		{"produce record too large", second(n.Produce(ctx, "t", []ProduceRecord{{Value: make([]byte, 2000)}}, ProduceOptions{})), ErrTooLarge},
		{"produce bad idempotency key", second(n.Produce(ctx, "t", []ProduceRecord{{Value: []byte("x")}}, ProduceOptions{IdempotencyKey: "a b"})), ErrInvalidRequest},
		{"fetch missing topic", second(n.Fetch(ctx, FetchRequest{Topic: "nope", Partition: 0})), ErrTopicNotFound},
		{"fetch missing partition", second(n.Fetch(ctx, FetchRequest{Topic: "t", Partition: 2})), ErrPartitionNotFound},
		{"fetch past the high watermark", second(n.Fetch(ctx, FetchRequest{Topic: "t", Partition: 0, Offset: 2})), ErrOffsetOutOfRange},
		{"fetch negative offset", second(n.Fetch(ctx, FetchRequest{Topic: "t", Partition: 0, Offset: -1})), ErrOffsetOutOfRange},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	// At the high watermark a fetch without wait answers at once, empty.
	res, err := n.Fetch(ctx, FetchRequest{Topic: "t", Partition: 0, Offset: 1})
	if err != nil || len(res.Records) != 0 || res.NextOffset != 1 || res.HighWatermark != 1 {
		t.Fatalf("fetch at the high watermark = %+v, %v", res, err)
	}
	// Deleting a topic removes it, and its name can be used again.
	if err := n.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if d, err := n.DescribeTopic(ctx, "t"); err != nil || d.PartitionStats[0].HighWatermark != 0 {
		t.Fatalf("recreated topic = %+v, %v", d, err)
	}
}

func second[T any](_ T, err error) error { return err }

// Past the write timeout, waiting producers get ErrUnavailable and nothing
// of theirs is indexed, even if the store comes back later.
func TestWriteTimeoutFailsWithoutIndexing(t *testing.T) {
	c := newCluster(t)
	stalled := &gatedStore{Store: c.store, gate: make(chan struct{})}
	n := c.node(Config{NodeID: "stalled", WriteTimeout: 300 * time.Millisecond}, stalled)
	ctx := t.Context()
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := n.Produce(ctx, "t", []ProduceRecord{{Value: []byte("lost")}}, ProduceOptions{})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("produce against a stalled store: err = %v, want ErrUnavailable", err)
	}
	close(stalled.gate)
	stalled.mu.Lock()
	stalled.gate = nil
	stalled.mu.Unlock()
	if _, err := n.Produce(ctx, "t", []ProduceRecord{{Value: []byte("kept")}}, ProduceOptions{}); err != nil {
		t.Fatal(err)
	}
	read := readAll(t, n, "t")
	if len(read[0]) != 1 || string(read[0][0].Value) != "kept" || read[0][0].Offset != 0 {
		t.Fatalf("partition holds %+v, want only the record produced after the store came back, at offset 0", read[0])
	}
}
