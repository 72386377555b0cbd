package metadata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/internal/chunkid"
)

// Created returns when the entry's object was written, decoded from its
// chunk id (a ULID's millisecond timestamp): the append time of every
// record the entry covers, as Kafka's LogAppendTime. ok is false for an
// object id that is not a chunk id; such an entry has no append time.
func (e IndexEntry) Created() (created time.Time, ok bool) {
	id, err := chunkid.Parse(e.ChunkID)
	if err != nil {
		return time.Time{}, false
	}
	return id.Time(), true
}

// FirstEntries returns the oldest index entry of each of the topic's
// partitions 0..partitions-1, in one pipeline; ok[p] is false for an empty
// partition. Describe and retention use it for the age of the log start.
func (s *Store) FirstEntries(ctx context.Context, topic string, partitions int) (first []IndexEntry, ok []bool, err error) {
	cmds := make([]*redis.StringSliceCmd, partitions)
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			cmds[i] = p.ZRange(ctx, s.indexKey(topic, int32(i)), 0, 0)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, unavailable("read log start of "+topic, err)
	}
	first = make([]IndexEntry, partitions)
	ok = make([]bool, partitions)
	for i, c := range cmds {
		if len(c.Val()) == 0 {
			continue
		}
		e, err := parseEntry(c.Val()[0])
		if err != nil {
			return nil, nil, fmt.Errorf("log start of %s/%d: %w", topic, i, err)
		}
		first[i], ok[i] = e, true
	}
	return first, ok, nil
}

// LogStartAge is how long ago the oldest entry among first (as
// FirstEntries returns them) was written, at now: the age of the topic's
// oldest readable record. It is zero when every partition is empty or no
// entry has an append time.
func LogStartAge(first []IndexEntry, ok []bool, now time.Time) time.Duration {
	var age time.Duration
	for i, e := range first {
		if !ok[i] {
			continue
		}
		if created, has := e.Created(); has {
			age = max(age, now.Sub(created))
		}
	}
	return age
}
