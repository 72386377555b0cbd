package metadata_test

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mambamq/mamba/metadata"
)

// miniStep prepares a case of a script test.
type miniStep func(*testing.T, *scriptEnv)

const topicKeys = "mamba:{t}:"

// scriptTopic is the topic of the commit script's cases.
var scriptTopic = topic("t", 3)

// keyedBatches are the batches of one request with idempotency key k.
var keyedBatches = []metadata.Batch{
	{Partition: 0, Records: 2, Offset: 0, Length: 10, IdempotencyKey: "k", Layout: "0,1;0*2,1*1"},
	{Partition: 1, Records: 1, Offset: 10, Length: 5, IdempotencyKey: "k"},
}

func commitStep(chunkID string, batches ...metadata.Batch) miniStep {
	return func(t *testing.T, e *scriptEnv) {
		t.Helper()
		if _, err := e.s.Commit(t.Context(), scriptTopic, chunkID, batches); err != nil {
			t.Fatal(err)
		}
	}
}

func waitStep(d time.Duration) miniStep {
	return func(t *testing.T, e *scriptEnv) { e.wait(t, d) }
}

type commitCase struct {
	name      string
	setup     []miniStep
	chunk     string
	batches   []metadata.Batch
	wantErr   error
	wantBases []int64
	wantHW    map[int32]int64
	wantDups  map[string]metadata.Answer
	wantKeys  map[string]string
}

var commitCases = []commitCase{
	{
		name:  "fresh batches take offsets from zero",
		chunk: "c1",
		batches: []metadata.Batch{
			{Partition: 0, Records: 2, Offset: 0, Length: 10},
			{Partition: 2, Records: 1, Offset: 10, Length: 10},
			{Partition: 0, Records: 3, Offset: 20, Length: 5},
		},
		wantBases: []int64{0, 0, 2},
		wantHW:    map[int32]int64{0: 5, 2: 1},
		wantKeys: map[string]string{
			topicKeys + "bytes":    "0=15 2=10",
			topicKeys + "refs":     "c1=3",
			topicKeys + "hw":       "0=5 2=1",
			topicKeys + "idx:0":    "0:0|2|c1|0|10 2:2|3|c1|20|5",
			topicKeys + "idx:2":    "0:0|1|c1|10|10",
			topicKeys + "chunk:c1": "0,0,2\n0:5,2:1 ttl=10m0s",
		},
	},
	{
		name:      "offsets continue at the high watermark",
		setup:     []miniStep{commitStep("c1", metadata.Batch{Partition: 1, Records: 5, Offset: 0, Length: 9})},
		chunk:     "c2",
		batches:   []metadata.Batch{{Partition: 1, Records: 2, Offset: 9, Length: 4}},
		wantBases: []int64{5},
		wantHW:    map[int32]int64{1: 7},
		wantKeys: map[string]string{
			topicKeys + "bytes":    "1=13",
			topicKeys + "refs":     "c1=1 c2=1",
			topicKeys + "hw":       "1=7",
			topicKeys + "idx:1":    "0:0|5|c1|0|9 5:5|2|c2|9|4",
			topicKeys + "chunk:c2": "5\n1:7 ttl=10m0s",
		},
	},
	{
		name:  "a retried chunk gets its first result and changes nothing",
		setup: []miniStep{commitStep("c1", metadata.Batch{Partition: 1, Records: 5, Offset: 0, Length: 9})},
		chunk: "c1",
		// Even different batches: the marker alone decides.
		batches:   []metadata.Batch{{Partition: 2, Records: 1, Offset: 0, Length: 1}},
		wantBases: []int64{0},
		wantHW:    map[int32]int64{1: 5},
	},
	{
		name: "an expired marker no longer guards the chunk",
		setup: []miniStep{
			commitStep("c1", metadata.Batch{Partition: 1, Records: 5, Offset: 0, Length: 9}),
			waitStep(10 * time.Minute),
		},
		chunk:     "c1",
		batches:   []metadata.Batch{{Partition: 1, Records: 5, Offset: 0, Length: 9}},
		wantBases: []int64{5},
		wantHW:    map[int32]int64{1: 10},
		wantKeys: map[string]string{
			topicKeys + "bytes":    "1=18",
			topicKeys + "refs":     "c1=2",
			topicKeys + "hw":       "1=10",
			topicKeys + "idx:1":    "0:0|5|c1|0|9 5:5|5|c1|0|9",
			topicKeys + "chunk:c1": "5\n1:10 ttl=10m0s",
		},
	},
	{
		name: "a deleted topic",
		setup: []miniStep{func(t *testing.T, e *scriptEnv) {
			if err := e.s.DeleteTopic(t.Context(), "t"); err != nil {
				t.Fatal(err)
			}
		}},
		chunk:   "c1",
		batches: []metadata.Batch{{Partition: 0, Records: 1, Offset: 0, Length: 1}},
		wantErr: metadata.ErrTopicNotFound,
	},
	{
		name: "a topic created again has another id",
		setup: []miniStep{func(t *testing.T, e *scriptEnv) {
			if err := e.s.DeleteTopic(t.Context(), "t"); err != nil {
				t.Fatal(err)
			}
			mustCreate(t, e.s, metadata.Topic{Name: "t", ID: "t-id2", Partitions: 3})
		}},
		chunk:   "c1",
		batches: []metadata.Batch{{Partition: 0, Records: 1, Offset: 0, Length: 1}},
		wantErr: metadata.ErrTopicNotFound,
	},
	{
		name:  "a partition outside the topic rejects every batch",
		chunk: "c1",
		batches: []metadata.Batch{
			{Partition: 1, Records: 1, Offset: 0, Length: 1},
			{Partition: 3, Records: 1, Offset: 1, Length: 1},
		},
		wantErr: metadata.ErrPartitionNotFound,
	},
	{
		name:      "a new idempotency key is recorded with all its batches",
		chunk:     "c1",
		batches:   keyedBatches,
		wantBases: []int64{0, 0},
		wantHW:    map[int32]int64{0: 2, 1: 1},
		wantKeys: map[string]string{
			topicKeys + "bytes":       "0=10 1=5",
			topicKeys + "refs":        "c1=2",
			topicKeys + "hw":          "0=2 1=1",
			topicKeys + "idx:0":       "0:0|2|c1|0|10",
			topicKeys + "idx:1":       "0:0|1|c1|10|5",
			topicKeys + "idem:t-id:k": "0,0|0,1;0*2,1*1 ttl=1m0s",
			topicKeys + "chunk:c1":    "0,0\n0:2,1:1 ttl=10m0s",
		},
	},
	{
		name:  "a known key is answered, not indexed",
		setup: []miniStep{commitStep("c1", keyedBatches...)},
		chunk: "c2",
		batches: []metadata.Batch{
			keyedBatches[0],
			{Partition: 2, Records: 4, Offset: 15, Length: 8},
		},
		wantBases: []int64{-1, 0},
		wantHW:    map[int32]int64{2: 4},
		wantDups:  map[string]metadata.Answer{"k": {Layout: "0,1;0*2,1*1", BaseOffsets: []int64{0, 0}}},
		wantKeys: map[string]string{
			topicKeys + "bytes":    "0=10 1=5 2=8",
			topicKeys + "refs":     "c1=2 c2=1",
			topicKeys + "hw":       "0=2 1=1 2=4",
			topicKeys + "idx:2":    "0:0|4|c2|15|8",
			topicKeys + "chunk:c2": "-1,0\n2:4\nk\t0,0|0,1;0*2,1*1 ttl=10m0s",
		},
	},
	{
		name: "a key past the dedup window is a new request",
		setup: []miniStep{
			commitStep("c1", keyedBatches...),
			waitStep(dedupWindow),
		},
		chunk:     "c2",
		batches:   keyedBatches[:1],
		wantBases: []int64{2},
		wantHW:    map[int32]int64{0: 4},
		wantKeys: map[string]string{
			topicKeys + "bytes":       "0=20 1=5",
			topicKeys + "refs":        "c1=2 c2=1",
			topicKeys + "hw":          "0=4 1=1",
			topicKeys + "idx:0":       "0:0|2|c1|0|10 2:2|2|c2|0|10",
			topicKeys + "idem:t-id:k": "2|0,1;0*2,1*1 ttl=1m0s",
			topicKeys + "chunk:c2":    "2\n0:4 ttl=10m0s",
		},
	},
}

