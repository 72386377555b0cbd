package metadata_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/metadata"
)

// retentionCase is one call of scripts/trim.lua (Trim) or
// scripts/update_topic.lua (UpdateTopic) after a setup.
type retentionCase struct {
	name     string
	setup    func(context.Context, *testing.T, *redis.Client) // optional, after threeChunks
	op       func(context.Context, *testing.T, *metadata.Store) error
	wantErr  error
	wantKeys map[string]string
}

// threeChunks commits three chunks to partition 0 of scriptTopic (offsets
// [0,2) in c1, [2,5) in c2 with a second batch in partition 1, [5,6) in
// c3) and returns the topic.
func threeChunks(ctx context.Context, t *testing.T, s *metadata.Store) metadata.Topic {
	t.Helper()
	if err := s.CreateTopic(ctx, scriptTopic); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id string
		b  []metadata.Batch
	}{
		{"c1", []metadata.Batch{{Partition: 0, Records: 2, Offset: 0, Length: 10}}},
		{"c2", []metadata.Batch{{Partition: 0, Records: 3, Offset: 0, Length: 20}, {Partition: 1, Records: 1, Offset: 20, Length: 7}}},
		{"c3", []metadata.Batch{{Partition: 0, Records: 1, Offset: 0, Length: 30}}},
	} {
		if _, err := s.Commit(ctx, scriptTopic, c.id, c.b); err != nil {
			t.Fatal(err)
		}
	}
	return scriptTopic
}

// trimHead trims the first n entries of partition p as Head reads them.
func trimHead(ctx context.Context, t *testing.T, s *metadata.Store, p int32, n int) (int64, bool, error) {
	t.Helper()
	head, _, err := s.Head(ctx, scriptTopic.Name, p, n)
	if err != nil {
		t.Fatal(err)
	}
	return s.Trim(ctx, scriptTopic, p, head)
}

