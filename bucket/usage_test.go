package bucket_test

import (
	"testing"
	"time"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/objectstore"
)

// TestUsage checks the totals, the split by prefix (foreign objects
// included) and the newest checkpoint, which is the newest by key time,
// not by size or writer.
func TestUsage(t *testing.T) {
	ctx := t.Context()
	b := bucket.New(objectstore.NewMemory())
	if u, err := b.Usage(ctx); err != nil || u.Objects != 0 || u.Bytes != 0 || u.NewestCheckpoint != "" {
		t.Fatalf("empty bucket: %+v, %v", u, err)
	}
	base := time.UnixMilli(1_763_700_000_000)
	if err := b.PutChunk(ctx, newID(t, "n", base), make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := b.PutChunk(ctx, newID(t, "n", base.Add(time.Second)), make([]byte, 50)); err != nil {
		t.Fatal(err)
	}
	var newest string
	for i, node := range []string{"z", "a"} {
		key, err := b.PutCheckpoint(ctx, base.Add(time.Duration(i)*time.Second), node, make([]byte, 20-i*5))
		if err != nil {
			t.Fatal(err)
		}
		newest = key
	}
	for key, size := range map[string]int{bucket.CheckpointPrefix + "zzz-not-a-checkpoint": 7, "loose": 3, "other/x": 1} {
		if err := b.Store().Put(ctx, key, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	u, err := b.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u.Objects != 7 || u.Bytes != 100+50+20+15+7+3+1 {
		t.Errorf("totals = %d objects, %d bytes; want 7, 196", u.Objects, u.Bytes)
	}
	want := map[string]bucket.PrefixUsage{
		bucket.ChunkPrefix:      {Objects: 2, Bytes: 150},
		bucket.CheckpointPrefix: {Objects: 3, Bytes: 42},
		"":                      {Objects: 1, Bytes: 3},
		"other/":                {Objects: 1, Bytes: 1},
	}
	if len(u.Prefixes) != len(want) {
		t.Errorf("prefixes = %+v, want %+v", u.Prefixes, want)
	}
	for p, w := range want {
		if u.Prefixes[p] != w {
			t.Errorf("prefix %q = %+v, want %+v", p, u.Prefixes[p], w)
		}
	}
	if u.NewestCheckpoint != newest || u.NewestCheckpointBytes != 15 {
		t.Errorf("newest checkpoint = %s (%d bytes), want %s (15 bytes)", u.NewestCheckpoint, u.NewestCheckpointBytes, newest)
	}
}
