package bucket_test

import (
	"context"
	"errors"
	"iter"
	"slices"
	"testing"
	"time"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/objectstore"
)

// newID returns the id node would give a chunk created at at.
func newID(t *testing.T, node string, at time.Time) chunkid.ID {
	t.Helper()
	gen, err := chunkid.NewGenerator(node, func() time.Time { return at })
	if err != nil {
		t.Fatal(err)
	}
	id, err := gen.New()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestListChunks(t *testing.T) {
	ctx := t.Context()
	b := bucket.New(objectstore.NewMemory())
	base := time.UnixMilli(1_763_700_000_000)
	// Written out of order, by nodes whose names sort against time.
	var ids []chunkid.ID
	for i, node := range []string{"z", "a", "m", "b"} {
		ids = append(ids, newID(t, node, base.Add(time.Duration(3-i)*time.Second)))
	}
	for i, id := range ids {
		if err := b.PutChunk(ctx, id, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// A foreign object is reported and the listing goes on past it; one
	// that sorts before the chunks is not read by a listing with a since.
	if err := b.Store().Put(ctx, bucket.ChunkKey("0-not-a-chunk"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	byTime := slices.Clone(ids)
	slices.SortFunc(byTime, chunkid.ID.Compare) // ids[3], ids[2], ids[1], ids[0]

	for _, tc := range []struct {
		since time.Time
		want  []chunkid.ID
	}{
		{time.Time{}, byTime},
		{base, byTime},
		{base.Add(time.Second), byTime[1:]},
		{base.Add(1500 * time.Millisecond), byTime[2:]},
		{base.Add(3 * time.Second), byTime[3:]},
		{base.Add(time.Hour), nil},
	} {
		var got []chunkid.ID
		foreign := 0
		listing := &bucket.ChunkListing{Since: tc.since}
		for c, err := range b.Chunks(ctx, listing) {
			if errors.Is(err, bucket.ErrForeignKey) {
				foreign++
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Key != bucket.ChunkKey(c.ID.String()) || c.Size != 1 {
				t.Errorf("chunk %+v: key or size wrong", c)
			}
			got = append(got, c.ID)
		}
		wantForeign, wantListed := 0, len(tc.want)
		if tc.since.IsZero() {
			wantForeign, wantListed = 1, len(ids)+1
		}
		if !slices.Equal(got, tc.want) || foreign != wantForeign || listing.Listed != wantListed {
			t.Errorf("since %v: got %v (%d foreign, %d listed), want %v (%d foreign, %d listed)",
				tc.since, got, foreign, listing.Listed, tc.want, wantForeign, wantListed)
		}
	}
	// ListChunks is Chunks without the counts, and stops when asked.
	n := 0
	for _, err := range b.ListChunks(ctx, base.Add(time.Second)) {
		if err != nil && !errors.Is(err, bucket.ErrForeignKey) {
			t.Fatal(err)
		}
		n++
		break
	}
	if n != 1 {
		t.Errorf("ListChunks yielded %d before the break, want 1", n)
	}
	got, err := b.ReadChunkRange(ctx, ids[2].String(), 0, 1)
	if err != nil || len(got) != 1 || got[0] != 2 {
		t.Errorf("ReadChunkRange = %v, %v; want [2]", got, err)
	}
}

func TestTopicConfigs(t *testing.T) {
	ctx := t.Context()
	b := bucket.New(objectstore.NewMemory())
	cfgs := []bucket.TopicConfig{
		{Name: "orders", ID: "01JD3V8Q3E5Z4W9K2M7N6P0R1S", Partitions: 4, RetentionMS: 3600_000, CreatedMS: 1},
		{Name: "orders", ID: "01JD3V8Q3E5Z4W9K2M7N6P0R1T", Partitions: 2, CreatedMS: 2},
		{Name: "payments", ID: "01JD3V8Q3E5Z4W9K2M7N6P0R1V", Partitions: 1, CreatedMS: 3},
	}
	for _, cfg := range cfgs {
		key, err := b.PutTopicConfig(ctx, cfg)
		if err != nil || key != bucket.TopicConfigKey(cfg.Name, cfg.ID) {
			t.Fatalf("PutTopicConfig = %q, %v", key, err)
		}
	}
	// Stored as the JSON that restore and older nodes read.
	raw, err := b.Store().Get(ctx, bucket.TopicConfigKey("payments", cfgs[2].ID))
	if err != nil || string(raw) != `{"name":"payments","id":"01JD3V8Q3E5Z4W9K2M7N6P0R1V","partitions":1,"retention_ms":0,"created_ms":3}` {
		t.Fatalf("stored config = %s, %v", raw, err)
	}
	for id, body := range map[string]string{
		"zz-mismatch": `{"name":"other","id":"x","partitions":1}`,
		"zz-broken":   `{`,
	} {
		if err := b.Store().Put(ctx, bucket.TopicConfigKey("orders", id), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Store().Put(ctx, bucket.TopicPrefix+"orders/readme.txt", []byte("x")); err != nil {
		t.Fatal(err)
	}
	var got []bucket.TopicConfig
	bad, foreign := 0, 0
	for key, err := range b.ListTopicConfigs(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := b.ReadTopicConfig(ctx, key)
		switch {
		case errors.Is(err, bucket.ErrBadTopicConfig):
			bad++
		case errors.Is(err, bucket.ErrForeignKey):
			foreign++
		case err != nil:
			t.Fatalf("read %s: %v", key, err)
		default:
			got = append(got, cfg)
		}
	}
	if !slices.Equal(got, cfgs) || bad != 2 || foreign != 1 {
		t.Errorf("configs = %+v (%d bad, %d foreign), want %+v (2 bad, 1 foreign)", got, bad, foreign, cfgs)
	}
	if err := b.DeleteTopicConfig(ctx, "orders", cfgs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadTopicConfig(ctx, bucket.TopicConfigKey("orders", cfgs[0].ID)); !errors.Is(err, objectstore.ErrNotExist) {
		t.Errorf("read deleted config: %v, want ErrNotExist", err)
	}
}

func TestCheckpoints(t *testing.T) {
	ctx := t.Context()
	b := bucket.New(objectstore.NewMemory())
	base := time.UnixMilli(1_763_700_000_000)
	// Node names sort against time: the listing orders by time.
	var keys []string
	for i, node := range []string{"z", "b", "a"} {
		key, err := b.PutCheckpoint(ctx, base.Add(time.Duration(i)*time.Second), node, []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	if err := b.Store().Put(ctx, bucket.CheckpointPrefix+"not-a-checkpoint", []byte("x")); err != nil {
		t.Fatal(err)
	}
	cps, err := b.ListCheckpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 3 {
		t.Fatalf("checkpoints = %+v, want 3", cps)
	}
	for i, cp := range cps {
		if cp.Key != keys[i] || !cp.Time.Equal(base.Add(time.Duration(i)*time.Second)) {
			t.Errorf("checkpoint %d = %+v, want key %s", i, cp, keys[i])
		}
		if data, err := b.ReadCheckpoint(ctx, cp); err != nil || len(data) != 1 || data[0] != byte(i) {
			t.Errorf("ReadCheckpoint(%s) = %v, %v", cp.Key, data, err)
		}
	}
	if err := b.DeleteCheckpoint(ctx, cps[0]); err != nil {
		t.Fatal(err)
	}
	if cps, err := b.ListCheckpoints(ctx); err != nil || len(cps) != 2 || cps[0].Key != keys[1] {
		t.Errorf("after delete: %+v, %v", cps, err)
	}
}

func TestPing(t *testing.T) {
	b := bucket.New(objectstore.NewMemory())
	if err := b.Ping(t.Context()); err != nil {
		t.Errorf("Ping of an empty store: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Ping(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Ping with a cancelled context: %v, want context.Canceled", err)
	}
}

// afterRecorder is a store whose listing can start after a key, and
// records the keys its listings started after.
type afterRecorder struct {
	objectstore.Store
	afters []string
}

func (s *afterRecorder) ListAfter(ctx context.Context, prefix, after string) iter.Seq2[objectstore.ObjectInfo, error] {
	s.afters = append(s.afters, after)
	return func(yield func(objectstore.ObjectInfo, error) bool) {
		for info, err := range s.Store.List(ctx, prefix) {
			if err == nil && info.Key <= after {
				continue
			}
			if !yield(info, err) || err != nil {
				return
			}
		}
	}
}

// A listing with a since starts, on a store that can, after a key between
// the older chunks and the rest, including a chunk of since's exact
// millisecond: restore and the collector do not pay for listing history.
func TestChunksSinceStartsAfterOlderKeys(t *testing.T) {
	ctx := t.Context()
	rec := &afterRecorder{Store: objectstore.NewMemory()}
	b := bucket.New(rec)
	base := time.UnixMilli(1_763_700_000_000)
	older, at := newID(t, "zzz", base.Add(-time.Millisecond)), newID(t, "a", base)
	for _, id := range []chunkid.ID{older, at} {
		if err := b.PutChunk(ctx, id, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	listing := &bucket.ChunkListing{Since: base}
	var got []chunkid.ID
	for c, err := range b.Chunks(ctx, listing) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c.ID)
	}
	if !slices.Equal(got, []chunkid.ID{at}) || listing.Listed != 1 || len(rec.afters) != 1 {
		t.Fatalf("got %v, %d listed, listings after %q", got, listing.Listed, rec.afters)
	}
	if a := rec.afters[0]; a <= bucket.ChunkKey(older.String()) || a >= bucket.ChunkKey(at.String()) {
		t.Errorf("listing started after %q, want a key between %s and %s", a, bucket.ChunkKey(older.String()), bucket.ChunkKey(at.String()))
	}
}
