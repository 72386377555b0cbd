package ingest

import (
	"errors"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

func TestUpdateTopicWritesTheBucketConfigThenRedis(t *testing.T) {
	ctx := t.Context()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	meta := metadata.New(rdb, metadata.Options{})
	mem := objectstore.NewMemory()
	n, err := New(Config{NodeID: "n1"}, meta, mem, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	bkt := bucket.New(mem)
	created, err := n.CreateTopic(ctx, TopicConfig{Name: "orders", Partitions: 2, RetentionMS: 1000, RetentionBytes: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if created.RetentionBytes != 5000 {
		t.Fatalf("created %+v, want retention_bytes kept", created)
	}
	tp, err := meta.Topic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	ms := int64(60_000)
	got, err := n.UpdateTopic(ctx, "orders", TopicUpdate{RetentionMS: &ms})
	if err != nil {
		t.Fatal(err)
	}
	if want := (TopicConfig{Name: "orders", Partitions: 2, RetentionMS: 60_000, RetentionBytes: 5000}); got != want {
		t.Fatalf("update answered %+v, want %+v", got, want)
	}
	cfg, err := bkt.ReadTopicConfig(ctx, bucket.TopicConfigKey("orders", tp.ID))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RetentionMS != 60_000 || cfg.RetentionBytes != 5000 || cfg.ID != tp.ID || cfg.Partitions != 2 {
		t.Fatalf("bucket config after update %+v", cfg)
	}
	if after, _ := meta.Topic(ctx, "orders"); after.RetentionMS != 60_000 || after.RetentionBytes != 5000 {
		t.Fatalf("redis after update %+v", after)
	}
	d, err := n.DescribeTopic(ctx, "orders")
	if err != nil || d.TopicConfig != got || d.StoredBytes != 0 || d.Objects != 0 || d.LogStartAge != 0 || len(d.PartitionStats) != 2 {
		t.Fatalf("describe %+v %v", d, err)
	}

	// Every bad field at once, and nothing written.
	neg, huge := int64(-1), MaxRetentionMS+1
	_, err = n.UpdateTopic(ctx, "orders", TopicUpdate{RetentionMS: &huge, RetentionBytes: &neg})
	if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "retention_ms") || !strings.Contains(err.Error(), "retention_bytes") {
		t.Fatalf("bad update: %v, want invalid_request naming both fields", err)
	}
	if _, err := n.UpdateTopic(ctx, "orders", TopicUpdate{}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("empty update: %v", err)
	}
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "big", Partitions: 1, RetentionBytes: MaxRetentionBytes + 1}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("create with absurd retention_bytes: %v", err)
	}
	if _, err := n.UpdateTopic(ctx, "nope", TopicUpdate{RetentionMS: &ms}); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("unknown topic: %v, want ErrTopicNotFound", err)
	}
	var keys []string
	for key, err := range bkt.ListTopicConfigs(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	if len(keys) != 1 {
		t.Fatalf("topic configs in the bucket: %v, want orders' only", keys)
	}
}
