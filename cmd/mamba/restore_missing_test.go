package main

import (
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore/filestore"
	"github.com/mambamq/mamba/recovery"
)

// A checkpoint naming a chunk the bucket lacks stops mamba restore before
// it changes Redis, with an error naming the chunk and the flag; with
// --allow-missing-chunks the restore drops the entry and says so.
func TestRestoreCommandMissingChunk(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	store, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	src := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: src.Addr()})
	t.Cleanup(func() { rdb.Close() })
	meta := metadata.New(rdb, metadata.Options{})
	tp := metadata.Topic{Name: "t", ID: "t-id", Partitions: 1, CreatedMS: time.Now().UnixMilli()}
	if err := meta.CreateTopic(ctx, tp); err != nil {
		t.Fatal(err)
	}
	gen, err := chunkid.NewGenerator("n1", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	id, err := gen.New()
	if err != nil {
		t.Fatal(err)
	}
	// Committed, but its object never reaches this bucket.
	if _, err := meta.Commit(ctx, tp, id.String(), []metadata.Batch{{Partition: 0, Records: 1, Length: 10}}); err != nil {
		t.Fatal(err)
	}
	snap, err := meta.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data, err := recovery.EncodeCheckpoint(snap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bucket.New(store).PutCheckpoint(ctx, snap.Time, "n1", data); err != nil {
		t.Fatal(err)
	}

	dst := miniredis.RunT(t)
	args := []string{"restore", "--bucket", "file://" + dir, "--redis", "redis://" + dst.Addr() + "/0"}
	stdout, _, err := runMamba(t, args...)
	if err == nil || !strings.Contains(err.Error(), "before changing Redis") || !strings.Contains(err.Error(), "--allow-missing-chunks") ||
		!strings.Contains(err.Error(), bucket.ChunkKey(id.String())) {
		t.Fatalf("restore: err = %v, want one naming the chunk and --allow-missing-chunks\n%s", err, stdout)
	}
	if keys := dst.Keys(); len(keys) != 0 {
		t.Fatalf("Redis after the refused restore holds %v", keys)
	}
	stdout, _, err = runMamba(t, append(args, "--allow-missing-chunks")...)
	if err != nil || !strings.Contains(stdout, "missing:     1 chunks") || !strings.Contains(stdout, "1 index entries") {
		t.Fatalf("restore --allow-missing-chunks: %v\n%s", err, stdout)
	}
}