// TestCommitScript runs scripts/commit.lua through Commit.
func TestCommitScript(t *testing.T) {
	runOnEngines(t, commitCases, func(c commitCase) string { return c.name }, func(t *testing.T, e *scriptEnv, tc commitCase) {
		mustCreate(t, e.s, scriptTopic)
		for _, f := range tc.setup {
			f(t, e)
		}
		before := keyState(t, e.rdb)
		res, err := e.s.Commit(t.Context(), scriptTopic, tc.chunk, tc.batches)
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Fatalf("Commit: err = %v, want %v", err, tc.wantErr)
		}
		if !slices.Equal(res.BaseOffsets, tc.wantBases) || !maps.Equal(res.HighWatermarks, tc.wantHW) ||
			!reflect.DeepEqual(res.Duplicates, tc.wantDups) {
			t.Errorf("Commit = %+v, want bases %v, high watermarks %v, duplicates %v", res, tc.wantBases, tc.wantHW, tc.wantDups)
		}
		checkChanges(t, e.rdb, before, tc.wantKeys)
	})
}

// TestCommitScriptAnnounces checks that commit.lua publishes a commit that
// indexed something, and only such a commit.
func TestCommitScriptAnnounces(t *testing.T) {
	runOnEngines(t, []string{"only a commit that indexed something"}, func(n string) string { return n }, testCommitAnnounces)
}

func testCommitAnnounces(t *testing.T, e *scriptEnv, _ string) {
	s, ctx, tp := e.s, t.Context(), scriptTopic
	mustCreate(t, s, tp)
	keyed := metadata.Batch{Partition: 0, Records: 1, Offset: 0, Length: 1, IdempotencyKey: "k", Layout: "0;0*1"}
	if _, err := s.Commit(ctx, tp, "c1", []metadata.Batch{keyed}); err != nil {
		t.Fatal(err)
	}
	sub, err := s.SubscribeCommits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// Published in this order; a duplicate-only commit (c2) or a retry
	// (c1) announcing anything would arrive before c3's event.
	for _, c := range []struct {
		id string
		b  metadata.Batch
	}{{"c2", keyed}, {"c1", keyed}, {"c3", metadata.Batch{Partition: 2, Records: 3, Offset: 0, Length: 1}}} {
		if _, err := s.Commit(ctx, tp, c.id, []metadata.Batch{c.b}); err != nil {
			t.Fatal(err)
		}
	}
	events := make(chan metadata.CommitEvent, 1)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go sub.Run(runCtx, func(e metadata.CommitEvent) {
		select {
		case events <- e:
		default:
		}
	}, nil)
	if got, want := <-events, (metadata.CommitEvent{Topic: "t", Partition: 2, HighWatermark: 3}); got != want {
		t.Fatalf("first event = %+v, want %+v", got, want)
	}
}
