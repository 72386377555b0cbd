package metadata

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/chunk"
)

// MaxPartitions is the most partitions a topic may have.
const MaxPartitions = 10000

// Topic is a topic's registry entry.
type Topic struct {
	Name string
	// ID names this incarnation of the topic: a topic deleted and created
	// again under the same name gets a new ID, so that nothing of the old
	// one (an idempotency record, a commit on its way) leaks into it.
	ID         string
	Partitions int
	// RetentionMS is how long records are kept, by the time their chunk
	// was written; 0 keeps them forever.
	RetentionMS int64
	// RetentionBytes bounds each partition's stored bytes: the oldest
	// batches go while the rest is still at least this big; 0 is no bound.
	RetentionBytes int64
	CreatedMS      int64
}

// Validate reports every problem with the topic's fields at once.
func (t Topic) Validate() error {
	var errs []error
	if err := chunk.ValidateTopic(t.Name); err != nil {
		errs = append(errs, fmt.Errorf("name: %w", err))
	}
	if t.ID == "" {
		errs = append(errs, errors.New("id: empty"))
	}
	if t.Partitions < 1 || t.Partitions > MaxPartitions {
		errs = append(errs, fmt.Errorf("partitions: %d is outside 1..%d", t.Partitions, MaxPartitions))
	}
	if t.RetentionMS < 0 {
		errs = append(errs, fmt.Errorf("retention_ms: %d is negative", t.RetentionMS))
	}
	if t.RetentionBytes < 0 {
		errs = append(errs, fmt.Errorf("retention_bytes: %d is negative", t.RetentionBytes))
	}
	return errors.Join(errs...)
}

// PartitionStats are a partition's offsets: records live at offsets
// [LogStartOffset, HighWatermark).
type PartitionStats struct {
	Partition      int32
	LogStartOffset int64
	HighWatermark  int64
	// StoredBytes is the size of the partition's indexed batches, the
	// figure retention_bytes bounds. Lookup leaves it zero.
	StoredBytes int64
}

// CreateTopic registers t. The caller writes the topic's configuration to
// the bucket first, so that the bucket knows every topic Redis does.
func (s *Store) CreateTopic(ctx context.Context, t Topic) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	err := createTopicScript.Run(ctx, s.rdb, []string{s.topicKey(t.Name, "meta")},
		t.Name, t.ID, t.Partitions, t.RetentionMS, t.CreatedMS, t.RetentionBytes).Err()
	if err != nil {
		return scriptError("create topic", t.Name, err)
	}
	if err := s.rdb.SAdd(ctx, s.topicsKey(), t.Name).Err(); err != nil {
		return unavailable("create topic "+t.Name, err)
	}
	return nil
}

// DeleteTopic removes the topic, its offsets and its index. Redis frees
// the index in the background (UNLINK). Objects in the bucket are left for
// garbage collection, since chunks hold other topics' batches too.
func (s *Store) DeleteTopic(ctx context.Context, name string) error {
	err := deleteTopicScript.Run(ctx, s.rdb,
		[]string{s.topicKey(name, "meta"), s.topicKey(name, "hw"), s.topicKey(name, "lso"),
			s.topicKey(name, "refs"), s.topicKey(name, "bytes"), s.topicKey(name, "unref")},
		s.topicKey(name, "idx:")).Err()
	if err != nil {
		return scriptError("delete topic", name, err)
	}
	if err := s.rdb.SRem(ctx, s.topicsKey(), name).Err(); err != nil {
		return unavailable("delete topic "+name, err)
	}
	return nil
}

// Topic returns the named topic.
func (s *Store) Topic(ctx context.Context, name string) (Topic, error) {
	m, err := s.rdb.HGetAll(ctx, s.topicKey(name, "meta")).Result()
	if err != nil {
		return Topic{}, unavailable("get topic "+name, err)
	}
	return parseTopic(name, m)
}

func parseTopic(name string, m map[string]string) (Topic, error) {
	if len(m) == 0 {
		return Topic{}, fmt.Errorf("topic %s: %w", name, ErrTopicNotFound)
	}
	t := Topic{Name: m["name"], ID: m["id"]}
	var errs []error
	parse := func(field string, dst *int64) {
		v, err := strconv.ParseInt(m[field], 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
		*dst = v
	}
	var partitions int64
	parse("partitions", &partitions)
	parse("retention_ms", &t.RetentionMS)
	parse("created_ms", &t.CreatedMS)
	if m["retention_bytes"] != "" { // absent on topics created before it existed
		parse("retention_bytes", &t.RetentionBytes)
	}
	t.Partitions = int(partitions)
	if err := errors.Join(errs...); err != nil {
		return Topic{}, fmt.Errorf("topic %s: corrupt metadata: %w", name, err)
	}
	return t, nil
}

// Topics returns every topic, sorted by name.
func (s *Store) Topics(ctx context.Context) ([]Topic, error) {
	names, err := s.rdb.SMembers(ctx, s.topicsKey()).Result()
	if err != nil {
		return nil, unavailable("list topics", err)
	}
	slices.Sort(names)
	cmds := make([]*redis.MapStringStringCmd, len(names))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, name := range names {
			cmds[i] = p.HGetAll(ctx, s.topicKey(name, "meta"))
		}
		return nil
	})
	if err != nil {
		return nil, unavailable("list topics", err)
	}
	topics := make([]Topic, 0, len(names))
	for i, name := range names {
		t, err := parseTopic(name, cmds[i].Val())
		if errors.Is(err, ErrTopicNotFound) {
			continue // deleted between the two reads
		}
		if err != nil {
			return nil, err
		}
		topics = append(topics, t)
	}
	return topics, nil
}

// PartitionStats returns the offsets of every partition of the topic.
func (s *Store) PartitionStats(ctx context.Context, name string) (Topic, []PartitionStats, error) {
	var meta *redis.MapStringStringCmd
	var hw, lso, stored *redis.MapStringStringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		meta = p.HGetAll(ctx, s.topicKey(name, "meta"))
		hw = p.HGetAll(ctx, s.topicKey(name, "hw"))
		lso = p.HGetAll(ctx, s.topicKey(name, "lso"))
		stored = p.HGetAll(ctx, s.topicKey(name, "bytes"))
		return nil
	})
	if err != nil {
		return Topic{}, nil, unavailable("partition stats "+name, err)
	}
	t, err := parseTopic(name, meta.Val())
	if err != nil {
		return Topic{}, nil, err
	}
	stats := make([]PartitionStats, t.Partitions)
	for p := range stats {
		key := strconv.Itoa(p)
		stats[p] = PartitionStats{
			Partition:      int32(p),
			HighWatermark:  parseOffset(hw.Val()[key]),
			LogStartOffset: parseOffset(lso.Val()[key]),
			StoredBytes:    parseOffset(stored.Val()[key]),
		}
	}
	return t, stats, nil
}

// parseOffset reads a counter that is absent (zero) until first written.
func parseOffset(s string) int64 {
	v, _ := strconv.ParseInt(s, 10, 64)
	return v
}
