package client_test

import (
	"errors"
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
