package ingest

import (
	"bytes"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestSubmitReleasesOnce checks the ProduceRequest contract: the node
// calls Release exactly once, before Submit returns when it refuses the
// request, and otherwise once the records are in their chunk (so by the
// time a durable Submit returns, or the node has drained).
func TestSubmitReleasesOnce(t *testing.T) {
	c := newCluster(t)
	n := c.node(Config{FlushBytes: 32 << 10, MaxBufferedBytes: 64 << 10, FlushInterval: time.Hour}, nil)
	if _, err := n.CreateTopic(t.Context(), TopicConfig{Name: "t", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	var counts []*atomic.Int32
	request := func(topic string, records []ProduceRecord, opts ProduceOptions) ProduceRequest {
		count := new(atomic.Int32)
		counts = append(counts, count)
		return ProduceRequest{Topic: topic, Records: records, Options: opts, Release: func() { count.Add(1) }}
	}
	value := func(size int) []ProduceRecord {
		return []ProduceRecord{{Value: bytes.Repeat([]byte("v"), size), Partition: 0}}
	}
	buffered := ProduceOptions{Ack: AckBuffered}

	// Refused: each is released before Submit returns.
	for i, tc := range []struct {
		name string
		req  ProduceRequest
		want error
	}{
		{"no records", request("t", nil, ProduceOptions{}), ErrInvalidRequest},
		{"bad idempotency key", request("t", value(1), ProduceOptions{IdempotencyKey: "a b"}), ErrInvalidRequest},
		{"unknown topic", request("nope", value(1), ProduceOptions{}), ErrTopicNotFound},
		{"unknown partition", request("t", []ProduceRecord{{Value: []byte("x"), Partition: 7}}, ProduceOptions{}), ErrPartitionNotFound},
		{"record too large", request("t", value(2<<20), ProduceOptions{}), ErrTooLarge},
	} {
		// The table made the requests in order: counts[i] is case i's.
		if _, err := n.Submit(t.Context(), tc.req); !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if got := counts[i].Load(); got != 1 {
			t.Errorf("%s: released %d times before Submit returned, want 1", tc.name, got)
		}
	}

	// Accepted and buffered (no flush for an hour): not released yet. A
	// retry with the same key joins it as a follower.
	first := request("t", value(20<<10), ProduceOptions{Ack: AckBuffered, IdempotencyKey: "k"})
	if _, err := n.Submit(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	follower := request("t", value(20<<10), ProduceOptions{Ack: AckBuffered, IdempotencyKey: "k"})
	if _, err := n.Submit(t.Context(), follower); err != nil {
		t.Fatal(err)
	}
	accepted := counts[len(counts)-2:]
	for i, c := range accepted {
		if got := c.Load(); got != 0 {
			t.Errorf("buffered request %d released %d times before its chunk, want 0", i, got)
		}
	}
	// Refused by the full buffer.
	if _, err := n.Submit(t.Context(), request("t", value(40<<10), buffered)); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("over the buffer: %v, want ErrOverloaded", err)
	}
	if got := counts[len(counts)-1].Load(); got != 1 {
		t.Errorf("overloaded request released %d times, want 1", got)
	}

	// Draining writes the chunk: each accepted request is released once.
	if err := n.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, c := range accepted {
		if got := c.Load(); got != 1 {
			t.Errorf("accepted request %d released %d times after the drain, want 1", i, got)
		}
	}
}