func TestRetentionScripts(t *testing.T) {
	cases := []retentionCase{
		{
			name: "a trim removes the oldest entries, their references and bytes, and raises the log start",
			op: func(ctx context.Context, t *testing.T, s *metadata.Store) error {
				lso, ok, err := trimHead(ctx, t, s, 0, 2)
				if err == nil && (!ok || lso != 5) {
					t.Errorf("trim = %d, %v; want 5, true", lso, ok)
				}
				return err
			},
			wantKeys: map[string]string{
				topicKeys + "idx:0": "5:5|1|c3|0|30",
				topicKeys + "lso":   "0=5",
				topicKeys + "bytes": "0=30 1=7",
				// c2 is still named by partition 1.
				topicKeys + "refs": "c2=1 c3=1",
				// c1 is named by no entry of t any more: handed to GC.
				topicKeys + "unref": "c1",
			},
		},
		{
			name: "objects left unreferenced go after those already handed over, and one taken is gone from the list",
			op: func(ctx context.Context, t *testing.T, s *metadata.Store) error {
				if _, _, err := trimHead(ctx, t, s, 0, 1); err != nil {
					t.Fatal(err)
				}
				if _, _, err := trimHead(ctx, t, s, 1, 1); err != nil {
					t.Fatal(err)
				}
				if _, _, err := trimHead(ctx, t, s, 0, 2); err != nil {
					t.Fatal(err)
				}
				got, err := s.TakeUnreferenced(ctx, scriptTopic.Name, 2)
				if err == nil && strings.Join(got, " ") != "c1 c2" {
					t.Errorf("taken %q, want c1 c2, oldest first", got)
				}
				return err
			},
			wantKeys: map[string]string{
				topicKeys + "idx:0": gone,
				topicKeys + "idx:1": gone,
				topicKeys + "lso":   "0=6 1=1",
				topicKeys + "bytes": gone,
				topicKeys + "refs":  gone,
				topicKeys + "unref": "c3",
			},
		},
		{
			name: "a full list of unreferenced objects takes no more",
			setup: func(ctx context.Context, t *testing.T, rdb *redis.Client) {
				full := make([]any, metadata.MaxUnreferenced)
				for i := range full {
					full[i] = "old"
				}
				if err := rdb.RPush(ctx, topicKeys+"unref", full...).Err(); err != nil {
					t.Fatal(err)
				}
			},
			op: func(ctx context.Context, t *testing.T, s *metadata.Store) error {
				_, _, err := trimHead(ctx, t, s, 0, 1)
				return err
			},
			wantKeys: map[string]string{
				topicKeys + "idx:0": "2:2|3|c2|0|20 5:5|1|c3|0|30",
				topicKeys + "lso":   "0=2",
				topicKeys + "bytes": "0=50 1=7",
				topicKeys + "refs":  "c2=2 c3=1",
			},
		},
		{
			name: "trimming a partition to nothing deletes its bytes field and leaves the high watermark",
			op: func(ctx context.Context, t *testing.T, s *metadata.Store) error {
				_, _, err := trimHead(ctx, t, s, 1, 10)
				return err
			},
			wantKeys: map[string]string{
				topicKeys + "idx:1": gone,
				topicKeys + "lso":   "1=1",
				topicKeys + "bytes": "0=60",
				topicKeys + "refs":  "c1=1 c2=1 c3=1",
			},
		},
		{
			name: "a trim whose view of the head is stale changes nothing",
			op: func(ctx context.Context, t *testing.T, s *metadata.Store) error {
				head, _, err := s.Head(ctx, scriptTopic.Name, 0, 1)
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := trimHead(ctx, t, s, 0, 1); err != nil {
					t.Fatal(err)
				}
				lso, ok, err := s.Trim(ctx, scriptTopic, 0, head)
				if err == nil && ok {
					t.Errorf("stale trim = %d, %v; want nothing done", lso, ok)
				}
				return err
			},
			wantKeys: map[string]string{
				topicKeys + "idx:0": "2:2|3|c2|0|20 5:5|1|c3|0|30",
				topicKeys + "lso":   "0=2",
				topicKeys + "bytes": "0=50 1=7",
				topicKeys + "refs":  "c2=2 c3=1",
				topicKeys + "unref": "c1",
			},
		},
		{
			name: "a trim of a recreated topic is refused",
			op: func(ctx context.Context, t *testing.T, s *metadata.Store) error {
				head, _, _ := s.Head(ctx, scriptTopic.Name, 0, 1)
				old := scriptTopic
				old.ID = "an-earlier-id"
				_, _, err := s.Trim(ctx, old, 0, head)
				return err
			},
			wantErr: metadata.ErrTopicNotFound,
		},
		{
			name: "an update changes only the retention fields it names",
			op: func(ctx context.Context, t *testing.T, s *metadata.Store) error {
				b := int64(1 << 20)
				got, err := s.UpdateTopic(ctx, scriptTopic.Name, metadata.TopicUpdate{RetentionBytes: &b})
				if err == nil && (got.RetentionBytes != b || got.RetentionMS != scriptTopic.RetentionMS || got.Partitions != 3) {
					t.Errorf("updated topic = %+v", got)
				}
				return err
			},
			wantKeys: map[string]string{
				topicKeys + "meta": "created_ms=1 id=t-id name=t partitions=3 retention_bytes=1048576 retention_ms=0",
			},
		},
		{
			name: "an update of a missing topic does not create it",
			op: func(ctx context.Context, t *testing.T, s *metadata.Store) error {
				ms := int64(1000)
				_, err := s.UpdateTopic(ctx, "missing", metadata.TopicUpdate{RetentionMS: &ms})
				return err
			},
			wantErr: metadata.ErrTopicNotFound,
		},
	}
	runOnEngines(t, cases, func(c retentionCase) string { return c.name }, func(t *testing.T, e *scriptEnv, tc retentionCase) {
		ctx := t.Context()
		threeChunks(ctx, t, e.s)
		if tc.setup != nil {
			tc.setup(ctx, t, e.rdb)
		}
		before := keyState(t, e.rdb)
		if err := tc.op(ctx, t, e.s); !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Fatalf("err = %v, want %v", err, tc.wantErr)
		}
		checkChanges(t, e.rdb, before, tc.wantKeys)
	})
}

