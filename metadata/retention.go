package metadata

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// MaxTrimEntries is the most index entries one Trim removes, which bounds
// how long the script holds Redis.
const MaxTrimEntries = 1000

// TopicUpdate is a change of a topic's retention; nil fields stay as they
// are.
type TopicUpdate struct {
	RetentionMS    *int64
	RetentionBytes *int64
}

// UpdateTopic changes the topic's retention and returns the topic as it is
// afterwards. The caller writes the changed configuration to the bucket
// first, as for CreateTopic.
func (s *Store) UpdateTopic(ctx context.Context, name string, u TopicUpdate) (Topic, error) {
	arg := func(v *int64, field string) (string, error) {
		if v == nil {
			return "", nil
		}
		if *v < 0 {
			return "", fmt.Errorf("update topic %s: %s: %d is negative", name, field, *v)
		}
		return strconv.FormatInt(*v, 10), nil
	}
	ms, err1 := arg(u.RetentionMS, "retention_ms")
	bytes, err2 := arg(u.RetentionBytes, "retention_bytes")
	if err := errors.Join(err1, err2); err != nil {
		return Topic{}, err
	}
	if err := updateTopicScript.Run(ctx, s.rdb, []string{s.topicKey(name, "meta")}, ms, bytes).Err(); err != nil {
		return Topic{}, scriptError("update topic", name, err)
	}
	return s.Topic(ctx, name)
}

// Head returns up to n of the partition's oldest index entries, in offset
// order, and its stored bytes.
func (s *Store) Head(ctx context.Context, topic string, partition int32, n int) ([]IndexEntry, int64, error) {
	h, err := s.head(ctx, topic, partition, n, false)
	return h.Entries, h.StoredBytes, err
}

// TopicHead is a partition's oldest index entries and stored bytes, and
// the topic (its id and retention) as it was at the same moment.
type TopicHead struct {
	Topic       Topic
	Entries     []IndexEntry
	StoredBytes int64
}

// TopicHead returns up to n of the partition's oldest index entries, in
// offset order, its stored bytes and the topic, read in one transaction:
// retention decides each trim step by the topic's retention as it is then,
// so a change of retention takes effect at the next step.
//
// Errors: ErrTopicNotFound when the topic does not exist.
func (s *Store) TopicHead(ctx context.Context, topic string, partition int32, n int) (TopicHead, error) {
	return s.head(ctx, topic, partition, n, true)
}

func (s *Store) head(ctx context.Context, topic string, partition int32, n int, withTopic bool) (TopicHead, error) {
	var members *redis.StringSliceCmd
	var stored *redis.StringCmd
	var meta *redis.MapStringStringCmd
	_, _ = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		members = p.ZRange(ctx, s.indexKey(topic, partition), 0, int64(max(n, 1)-1))
		stored = p.HGet(ctx, s.topicKey(topic, "bytes"), strconv.Itoa(int(partition)))
		if withTopic {
			meta = p.HGetAll(ctx, s.topicKey(topic, "meta"))
		}
		return nil
	})
	// Each command's error on its own: a partition without stored bytes
	// answers nil, which must not hide another command's failure.
	errs := []error{members.Err()}
	if err := stored.Err(); !errors.Is(err, redis.Nil) {
		errs = append(errs, err)
	}
	if meta != nil {
		errs = append(errs, meta.Err())
	}
	if err := errors.Join(errs...); err != nil {
		return TopicHead{}, unavailable("read index head of "+topic, err)
	}
	h := TopicHead{Entries: make([]IndexEntry, 0, len(members.Val())), StoredBytes: parseOffset(stored.Val())}
	if meta != nil {
		t, err := parseTopic(topic, meta.Val())
		if err != nil {
			return TopicHead{}, err
		}
		h.Topic = t
	}
	for _, m := range members.Val() {
		e, err := parseEntry(m)
		if err != nil {
			return TopicHead{}, fmt.Errorf("index head of %s/%d: %w", topic, partition, err)
		}
		h.Entries = append(h.Entries, e)
	}
	return h, nil
}

// Trim removes the partition's first len(entries) index entries, which
// must be what Head returned (at most MaxTrimEntries of them), and raises
// the log start offset past them. It returns the new log start offset and
// whether it trimmed: false means another trim changed the head first and
// nothing was removed.
//
// Errors: ErrTopicNotFound when the topic was deleted (or recreated) since
// t was read.
func (s *Store) Trim(ctx context.Context, t Topic, partition int32, entries []IndexEntry) (int64, bool, error) {
	if len(entries) == 0 || len(entries) > MaxTrimEntries {
		return 0, false, fmt.Errorf("trim %s/%d: %d entries, want 1..%d", t.Name, partition, len(entries), MaxTrimEntries)
	}
	keys := []string{s.topicKey(t.Name, "meta"), s.topicKey(t.Name, "lso"), s.topicKey(t.Name, "refs"),
		s.topicKey(t.Name, "bytes"), s.indexKey(t.Name, partition)}
	keys = append(keys, s.topicKey(t.Name, "unref"))
	lso, err := trimScript.Run(ctx, s.rdb, keys, t.ID, partition, len(entries),
		formatEntry(entries[len(entries)-1]), MaxUnreferenced).Int64()
	if err != nil {
		return 0, false, scriptError(fmt.Sprintf("trim partition %d of", partition), t.Name, err)
	}
	if lso < 0 {
		return 0, false, nil
	}
	return lso, true, nil
}

