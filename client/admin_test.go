package client_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
)

func TestAdminRoundTripAndErrors(t *testing.T) {
	node := startNode(t)
	c := newClient(t, node.URL)
	ctx := t.Context()

	created, err := c.CreateTopic(ctx, "orders", 3, client.WithRetention(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := (client.Topic{Name: "orders", Partitions: 3, Retention: 48 * time.Hour}); created != want {
		t.Fatalf("created %+v, want %+v", created, want)
	}
	if _, err := c.CreateTopic(ctx, "events", 1); err != nil {
		t.Fatal(err)
	}

	_, err = c.CreateTopic(ctx, "orders", 3)
	if !errors.Is(err, client.ErrTopicExists) {
		t.Fatalf("create again: %v, want ErrTopicExists", err)
	}
	ae, ok := errors.AsType[*client.APIError](err)
	if !ok || ae.Status != http.StatusConflict || ae.Code != "topic_exists" || ae.Message == "" {
		t.Fatalf("create again: %#v, want a 409 topic_exists *APIError with a message", ae)
	}
	if errors.Is(err, client.ErrTopicNotFound) {
		t.Fatal("a topic_exists error matches ErrTopicNotFound")
	}

	topics, err := c.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(topics))
	for i, tp := range topics {
		names[i] = tp.Name
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"events", "orders"}) {
		t.Fatalf("list: %v", names)
	}

	d, err := c.DescribeTopic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if d.Partitions != 3 || len(d.PartitionStats) != 3 || d.Retention != 48*time.Hour {
		t.Fatalf("describe: %+v", d)
	}
	for i, s := range d.PartitionStats {
		if s != (client.PartitionStats{Partition: int32(i)}) {
			t.Fatalf("partition stats %d: %+v", i, s)
		}
	}

	// Error mapping: each code gives its sentinel.
	if _, err := c.CreateTopic(ctx, "bad", 0); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("0 partitions: %v, want ErrInvalidRequest", err)
	}
	pc, err := c.NewPartitionConsumer("orders", 7, 0, client.WithMaxWait(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Fetch(ctx); !errors.Is(err, client.ErrPartitionNotFound) {
		t.Fatalf("fetch partition 7 of 3: %v, want ErrPartitionNotFound", err)
	}
	pc, err = c.NewPartitionConsumer("orders", 0, 5, client.WithMaxWait(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Fetch(ctx); !errors.Is(err, client.ErrOffsetOutOfRange) {
		t.Fatalf("fetch above the high watermark: %v, want ErrOffsetOutOfRange", err)
	}

	if err := c.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeTopic(ctx, "orders"); !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("describe deleted topic: %v, want ErrTopicNotFound", err)
	}
	if err := c.DeleteTopic(ctx, "orders"); !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("delete deleted topic: %v, want ErrTopicNotFound", err)
	}
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	if _, err := p.Produce(ctx, client.Record{Topic: "orders", Value: []byte("x")}); !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("produce to a deleted topic: %v, want ErrTopicNotFound", err)
	}
}

func TestUpdateTopicRetentionIsEnforced(t *testing.T) {
	node := startNode(t, "--retention-interval", "50ms")
	c := newClient(t, node.URL)
	ctx := t.Context()

	created, err := c.CreateTopic(ctx, "logs", 1, client.WithRetentionBytes(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	if created.RetentionBytes != 1<<30 || created.Retention != 0 {
		t.Fatalf("created %+v, want retention_bytes 1 GiB and no time retention", created)
	}
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	// Three durable acks in a row: three chunks, three index entries.
	for i := range 3 {
		if _, err := p.Produce(ctx, client.Record{Topic: "logs", Value: []byte(fmt.Sprintf("record-%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := c.DescribeTopic(ctx, "logs")
	if err != nil {
		t.Fatal(err)
	}
	if before.Objects != 3 || before.StoredBytes == 0 || before.PartitionStats[0].StoredBytes != before.StoredBytes {
		t.Fatalf("before: %+v, want 3 objects and the partition's bytes", before)
	}

	d, err := c.UpdateTopic(ctx, "logs", client.WithRetention(time.Hour), client.WithRetentionBytes(1))
	if err != nil {
		t.Fatal(err)
	}
	if d.Retention != time.Hour || d.RetentionBytes != 1 || d.Name != "logs" || len(d.PartitionStats) != 1 {
		t.Fatalf("update answered %+v", d)
	}
	// The node's retention job keeps only the newest batch.
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err = c.DescribeTopic(ctx, "logs")
		if err != nil {
			t.Fatal(err)
		}
		if d.PartitionStats[0].LogStartOffset == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log start still %d after 10 s, want 2", d.PartitionStats[0].LogStartOffset)
		}
		time.Sleep(20 * time.Millisecond) // polling under a deadline
	}
	if d.StoredBytes >= before.StoredBytes || d.Objects != 1 || d.LogStartAge <= 0 {
		t.Fatalf("after retention: %+v, want fewer bytes than %d, 1 object, an age", d, before.StoredBytes)
	}
	pc, err := c.NewPartitionConsumer("logs", 0, 0, client.WithMaxWait(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Fetch(ctx); !errors.Is(err, client.ErrOffsetOutOfRange) {
		t.Fatalf("fetch below the log start: %v, want ErrOffsetOutOfRange", err)
	}

	if _, err := c.UpdateTopic(ctx, "logs"); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("update without options: %v, want ErrInvalidRequest", err)
	}
	if _, err := c.UpdateTopic(ctx, "logs", client.WithRetention(-time.Second)); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("negative retention: %v, want ErrInvalidRequest", err)
	}
	if _, err := c.UpdateTopic(ctx, "nope", client.WithRetention(time.Second)); !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("unknown topic: %v, want ErrTopicNotFound", err)
	}
}