// TestLookupAfterTrim checks what readers see once retention moved the log
// start: out of range below it, records from it on, and stats that agree.
func TestLookupAfterTrim(t *testing.T) {
	runOnEngines(t, []string{"lookup"}, func(s string) string { return s }, func(t *testing.T, e *scriptEnv, _ string) {
		ctx := t.Context()
		threeChunks(ctx, t, e.s)
		if _, _, err := trimHead(ctx, t, e.s, 0, 1); err != nil {
			t.Fatal(err)
		}
		if _, st, err := e.s.Lookup(ctx, "t", 0, 1, 4); !errors.Is(err, metadata.ErrOffsetOutOfRange) || st.LogStartOffset != 2 {
			t.Fatalf("lookup below the log start = %+v, %v; want out of range at log start 2", st, err)
		}
		entries, _, err := e.s.Lookup(ctx, "t", 0, 3, 4)
		if err != nil || len(entries) != 2 || entries[0].ChunkID != "c2" {
			t.Fatalf("lookup at 3 = %+v, %v", entries, err)
		}
		_, stats, err := e.s.PartitionStats(ctx, "t")
		if err != nil || stats[0].LogStartOffset != 2 || stats[0].HighWatermark != 6 || stats[0].StoredBytes != 50 {
			t.Fatalf("stats = %+v, %v", stats, err)
		}
		u, err := e.s.Usage(ctx, "t")
		if err != nil || u.StoredBytes != 57 || u.Objects != 2 {
			t.Fatalf("usage = %+v, %v; want 57 bytes in 2 objects", u, err)
		}
		for _, c := range []struct {
			obj  string
			refs []metadata.ObjectRef
			want bool
		}{
			{"c1", []metadata.ObjectRef{{Topic: "t"}}, false},
			{"c2", []metadata.ObjectRef{{Topic: "t"}}, true},
			{"c2", []metadata.ObjectRef{{Topic: "t", TopicID: "another-incarnation"}}, false},
			{"c2", []metadata.ObjectRef{{Topic: "missing"}, {Topic: "t", TopicID: scriptTopic.ID}}, true},
			{"c3", nil, false},
		} {
			got, err := e.s.Referenced(ctx, c.obj, c.refs)
			if err != nil || got != c.want {
				t.Errorf("Referenced(%s, %+v) = %v, %v; want %v", c.obj, c.refs, got, err, c.want)
			}
		}
		if err := e.s.DeleteTopic(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		if got, err := e.s.Referenced(ctx, "c2", []metadata.ObjectRef{{Topic: "t"}}); err != nil || got {
			t.Fatalf("a deleted topic's object is referenced: %v, %v", got, err)
		}
	})
}

// TestCommitRefusesOldChunks checks that a chunk created longer than
// MaxCommitAge ago is never indexed, so that garbage collection may delete
// it, while restore (CommitChunks) still replays old chunks.
func TestCommitRefusesOldChunks(t *testing.T) {
	runOnEngines(t, []string{"age"}, func(s string) string { return s }, func(t *testing.T, e *scriptEnv, _ string) {
		ctx := t.Context()
		if err := e.s.CreateTopic(ctx, scriptTopic); err != nil {
			t.Fatal(err)
		}
		id := func(age time.Duration) string {
			g, err := chunkid.NewGenerator("n1", func() time.Time { return time.Now().Add(-age) })
			if err != nil {
				t.Fatal(err)
			}
			c, err := g.New()
			if err != nil {
				t.Fatal(err)
			}
			return c.String()
		}
		b := []metadata.Batch{{Partition: 0, Records: 1, Offset: 0, Length: 1}}
		old := id(metadata.MaxCommitAge + time.Minute)
		before := keyState(t, e.rdb)
		if _, err := e.s.Commit(ctx, scriptTopic, old, b); !errors.Is(err, metadata.ErrChunkTooOld) {
			t.Fatalf("commit of an old chunk: %v, want ErrChunkTooOld", err)
		}
		checkChanges(t, e.rdb, before, nil)
		if _, err := e.s.Commit(ctx, scriptTopic, id(time.Minute), b); err != nil {
			t.Fatalf("commit of a fresh chunk: %v", err)
		}
		res, err := e.s.CommitChunks(ctx, []metadata.ChunkCommit{{Topic: scriptTopic, ChunkID: old, Batches: b}})
		if err != nil || res[0].BaseOffsets[0] != 1 {
			t.Fatalf("replay of an old chunk = %+v, %v", res, err)
		}
	})
}

// TestLoadSnapshotRebuildsReferences checks that a restored index counts
// objects and bytes exactly as the commits and trims that built it did:
// the references and stored bytes are not in checkpoints, LoadSnapshot
// derives them from the index.
func TestLoadSnapshotRebuildsReferences(t *testing.T) {
	runOnEngines(t, []string{"load"}, func(s string) string { return s }, func(t *testing.T, e *scriptEnv, _ string) {
		ctx := t.Context()
		threeChunks(ctx, t, e.s)
		if _, _, err := trimHead(ctx, t, e.s, 0, 1); err != nil {
			t.Fatal(err)
		}
		want := keyState(t, e.rdb)
		snap, err := e.s.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.Wipe(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.s.LoadSnapshot(ctx, snap); err != nil {
			t.Fatal(err)
		}
		got := keyState(t, e.rdb)
		for _, k := range []string{"refs", "bytes", "lso", "idx:0", "idx:1"} {
			if got[topicKeys+k] != want[topicKeys+k] {
				t.Errorf("%s after load = %q, before = %q", k, got[topicKeys+k], want[topicKeys+k])
			}
		}
	})
}
