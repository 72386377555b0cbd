package metadata_test

import (
	"testing"

	"github.com/mambamq/mamba/metadata"
)

// TestIndexEntries checks the count over every topic and partition, and
// that trims and topic deletion lower it.
func TestIndexEntries(t *testing.T) {
	runOnEngines(t, []string{"count"}, func(s string) string { return s }, func(t *testing.T, e *scriptEnv, _ string) {
		ctx := t.Context()
		count := func(want int64) {
			t.Helper()
			if got, err := e.s.IndexEntries(ctx); err != nil || got != want {
				t.Fatalf("IndexEntries = %d, %v; want %d", got, err, want)
			}
		}
		count(0)
		threeChunks(ctx, t, e.s) // 3 entries in partition 0, 1 in partition 1
		other := metadata.Topic{Name: "u", ID: "u-id", Partitions: 3}
		if err := e.s.CreateTopic(ctx, other); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.Commit(ctx, other, "c9", []metadata.Batch{
			{Partition: 2, Records: 4, Length: 8}, {Partition: 0, Records: 1, Offset: 8, Length: 8},
		}); err != nil {
			t.Fatal(err)
		}
		count(6)
		if _, _, err := trimHead(ctx, t, e.s, 0, 2); err != nil {
			t.Fatal(err)
		}
		count(4)
		if err := e.s.DeleteTopic(ctx, "u"); err != nil {
			t.Fatal(err)
		}
		count(2)
	})
}
