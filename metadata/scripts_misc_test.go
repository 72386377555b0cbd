package metadata_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/metadata"
)

// TestTopicScripts runs scripts/create_topic.lua (CreateTopic) and
// scripts/delete_topic.lua (DeleteTopic).
func TestTopicScripts(t *testing.T) {
	const k = "mamba:{t}:"
	tp := topic("t", 3)
	create := func(ctx context.Context, s *metadata.Store) error { return s.CreateTopic(ctx, tp) }
	del := func(ctx context.Context, s *metadata.Store) error { return s.DeleteTopic(ctx, "t") }
	withData := func(ctx context.Context, s *metadata.Store) error {
		if err := create(ctx, s); err != nil {
			return err
		}
		_, err := s.Commit(ctx, tp, "c1", []metadata.Batch{
			{Partition: 0, Records: 1, Offset: 0, Length: 1, IdempotencyKey: "k", Layout: "0;0*1"},
			{Partition: 2, Records: 1, Offset: 1, Length: 1},
		})
		if err != nil {
			return err
		}
		_, err = s.Commit(ctx, tp, "c2", []metadata.Batch{{Partition: 1, Records: 1, Offset: 0, Length: 1}})
		if err != nil {
			return err
		}
		head, _, err := s.Head(ctx, "t", 1, 1)
		if err != nil {
			return err
		}
		_, _, err = s.Trim(ctx, tp, 1, head) // hands c2 over: {t}:unref
		return err
	}
	type topicCase struct {
		name     string
		setup    func(context.Context, *metadata.Store) error
		op       func(context.Context, *metadata.Store) error
		wantErr  error
		wantKeys map[string]string
	}
	cases := []topicCase{
		{
			name: "a new topic is registered",
			op:   create,
			wantKeys: map[string]string{
				k + "meta":     "created_ms=1 id=t-id name=t partitions=3 retention_bytes=0 retention_ms=0",
				"mamba:topics": "t",
			},
		},
		{
			name:    "a taken name is not overwritten",
			setup:   create,
			op:      func(ctx context.Context, s *metadata.Store) error { return s.CreateTopic(ctx, topic("t", 5)) },
			wantErr: metadata.ErrTopicExists,
		},
		{
			name:  "a delete removes metadata, offsets and index, and leaves markers to expire",
			setup: withData,
			op:    del,
			wantKeys: map[string]string{
				k + "meta":     gone,
				k + "hw":       gone,
				k + "refs":     gone,
				k + "bytes":    gone,
				k + "idx:0":    gone,
				k + "idx:2":    gone,
				k + "lso":      gone,
				k + "unref":    gone,
				"mamba:topics": gone,
			},
		},
		{
			name:    "a delete of a missing topic",
			op:      del,
			wantErr: metadata.ErrTopicNotFound,
		},
	}
	runOnEngines(t, cases, func(c topicCase) string { return c.name }, func(t *testing.T, e *scriptEnv, tc topicCase) {
		ctx := t.Context()
		if tc.setup != nil {
			if err := tc.setup(ctx, e.s); err != nil {
				t.Fatal(err)
			}
		}
		before := keyState(t, e.rdb)
		if err := tc.op(ctx, e.s); !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Fatalf("err = %v, want %v", err, tc.wantErr)
		}
		checkChanges(t, e.rdb, before, tc.wantKeys)
	})
}

// jobOp is one step of TestJobScripts: a lease call, a SetJobLastRun, or
// a jump of miniredis's clock.
type jobOp struct {
	acquire, release string // holder
	ttl              time.Duration
	lastRunMS        int64
	raw              string // stored directly as the last run
	wait             time.Duration
}

func (op jobOp) run(t *testing.T, e *scriptEnv) (bool, error) {
	t.Helper()
	ctx, s := t.Context(), e.s
	switch {
	case op.acquire != "":
		return s.JobLease("j", op.acquire, op.ttl).Acquire(ctx)
	case op.release != "":
		return false, s.JobLease("j", op.release, time.Minute).Release(ctx)
	case op.lastRunMS != 0:
		return false, s.SetJobLastRun(ctx, "j", time.UnixMilli(op.lastRunMS))
	case op.raw != "":
		return false, e.rdb.Set(ctx, "mamba:job:j:last", op.raw, 0).Err()
	}
	e.wait(t, op.wait)
	return false, nil
}