// MaxUnreferenced bounds each topic's list of the objects its trims left
// unreferenced ({T}:unref): a trim appends nothing to a full list, whose
// objects garbage collection then finds by listing the bucket instead.
const MaxUnreferenced = 10_000

// TakeUnreferenced removes from the topic's list and returns up to n of
// the objects (chunk ids) that trims of the topic left with no index
// entry of the topic naming them, oldest first. Another topic may still
// name one: the caller checks with Referenced. An object taken and then
// not handled (the caller failed) is left to the listing of the bucket.
func (s *Store) TakeUnreferenced(ctx context.Context, topic string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	key := s.topicKey(topic, "unref")
	var taken *redis.StringSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		taken = p.LRange(ctx, key, 0, int64(n-1))
		p.LTrim(ctx, key, int64(n), -1)
		return nil
	})
	if err != nil {
		return nil, unavailable("take unreferenced objects of "+topic, err)
	}
	return taken.Val(), nil
}

// UnreferencedCounts returns how many objects each topic's list of
// objects its trims left unreferenced holds, in one pipeline.
func (s *Store) UnreferencedCounts(ctx context.Context, topics []string) ([]int64, error) {
	cmds := make([]*redis.IntCmd, len(topics))
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range topics {
			cmds[i] = p.LLen(ctx, s.topicKey(t, "unref"))
		}
		return nil
	})
	counts := make([]int64, len(topics))
	for i, c := range cmds {
		if err := c.Err(); err != nil {
			return nil, unavailable("count unreferenced objects of "+topics[i], err)
		}
		counts[i] = c.Val()
	}
	return counts, nil
}

// ObjectRef names a topic whose index may refer to an object.
type ObjectRef struct {
	Topic string
	// TopicID, when set, is the incarnation the object was written for: a
	// topic of that name with another id does not refer to it.
	TopicID string
}

// Referenced reports whether any of the topics' index entries names the
// object (a chunk id or segment id), reading every topic's references in
// one pipeline.
func (s *Store) Referenced(ctx context.Context, object string, topics []ObjectRef) (bool, error) {
	if len(topics) == 0 {
		return false, nil
	}
	ids := make([]*redis.StringCmd, len(topics))
	refs := make([]*redis.BoolCmd, len(topics))
	// The pipeline's own error is only the first failed command's: a
	// deleted topic's redis.Nil there would hide a real failure of a later
	// command, so each command's error is checked on its own.
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range topics {
			ids[i] = p.HGet(ctx, s.topicKey(r.Topic, "meta"), "id")
			refs[i] = p.HExists(ctx, s.topicKey(r.Topic, "refs"), object)
		}
		return nil
	})
	for i := range topics {
		if err := ids[i].Err(); err != nil && !errors.Is(err, redis.Nil) {
			return false, unavailable("read references of "+object, err)
		}
		if err := refs[i].Err(); err != nil {
			return false, unavailable("read references of "+object, err)
		}
	}
	for i, r := range topics {
		if errors.Is(ids[i].Err(), redis.Nil) { // no such topic
			continue
		}
		if r.TopicID != "" && ids[i].Val() != r.TopicID {
			continue
		}
		if refs[i].Val() {
			return true, nil
		}
	}
	return false, nil
}

// TopicUsage is what a topic holds: its stored bytes (the sum over its
// partitions) and the number of objects its index refers to.
type TopicUsage struct {
	StoredBytes int64
	Objects     int64
}

// Usage returns the topic's stored bytes and referenced objects.
func (s *Store) Usage(ctx context.Context, topic string) (TopicUsage, error) {
	var stored *redis.MapStringStringCmd
	var objects *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		stored = p.HGetAll(ctx, s.topicKey(topic, "bytes"))
		objects = p.HLen(ctx, s.topicKey(topic, "refs"))
		return nil
	})
	if err != nil {
		return TopicUsage{}, unavailable("read usage of "+topic, err)
	}
	u := TopicUsage{Objects: objects.Val()}
	for _, v := range stored.Val() {
		u.StoredBytes += parseOffset(v)
	}
	return u, nil
}
