package metadata_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/metadata"
)

// replyErr is an error reply from Redis (LOADING, BUSY, CLUSTERDOWN...).
type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

// failKey makes every pipelined command naming a key that contains key
// fail with a Redis error reply, the other commands answering normally;
// the pipeline's error is then the first failed command's, as go-redis
// reports it.
type failKey struct{ key string }

func (h *failKey) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *failKey) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *failKey) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if h.key == "" {
			return err
		}
		for _, c := range cmds {
			if strings.Contains(c.String(), h.key) {
				c.SetErr(replyErr("LOADING Redis is loading the dataset in memory"))
			}
		}
		for _, c := range cmds {
			if c.Err() != nil {
				return c.Err()
			}
		}
		return nil
	}
}

// TestReferencedReportsEachCommandsError checks that a failed read of a
// live topic's id or references is an error, even when a deleted topic
// read before it answered nil (which go-redis reports as the pipeline's
// error): the object must not be taken for unreferenced.
func TestReferencedReportsEachCommandsError(t *testing.T) {
	cases := []string{"{live}:meta", "{live}:refs"}
	runOnEngines(t, cases, func(s string) string { return s }, func(t *testing.T, e *scriptEnv, key string) {
		ctx := t.Context()
		rdb := redis.NewClient(&redis.Options{Addr: e.rdb.Options().Addr})
		t.Cleanup(func() { rdb.Close() })
		h := &failKey{}
		rdb.AddHook(h)
		s := metadata.New(rdb, metadata.Options{})
		tp := metadata.Topic{Name: "live", ID: "l1", Partitions: 1, CreatedMS: 1}
		if err := s.CreateTopic(ctx, tp); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Commit(ctx, tp, "C1", []metadata.Batch{{Partition: 0, Records: 1, Offset: 40, Length: 30}}); err != nil {
			t.Fatal(err)
		}
		refs := []metadata.ObjectRef{{Topic: "gone"}, {Topic: "live"}}
		if used, err := s.Referenced(ctx, "C1", refs); err != nil || !used {
			t.Fatalf("healthy: Referenced = %v, %v; want true", used, err)
		}
		if used, err := s.Referenced(ctx, "C2", refs); err != nil || used {
			t.Fatalf("healthy: Referenced(C2) = %v, %v; want false", used, err)
		}
		h.key = key
		used, err := s.Referenced(ctx, "C1", refs)
		if !errors.Is(err, metadata.ErrUnavailable) || used {
			t.Fatalf("with %s failing: Referenced = %v, %v; want an unavailable error", key, used, err)
		}
		if _, err := s.Referenced(ctx, "C2", refs); !errors.Is(err, metadata.ErrUnavailable) {
			t.Fatalf("with %s failing: Referenced(C2) error = %v; want unavailable", key, err)
		}
	})
}

// TestTopicHeadReadsTheTopicWithTheEntries checks that TopicHead returns
// the topic's retention as it is now, with the head, and that a missing
// topic is ErrTopicNotFound.
func TestTopicHeadReadsTheTopicWithTheEntries(t *testing.T) {
	runOnEngines(t, []string{"head"}, func(s string) string { return s }, func(t *testing.T, e *scriptEnv, _ string) {
		ctx := t.Context()
		tp := metadata.Topic{Name: "h", ID: "h1", Partitions: 2, RetentionMS: 60_000, CreatedMS: 1}
		if err := e.s.CreateTopic(ctx, tp); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.Commit(ctx, tp, "C1", []metadata.Batch{{Partition: 1, Records: 2, Offset: 40, Length: 30}}); err != nil {
			t.Fatal(err)
		}
		bytes := int64(500)
		if _, err := e.s.UpdateTopic(ctx, "h", metadata.TopicUpdate{RetentionBytes: &bytes}); err != nil {
			t.Fatal(err)
		}
		h, err := e.s.TopicHead(ctx, "h", 1, 10)
		if err != nil || h.Topic.ID != "h1" || h.Topic.RetentionMS != 60_000 || h.Topic.RetentionBytes != 500 ||
			len(h.Entries) != 1 || h.Entries[0].ChunkID != "C1" || h.StoredBytes != 30 {
			t.Fatalf("TopicHead = %+v, %v", h, err)
		}
		if h, err := e.s.TopicHead(ctx, "h", 0, 10); err != nil || len(h.Entries) != 0 || h.StoredBytes != 0 {
			t.Fatalf("TopicHead of an empty partition = %+v, %v", h, err)
		}
		if _, err := e.s.TopicHead(ctx, "nope", 0, 10); !errors.Is(err, metadata.ErrTopicNotFound) {
			t.Fatalf("TopicHead of a missing topic: %v, want ErrTopicNotFound", err)
		}
	})
}
