package client_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
)

func produceValues(t *testing.T, p *client.Producer, topic string, partition int32, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		p.ProduceAsync(client.Record{Topic: topic, Value: []byte("v" + strconv.Itoa(i)), Partition: new(partition)})
	}
	if err := p.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// The Records iterator reads what is there, then long-polls and yields
// records produced while it waits.
func TestPartitionConsumerRecordsTails(t *testing.T) {
	node := startNode(t)
	c := newClient(t, node.URL)
	topic := createTopic(t, c, 2)
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(t.Context())
	produceValues(t, p, topic, 1, 0, 5)

	pc, err := c.NewPartitionConsumer(topic, 1, client.OffsetOldest, client.WithMaxRecords(2))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	type item struct {
		rec client.ConsumedRecord
		err error
	}
	items := make(chan item)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := 0
		for rec, err := range pc.Records(ctx) {
			items <- item{rec, err}
			if n++; n == 10 || err != nil {
				return
			}
		}
	}()
	next := func() client.ConsumedRecord {
		t.Helper()
		select {
		case it := <-items:
			if it.err != nil {
				t.Fatal(it.err)
			}
			return it.rec
		case <-ctx.Done():
			t.Fatal("no record within a minute")
		}
		return client.ConsumedRecord{}
	}
	for i := range 5 {
		if r := next(); r.Offset != int64(i) || string(r.Value) != "v"+strconv.Itoa(i) || r.Partition != 1 {
			t.Fatalf("record %d: offset %d value %q partition %d", i, r.Offset, r.Value, r.Partition)
		}
	}
	// The iterator now waits at the end of the partition.
	produceValues(t, p, topic, 1, 5, 10)
	for i := 5; i < 10; i++ {
		if r := next(); r.Offset != int64(i) || string(r.Value) != "v"+strconv.Itoa(i) {
			t.Fatalf("tailed record %d: offset %d value %q", i, r.Offset, r.Value)
		}
	}
	<-done
	if pos := pc.Position(); pos != 10 {
		t.Fatalf("position after 10 records: %d", pos)
	}
	if hwm := pc.HighWatermark(); hwm != 10 {
		t.Fatalf("high watermark: %d", hwm)
	}

	// OffsetNewest starts at the high watermark.
	newest, err := c.NewPartitionConsumer(topic, 1, client.OffsetNewest, client.WithMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := newest.Fetch(ctx); err != nil || len(recs) != 0 || newest.Position() != 10 {
		t.Fatalf("fetch at newest: %d records, position %d, %v", len(recs), newest.Position(), err)
	}
	produceValues(t, p, topic, 1, 10, 11)
	newest, _ = c.NewPartitionConsumer(topic, 1, 10, client.WithMaxWait(5*time.Second))
	if recs, err := newest.Fetch(ctx); err != nil || len(recs) != 1 || recs[0].Offset != 10 {
		t.Fatalf("fetch the new record: %v %v", recs, err)
	}

	// A break keeps the position just past the last record seen.
	pc.SetPosition(client.OffsetOldest)
	for rec, err := range pc.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Offset == 3 {
			break
		}
	}
	if pc.Position() != 4 {
		t.Fatalf("position after breaking at offset 3: %d", pc.Position())
	}

	// The iteration ends quietly with its context.
	short, cancelShort := context.WithCancel(ctx)
	pc.SetPosition(client.OffsetNewest)
	go func() {
		for _, err := range pc.Records(short) {
			if err != nil {
				t.Errorf("after cancel: %v", err)
			}
		}
		close(items)
	}()
	cancelShort()
	<-items

	// A permanent error is yielded once and ends the iteration.
	missing, err := c.NewPartitionConsumer("no-such-topic", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	for _, err := range missing.Records(ctx) {
		errs = append(errs, err)
	}
	if len(errs) != 1 || !errors.Is(errs[0], client.ErrTopicNotFound) {
		t.Fatalf("iterating a missing topic: %v", errs)
	}
}

// The Records iterator rides out 503s, 429s and dropped connections on
// fetches (with retries of single requests turned off, so that the
// iterator itself retries) and reads every record once, in order.
func TestPartitionConsumerRecordsRetries(t *testing.T) {
	node := startNode(t)
	c := newClient(t, node.URL)
	topic := createTopic(t, c, 1)
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(t.Context())
	produceValues(t, p, topic, 0, 0, 30)

	fp := newFaultProxy(t, node.URL, []fault{forward}, []fault{unavailable},
		[]fault{unavailable, forward, dropAfterNode, overloaded, forward, unavailable, unavailable, forward})
	fc := newClient(t, fp.URL, client.WithRetries(1, time.Millisecond, 10*time.Millisecond))
	pc, err := fc.NewPartitionConsumer(topic, 0, client.OffsetOldest, client.WithMaxRecords(4), client.WithMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	n := 0
	for rec, err := range pc.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Offset != int64(n) || string(rec.Value) != "v"+strconv.Itoa(n) {
			t.Fatalf("record %d: %s at %d", n, rec.Value, rec.Offset)
		}
		if n++; n == 30 {
			break
		}
	}
	if fp.count(unavailable) != 4 || fp.count(overloaded) != 1 || fp.count(dropAfterNode) != 1 {
		t.Fatalf("faults injected: %d 503, %d 429, %d dropped", fp.count(unavailable), fp.count(overloaded), fp.count(dropAfterNode))
	}
}
