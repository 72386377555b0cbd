package recovery

import (
	"context"
	"testing"
	"time"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/objectstore"
)

// reportingStore is a memory store that reports every object as
// replicated, as a minio-go store with a replication rule would.
type reportingStore struct{ *objectstore.Memory }

func (s reportingStore) ReplicationStatus(ctx context.Context, key string) (string, error) {
	if _, err := s.Stat(ctx, key); err != nil {
		return "", err
	}
	return "COMPLETED", nil
}

func putKeys(t *testing.T, s objectstore.Store, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := s.Put(t.Context(), k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCompareBuckets(t *testing.T) {
	base := time.UnixMilli(1_763_700_000_000).UTC()
	var ids []chunkid.ID
	for i := range 4 {
		gen, err := chunkid.NewGenerator("node-a", func() time.Time { return base.Add(time.Duration(i) * time.Second) })
		if err != nil {
			t.Fatal(err)
		}
		id, err := gen.New()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	key := func(i int) string { return bucket.ChunkKey(ids[i].String()) }
	ckptOld, ckptNew := bucket.CheckpointKey(base, "node-a"), bucket.CheckpointKey(base.Add(3*time.Second), "node-a")

	src := reportingStore{objectstore.NewMemory()}
	dst := objectstore.NewMemory()
	// The target lacks chunk 1 (replication need not keep order) and
	// chunk 3 and the newest checkpoint (not replicated yet); objects that
	// are not chunks or checkpoints are ignored.
	putKeys(t, src, key(0), key(1), key(2), key(3), ckptOld, ckptNew, bucket.ChunkKey("foreign"), bucket.CheckpointPrefix+"foreign")
	putKeys(t, dst, key(0), key(2), ckptOld)

	now := base.Add(time.Hour)
	r, err := CompareBuckets(t.Context(), bucket.Instrument(src, nil), bucket.Instrument(dst, nil),
		CompareOptions{ReplicationStatus: true, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if r.Source.Chunks != 4 || r.Source.NewestChunk != key(3) || !r.Source.NewestChunkTime.Equal(base.Add(3*time.Second)) ||
		r.Source.Checkpoints != 2 || r.Source.NewestCheckpoint != ckptNew || !r.Source.NewestCheckpointTime.Equal(base.Add(3*time.Second)) {
		t.Errorf("source = %+v", r.Source)
	}
	if r.Target.Chunks != 2 || r.Target.NewestChunk != key(2) || r.Target.Checkpoints != 1 || r.Target.NewestCheckpoint != ckptOld {
		t.Errorf("target = %+v", r.Target)
	}
	if r.InSync || r.ChunksMissing != 2 || r.ChunksNewer != 1 || r.CheckpointsMissing != 1 || r.CheckpointsNewer != 1 {
		t.Errorf("report = %+v", r)
	}
	if r.Lag() != time.Second {
		t.Errorf("lag = %v, want 1s between the newest chunks", r.Lag())
	}
	// The three newest chunks and the newest checkpoint, through the
	// instrumented wrapper.
	want := []ObjectReplication{{key(1), "COMPLETED"}, {key(2), "COMPLETED"}, {key(3), "COMPLETED"}, {ckptNew, "COMPLETED"}}
	if len(r.Replication) != len(want) {
		t.Fatalf("replication = %+v, want %+v", r.Replication, want)
	}
	for i := range want {
		if r.Replication[i] != want[i] {
			t.Errorf("replication[%d] = %+v, want %+v", i, r.Replication[i], want[i])
		}
	}

	// Once the target has everything it is in sync; a store that cannot
	// report replication status reports none, even wrapped.
	putKeys(t, dst, key(1), key(3), ckptNew)
	r, err = CompareBuckets(t.Context(), bucket.Instrument(dst, nil), bucket.Instrument(src, nil), CompareOptions{ReplicationStatus: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.InSync || r.LagMillis != 0 || r.ChunksMissing != 0 || r.ChunksNewer != 0 || r.Replication != nil {
		t.Errorf("report after catching up = %+v", r)
	}

	// An empty target lags by the age of the source's newest chunk.
	r, err = CompareBuckets(t.Context(), src, objectstore.NewMemory(), CompareOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if r.InSync || r.Lag() != now.Sub(base.Add(3*time.Second)) || r.ChunksNewer != 4 || r.CheckpointsMissing != 2 {
		t.Errorf("report against an empty target = %+v", r)
	}
}

func TestBehind(t *testing.T) {
	for _, tc := range []struct {
		src, dst       []string
		newer, missing int
	}{
		{nil, nil, 0, 0},
		{[]string{"a", "b"}, nil, 2, 2},
		{[]string{"a", "b", "c"}, []string{"a", "b", "c"}, 0, 0},
		{[]string{"a", "b", "c"}, []string{"a", "c"}, 0, 1},
		{[]string{"a", "b", "c", "d"}, []string{"a", "b"}, 2, 2},
		{[]string{"b", "c"}, []string{"a", "b", "c"}, 0, 0},
	} {
		newest := ""
		if len(tc.dst) > 0 {
			newest = tc.dst[len(tc.dst)-1]
		}
		if newer, missing := behind(tc.src, tc.dst, newest); newer != tc.newer || missing != tc.missing {
			t.Errorf("behind(%v, %v) = %d, %d; want %d, %d", tc.src, tc.dst, newer, missing, tc.newer, tc.missing)
		}
	}
}
