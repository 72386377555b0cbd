package metadata

import (
	"errors"
	"fmt"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestSnapshotTopicRereadsRecreatedTopic checks the retry of snapshotTopic:
// a topic listed with one partition count and found with another (deleted
// and created again in between) is read again with the count it has now.
func TestSnapshotTopicRereadsRecreatedTopic(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	s := New(rdb, Options{})
	ctx := t.Context()
	now := Topic{Name: "t", ID: "t-2", Partitions: 3, CreatedMS: 2}
	if err := s.CreateTopic(ctx, now); err != nil {
		t.Fatal(err)
	}
	listed := Topic{Name: "t", ID: "t-1", Partitions: 2, CreatedMS: 1}
	ts, err := s.snapshotTopic(ctx, listed, nil, nil)
	if err != nil || ts.Topic != now || len(ts.Partitions) != 3 {
		t.Fatalf("snapshotTopic = %+v, %v; want topic %+v with 3 partitions", ts, err, now)
	}
	if _, err := s.snapshotTopic(ctx, Topic{Name: "gone", Partitions: 1}, nil, nil); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("snapshotTopic of a deleted topic: err = %v, want ErrTopicNotFound", err)
	}
}

func TestSnapshotRetryOnlyRetriesChanges(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errTopicChanged, true},
		{fmt.Errorf("read: %w", errTopicChanged), true},
		{ErrTopicNotFound, false},
		{ErrUnavailable, false},
	} {
		if got := snapshotRetry.Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if snapshotRetry.Attempts != 5 {
		t.Errorf("snapshotRetry.Attempts = %d, want the 5 reads it always had", snapshotRetry.Attempts)
	}
}
