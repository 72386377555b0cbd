package tiering

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/bucket"
)

// onReferencesRead runs fn once, just before the first pipeline that
// reads a topic's references (metadata.Store.Referenced) goes to Redis.
type onReferencesRead struct {
	fn   func()
	done bool
}

func (h *onReferencesRead) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *onReferencesRead) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}

func (h *onReferencesRead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !h.done && slices.ContainsFunc(cmds, func(c redis.Cmder) bool {
			key, _ := c.Args()[1].(string)
			return c.Name() == "hexists" && strings.HasSuffix(key, ":refs")
		}) {
			h.done = true
			h.fn()
		}
		return next(ctx, cmds)
	}
}

// A checkpoint taken after the pass started but before the collector read
// the chunk's references (here: just before a trim that the read then
// sees) may name the chunk. The mark must be later than that checkpoint,
// so that the chunk is deleted only once a newer one, which no longer
// names it, exists. Marked with the pass's start time, the chunk was
// deleted while the newest checkpoint still named it.
func TestGCMarksAfterReadingReferences(t *testing.T) {
	e := newGCEnv(t, GCConfig{Grace: 10 * time.Minute, CheckpointGate: true})
	a := e.topic("a", 1)
	id, infos := e.putChunk("a")
	e.commit(a, id, infos)
	e.advance(commitAge + time.Second)
	key := bucket.ChunkKey(id.String())

	e.rdb.AddHook(&onReferencesRead{fn: func() {
		e.advance(time.Second)
		e.checkpoint() // names the chunk: it is still indexed
		e.advance(time.Second)
		e.trim(a)
	}})
	if st := e.pass(); st.Examined != 1 || st.Marked != 1 {
		t.Fatalf("mark pass: %+v", st)
	}
	marks, err := e.meta.GCPending(t.Context(), e.now.Add(time.Hour), 10)
	if err != nil || len(marks) != 1 {
		t.Fatalf("pending %v, %v", marks, err)
	}
	if !marks[0].Marked.Equal(e.now) {
		t.Errorf("marked at %v, want the time after the references were read, %v", marks[0].Marked, e.now)
	}
	// Past the grace, but the newest checkpoint is the one that names
	// the chunk.
	e.advance(11 * time.Minute)
	if st := e.pass(); st.Deleted != 0 || !e.exists(key) {
		t.Fatalf("deleted while the newest checkpoint names it: %+v", st)
	}
	e.checkpoint()
	e.advance(time.Second)
	if st := e.pass(); st.Deleted != 1 || e.exists(key) {
		t.Fatalf("after a newer checkpoint: %+v, exists %v", st, e.exists(key))
	}
}
