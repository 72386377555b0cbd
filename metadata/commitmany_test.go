package metadata_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/metadata"
)

func TestCommitChunks(t *testing.T) {
	s, r := newStore(t)
	ctx := t.Context()
	a, b := topic("a", 2), topic("b", 1)
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	batch := func(p int32, n int, key string) metadata.Batch {
		return metadata.Batch{Partition: p, Records: n, Offset: 1, Length: 1, IdempotencyKey: key, Layout: fmt.Sprintf("%d;0*%d", p, n)}
	}
	commits := []metadata.ChunkCommit{
		{Topic: a, ChunkID: "c1", Batches: []metadata.Batch{batch(0, 2, ""), batch(1, 1, "k")}},
		{Topic: b, ChunkID: "c1", Batches: []metadata.Batch{batch(0, 5, "")}},
		{Topic: a, ChunkID: "c2", Batches: []metadata.Batch{batch(0, 3, ""), batch(1, 1, "k")}},
	}
	res, err := s.CommitChunks(ctx, commits)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(res[0].BaseOffsets, res[1].BaseOffsets, res[2].BaseOffsets); got != "[0 0] [0] [2 -1]" {
		t.Fatalf("base offsets = %s", got)
	}
	if d := res[2].Duplicates["k"]; fmt.Sprint(d) != "{1;0*1 [0]}" {
		t.Fatalf("duplicate answer = %+v", d)
	}

	// After Redis forgets its scripts, the pipeline loads them again;
	// commits already applied return their first results.
	flush := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer flush.Close()
	if err := flush.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	commits = append(commits, metadata.ChunkCommit{Topic: b, ChunkID: "c3", Batches: []metadata.Batch{batch(0, 1, "")}})
	again, err := s.CommitChunks(ctx, commits)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(again[0].BaseOffsets, again[2].BaseOffsets, again[3].BaseOffsets); got != "[0 0] [2 -1] [5]" {
		t.Fatalf("base offsets after script flush = %s", got)
	}

	// A failing commit stops the results at it.
	gone := topic("gone", 1)
	res, err = s.CommitChunks(ctx, []metadata.ChunkCommit{
		{Topic: a, ChunkID: "c4", Batches: []metadata.Batch{batch(0, 1, "")}},
		{Topic: gone, ChunkID: "c4", Batches: []metadata.Batch{batch(0, 1, "")}},
	})
	if !errors.Is(err, metadata.ErrTopicNotFound) || len(res) != 1 || res[0].BaseOffsets[0] != 5 {
		t.Fatalf("commit to a missing topic = %+v, %v", res, err)
	}
	if _, err := s.CommitChunks(ctx, []metadata.ChunkCommit{{Topic: a, ChunkID: "c5"}}); err == nil {
		t.Fatal("a commit without batches was accepted")
	}
}
