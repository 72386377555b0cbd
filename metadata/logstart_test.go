package metadata_test

import (
	"testing"
	"time"

	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/metadata"
)

func TestFirstEntriesAndLogStartAge(t *testing.T) {
	now := time.Now()
	idAt := func(t *testing.T, at time.Time) string {
		gen, err := chunkid.NewGenerator("n1", func() time.Time { return at })
		if err != nil {
			t.Fatal(err)
		}
		id, err := gen.New()
		if err != nil {
			t.Fatal(err)
		}
		return id.String()
	}
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			env := eng.start(t)
			ctx := t.Context()
			tp := metadata.Topic{Name: "ages", ID: "inc-1", Partitions: 3, CreatedMS: now.UnixMilli()}
			if err := env.s.CreateTopic(ctx, tp); err != nil {
				t.Fatal(err)
			}
			old, young := idAt(t, now.Add(-90*time.Second)), idAt(t, now.Add(-30*time.Second))
			if _, err := env.s.Commit(ctx, tp, old, []metadata.Batch{{Partition: 0, Records: 2, Offset: 0, Length: 50}}); err != nil {
				t.Fatal(err)
			}
			if _, err := env.s.Commit(ctx, tp, young, []metadata.Batch{
				{Partition: 0, Records: 2, Offset: 0, Length: 50}, {Partition: 2, Records: 2, Offset: 50, Length: 50},
			}); err != nil {
				t.Fatal(err)
			}
			first, ok, err := env.s.FirstEntries(ctx, "ages", 3)
			if err != nil {
				t.Fatal(err)
			}
			if !ok[0] || ok[1] || !ok[2] || first[0].ChunkID != old || first[2].ChunkID != young {
				t.Fatalf("first entries %+v %v, want the old chunk in 0, none in 1, the young one in 2", first, ok)
			}
			created, has := first[0].Created()
			if !has || created.UnixMilli() != now.Add(-90*time.Second).UnixMilli() {
				t.Fatalf("created %v %v, want the chunk id's time", created, has)
			}
			if age := metadata.LogStartAge(first, ok, now); age < 90*time.Second || age > 90*time.Second+time.Millisecond {
				t.Fatalf("log start age %v, want 90s (the oldest partition)", age)
			}
			if age := metadata.LogStartAge(first[1:2], ok[1:2], now); age != 0 {
				t.Fatalf("log start age of empty partitions %v, want 0", age)
			}
			if _, has := (metadata.IndexEntry{ChunkID: "not-a-chunk-id"}).Created(); has {
				t.Fatal("an object id without a time has a creation time")
			}
			// A deleted topic has no entries.
			if err := env.s.DeleteTopic(ctx, "ages"); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := env.s.FirstEntries(ctx, "ages", 3); err != nil || ok[0] || ok[2] {
				t.Fatalf("after delete: %v %v", ok, err)
			}
		})
	}
}
