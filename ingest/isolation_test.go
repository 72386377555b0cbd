package ingest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mambamq/mamba/chunk"
)

// TestNoRequestFailsAnother merges, in one chunk, requests that are each
// within the limits but together exceed what one batch of the chunk
// format can hold (records and headers of one partition), with a small
// request to another topic: every request must be committed, none may
// fail the chunk they share.
func TestNoRequestFailsAnother(t *testing.T) {
	c := newCluster(t)
	n := c.node(Config{FlushBytes: 512 << 20, MaxBufferedBytes: 1 << 30, FlushInterval: time.Hour}, nil)
	ctx := t.Context()
	for _, tc := range []TopicConfig{{Name: "a", Partitions: 2}, {Name: "b", Partitions: 1}} {
		if _, err := n.CreateTopic(ctx, tc); err != nil {
			t.Fatal(err)
		}
	}
	// Two requests of 600,000 records for a/0: 1.2 M records together.
	many := make([]ProduceRecord, 600_000)
	for i := range many {
		many[i] = ProduceRecord{Value: []byte{}, Partition: 0}
	}
	// Two requests of 6 records with 100,000 headers each for a/1: 1.2 M
	// headers together.
	hs := make([]chunk.Header, 100_000)
	for i := range hs {
		hs[i] = chunk.Header{Name: "h"}
	}
	heavy := make([]ProduceRecord, 6)
	for i := range heavy {
		heavy[i] = ProduceRecord{Value: []byte("v"), Headers: hs, Partition: 1}
	}
	buffered := ProduceOptions{Ack: AckBuffered}
	for i, recs := range [][]ProduceRecord{many, many, heavy, heavy} {
		if _, err := n.Produce(ctx, "a", recs, buffered); err != nil {
			t.Fatalf("request %d to a: %v", i, err)
		}
	}
	type answer struct {
		res []RecordResult
		err error
	}
	durable := make(chan answer, 1)
	go func() {
		res, err := n.Produce(ctx, "b", []ProduceRecord{{Value: []byte("important"), Partition: AnyPartition}}, ProduceOptions{})
		durable <- answer{res, err}
	}()
	// Wait until b's request is in the open chunk with the others, then
	// drain, which writes that chunk.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n.mu.Lock()
		reqs := 0
		if n.open != nil {
			reqs = len(n.open.reqs)
		}
		n.mu.Unlock()
		if reqs == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the open chunk holds %d requests, want 5", reqs)
		}
		time.Sleep(time.Millisecond)
	}
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if a := <-durable; a.err != nil || len(a.res) != 1 || a.res[0].Offset != 0 {
		t.Fatalf("the request to b: %+v, %v; want offset 0", a.res, a.err)
	}

	reader := c.node(Config{}, nil)
	for topic, want := range map[string][]int64{"a": {1_200_000, 12}, "b": {1}} {
		d, err := reader.DescribeTopic(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		for p, ps := range d.PartitionStats {
			if ps.HighWatermark != want[p] {
				t.Errorf("%s/%d: high watermark %d, want %d", topic, p, ps.HighWatermark, want[p])
			}
		}
	}
}

// TestAdmissionRefusesWhatNoBatchHolds checks that a request the chunk
// format could not hold in one batch is refused on its own (413 or 400),
// before it reaches a chunk.
func TestAdmissionRefusesWhatNoBatchHolds(t *testing.T) {
	c := newCluster(t)
	n := c.node(Config{}, nil)
	ctx := t.Context()
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "a", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	// Six records of 200,000 headers: each record is within the record
	// size limit, the request is over the header count.
	hs := make([]chunk.Header, 200_000)
	for i := range hs {
		hs[i] = chunk.Header{Name: "h"}
	}
	for _, tc := range []struct {
		name string
		recs []ProduceRecord
		want error
	}{
		{"too many records", make([]ProduceRecord, chunk.MaxBatchRecords+1), ErrTooLarge},
		{"too many headers", []ProduceRecord{{Headers: hs}, {Headers: hs}, {Headers: hs}, {Headers: hs}, {Headers: hs}, {Headers: hs}}, ErrTooLarge},
		{"header name not UTF-8", []ProduceRecord{{Headers: []chunk.Header{{Name: "\xff"}}}}, ErrInvalidRequest},
	} {
		_, err := n.Produce(ctx, "a", tc.recs, ProduceOptions{})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestChunkSealedBeforeTooManyBatches lowers the chunk's batch budget and
// checks that accept seals the open chunk before a request would take it
// over: requests with an idempotency key open a batch per partition.
func TestChunkSealedBeforeTooManyBatches(t *testing.T) {
	old := chunkBatchBudget
	chunkBatchBudget = 8
	t.Cleanup(func() { chunkBatchBudget = old })
	c := newCluster(t)
	n := c.node(Config{FlushInterval: time.Hour}, nil)
	ctx := t.Context()
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "a", Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	spread := make([]ProduceRecord, 4)
	for p := range spread {
		spread[p] = ProduceRecord{Value: []byte("v"), Partition: int32(p)}
	}
	for i := range 3 {
		if _, err := n.Produce(ctx, "a", spread, ProduceOptions{Ack: AckBuffered, IdempotencyKey: fmt.Sprintf("k%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	n.mu.Lock()
	open, batches := len(n.open.reqs), n.open.batches
	n.mu.Unlock()
	if open != 1 || batches != 4 {
		t.Errorf("open chunk holds %d requests and %d batches, want 1 and 4 (the first two sealed together)", open, batches)
	}
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := c.node(Config{}, nil).DescribeTopic(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range d.PartitionStats {
		if ps.HighWatermark != 3 {
			t.Errorf("a/%d: high watermark %d, want 3", ps.Partition, ps.HighWatermark)
		}
	}
}

// TestBufferCountsRecordsInMemory checks that the buffer counts a record
// at its size in memory, not only its bytes: tiny records fill it long
// before their bytes would, a request that alone needs more than the
// whole buffer is refused with ErrTooLarge, and one that does not fit
// now with ErrOverloaded.
func TestBufferCountsRecordsInMemory(t *testing.T) {
	c := newCluster(t)
	n := c.node(Config{FlushBytes: 64 << 10, MaxBufferedBytes: 1 << 20, FlushInterval: time.Hour}, nil)
	ctx := t.Context()
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "a", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	empty := func(k int) []ProduceRecord {
		recs := make([]ProduceRecord, k)
		for i := range recs {
			recs[i] = ProduceRecord{Value: []byte{}, Partition: 0}
		}
		return recs
	}
	per := 16 + bufferedRecordOverhead // an empty record in memory
	whole := int((1<<20)/per) + 1      // more than the buffer
	if _, err := n.Produce(ctx, "a", empty(whole), ProduceOptions{Ack: AckBuffered}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("%d empty records (%d bytes of them, %d in memory): %v, want ErrTooLarge", whole, whole*16, int64(whole)*per, err)
	}
	part := whole * 3 / 4
	if _, err := n.Produce(ctx, "a", empty(part), ProduceOptions{Ack: AckBuffered}); err != nil {
		t.Fatalf("%d empty records: %v", part, err)
	}
	n.mu.Lock()
	buffered := n.buffered
	n.mu.Unlock()
	if buffered != int64(part)*per {
		t.Errorf("buffer holds %d, want %d records x %d", buffered, part, per)
	}
	if _, err := n.Produce(ctx, "a", empty(whole/2), ProduceOptions{Ack: AckBuffered}); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("%d more empty records: %v, want ErrOverloaded", whole/2, err)
	}
}