// TestJobScripts runs scripts/job_acquire.lua, scripts/job_release.lua
// (JobLease) and scripts/set_max.lua (SetJobLastRun).
func TestJobScripts(t *testing.T) {
	const lease, last = "mamba:job:j:lease", "mamba:job:j:last"
	acq := func(h string, ttl time.Duration) jobOp { return jobOp{acquire: h, ttl: ttl} }
	type jobCase struct {
		name     string
		setup    []jobOp
		op       jobOp
		want     bool
		wantKeys map[string]string
	}
	cases := []jobCase{
		{"a free lease is taken", nil, acq("a", time.Minute), true, map[string]string{lease: "a ttl=1m0s"}},
		{"the holder renews", []jobOp{acq("a", time.Minute), {wait: 40 * time.Second}}, acq("a", time.Minute), true,
			map[string]string{lease: "a ttl=1m0s"}},
		{"another holder is refused", []jobOp{acq("a", time.Minute)}, acq("b", time.Hour), false, nil},
		{"an expired lease passes on", []jobOp{acq("a", time.Minute), {wait: time.Minute}}, acq("b", time.Minute), true,
			map[string]string{lease: "b ttl=1m0s"}},
		{"the holder releases", []jobOp{acq("a", time.Minute)}, jobOp{release: "a"}, false, map[string]string{lease: gone}},
		{"another node's release changes nothing", []jobOp{acq("a", time.Minute)}, jobOp{release: "b"}, false, nil},
		{"a first run is recorded", nil, jobOp{lastRunMS: 100}, false, map[string]string{last: "100"}},
		{"a later run raises it", []jobOp{{lastRunMS: 100}}, jobOp{lastRunMS: 200}, false, map[string]string{last: "200"}},
		{"an earlier run is ignored", []jobOp{{lastRunMS: 200}}, jobOp{lastRunMS: 100}, false, nil},
		{"a malformed record is replaced", []jobOp{{raw: "yesterday"}}, jobOp{lastRunMS: 100}, false, map[string]string{last: "100"}},
	}
	runOnEngines(t, cases, func(c jobCase) string { return c.name }, func(t *testing.T, e *scriptEnv, tc jobCase) {
		for _, op := range tc.setup {
			if _, err := op.run(t, e); err != nil {
				t.Fatal(err)
			}
		}
		before := keyState(t, e.rdb)
		got, err := tc.op.run(t, e)
		if err != nil || got != tc.want {
			t.Fatalf("= %v, %v; want %v", got, err, tc.want)
		}
		checkChanges(t, e.rdb, before, tc.wantKeys)
	})
}

// TestScriptFiles checks that every script opens with the comment block
// that documents it, and that Load loads each of them by the SHA of its
// file.
func TestScriptFiles(t *testing.T) {
	files, err := filepath.Glob("scripts/*.lua")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	var shas []string
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var header strings.Builder
		for line := range strings.Lines(string(src)) {
			if !strings.HasPrefix(line, "--") {
				break
			}
			header.WriteString(line)
		}
		for _, want := range []string{"KEYS[1]", "ARGV[1]", "Returns", "Invariants"} {
			if !strings.Contains(header.String(), want) {
				t.Errorf("%s: the opening comment does not mention %s", f, want)
			}
		}
		sum := sha1.Sum(src)
		shas = append(shas, hex.EncodeToString(sum[:]))
	}
	runOnEngines(t, []string{"load"}, func(n string) string { return n }, func(t *testing.T, e *scriptEnv, _ string) {
		ctx := t.Context()
		if err := e.rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.s.Load(ctx); err != nil {
			t.Fatal(err)
		}
		loaded, err := e.rdb.ScriptExists(ctx, shas...).Result()
		if err != nil {
			t.Fatal(err)
		}
		for i, ok := range loaded {
			if !ok {
				t.Errorf("%s is not loaded by Load", files[i])
			}
		}
	})
}

// TestScriptsAfterFlush checks the EVALSHA fallback: after Redis forgets
// its scripts (a restart, SCRIPT FLUSH), Commit and CommitChunks load the
// script again instead of failing.
func TestScriptsAfterFlush(t *testing.T) {
	runOnEngines(t, []string{"commit"}, func(n string) string { return n }, func(t *testing.T, e *scriptEnv, _ string) {
		s, ctx, tp := e.s, t.Context(), topic("t", 1)
		mustCreate(t, s, tp)
		b := []metadata.Batch{{Partition: 0, Records: 2, Offset: 0, Length: 1}}
		flush := func() {
			t.Helper()
			if err := e.rdb.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		flush()
		if res, err := s.Commit(ctx, tp, "c1", b); err != nil || res.BaseOffsets[0] != 0 {
			t.Fatalf("Commit after flush = %+v, %v", res, err)
		}
		flush()
		res, err := s.CommitChunks(ctx, []metadata.ChunkCommit{{Topic: tp, ChunkID: "c1", Batches: b}, {Topic: tp, ChunkID: "c2", Batches: b}})
		if err != nil || len(res) != 2 || res[0].BaseOffsets[0] != 0 || res[1].BaseOffsets[0] != 2 {
			t.Fatalf("CommitChunks after flush = %+v, %v", res, err)
		}
	})
}
