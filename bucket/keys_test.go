package bucket_test

import (
	"errors"
	"testing"
	"time"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/chunkid"
)

func TestChunkKey(t *testing.T) {
	gen, err := chunkid.NewGenerator("node-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := gen.New()
	if err != nil {
		t.Fatal(err)
	}
	key := bucket.ChunkKey(id.String())
	if key != "chunks/"+id.String() {
		t.Fatalf("key = %q", key)
	}
	got, err := bucket.ParseChunkKey(key)
	if err != nil || got != id {
		t.Fatalf("ParseChunkKey(%q) = %v, %v; want %v", key, got, err, id)
	}
	for _, bad := range []string{
		id.String(),
		"chunks/" + id.String()[:10],
		"chunks/not-a-chunk-id",
		"topics/" + id.String(),
	} {
		if _, err := bucket.ParseChunkKey(bad); !errors.Is(err, bucket.ErrForeignKey) {
			t.Errorf("ParseChunkKey(%q) = %v, want ErrForeignKey", bad, err)
		}
	}
}

func TestTopicConfigKey(t *testing.T) {
	key := bucket.TopicConfigKey("orders", "01JD3V8Q3E5Z4W9K2M7N6P0R1S")
	if key != "topics/orders/01JD3V8Q3E5Z4W9K2M7N6P0R1S.json" {
		t.Fatalf("key = %q", key)
	}
	name, id, err := bucket.ParseTopicConfigKey(key)
	if err != nil || name != "orders" || id != "01JD3V8Q3E5Z4W9K2M7N6P0R1S" {
		t.Fatalf("ParseTopicConfigKey = %q, %q, %v", name, id, err)
	}
	for _, bad := range []string{
		"topics/orders/x.txt",
		"topics/orders/.json",
		"topics/orders.json",
		"topics/orders/a/b.json",
		"chunks/orders/x.json",
	} {
		if _, _, err := bucket.ParseTopicConfigKey(bad); !errors.Is(err, bucket.ErrForeignKey) {
			t.Errorf("ParseTopicConfigKey(%q) = %v, want ErrForeignKey", bad, err)
		}
	}
}

func TestCheckpointKey(t *testing.T) {
	at := time.UnixMilli(1_763_700_000_123)
	key := bucket.CheckpointKey(at, "node-a")
	if key != "checkpoints/00000001763700000123-node-a.ckpt" {
		t.Fatalf("key = %q", key)
	}
	got, node, err := bucket.ParseCheckpointKey(key)
	if err != nil || !got.Equal(at) || node != "node-a" {
		t.Fatalf("ParseCheckpointKey = %v, %q, %v", got, node, err)
	}
	// Keys sort by time, whatever the node.
	if later := bucket.CheckpointKey(at.Add(time.Millisecond), "a"); later <= key {
		t.Fatalf("%q sorts before %q", later, key)
	}
	for _, bad := range []string{
		"checkpoints/1763700000123-node-a.ckpt",
		"checkpoints/00000001763700000123-node-a",
		"checkpoints/00000001763700000123_node-a.ckpt",
		"checkpoints/0000000176370000012x-node-a.ckpt",
		"checkpoints/00000001763700000123-.ckpt",
		"checkpoints/00000001763700000123-a/b.ckpt",
		"other/00000001763700000123-node-a.ckpt",
	} {
		if _, _, err := bucket.ParseCheckpointKey(bad); !errors.Is(err, bucket.ErrForeignKey) {
			t.Errorf("bucket.ParseCheckpointKey(%q) succeeded", bad)
		}
	}
}
