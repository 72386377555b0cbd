package metadata_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/metadata"
)

// TestSubscribeCommitsResubscribed kills the subscription's connection
// (CLIENT KILL TYPE pubsub): Run reports the resubscription once go-redis
// has made it again, and commits after it are delivered.
func TestSubscribeCommitsResubscribed(t *testing.T) {
	s, r := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	tp := topic("watched", 1)
	mustCreate(t, s, tp)
	events, resubscribed := runSubscription(ctx, t, s)

	admin := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer admin.Close()
	killed, err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Int()
	if err != nil || killed != 1 {
		t.Fatalf("CLIENT KILL TYPE pubsub = %d, %v; want one subscriber killed", killed, err)
	}
	select {
	case <-resubscribed:
	case <-time.After(20 * time.Second):
		t.Fatal("no resubscription reported within 20s of the connection's loss")
	}
	if _, err := s.Commit(ctx, tp, "c1", []metadata.Batch{{Partition: 0, Records: 2, Offset: 0, Length: 1}}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		if e != (metadata.CommitEvent{Topic: "watched", Partition: 0, HighWatermark: 2}) {
			t.Fatalf("event = %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no commit event within 10s of the resubscription")
	}
	if len(resubscribed) != 0 {
		t.Errorf("%d more resubscriptions reported, want none", len(resubscribed))
	}
}
