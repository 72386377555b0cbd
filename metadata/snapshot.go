package metadata

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/retry"
)

// ErrNotEmpty is returned by LoadSnapshot when Redis already holds keys
// under the store's prefix.
var ErrNotEmpty = errors.New("metadata store is not empty")

// Snapshot is a copy of everything in the metadata store that cannot be
// rebuilt cheaply: the topic registry, every partition's offsets and chunk
// index, the commit markers and idempotency records that are still alive,
// and each consumer group's committed offsets and lease counter. Group
// members, partition owners and job leases are not in it: members join
// again after a restore, and the lease counter keeps every new lease
// greater than the leases handed out before.
//
// Each topic is read in one MULTI, so its offsets, index, markers and
// idempotency records agree with each other; different topics and groups
// are read one after another. Time is Redis's clock when the snapshot
// began: every commit that is not in the snapshot was applied after it.
type Snapshot struct {
	Time   time.Time
	Topics []TopicSnapshot
	Groups []GroupSnapshot
}

// TopicSnapshot is one topic's part of a Snapshot.
type TopicSnapshot struct {
	Topic Topic
	// Partitions has one entry per partition, in partition order.
	Partitions []PartitionSnapshot
	// Commits are the topic's live chunk commit markers, by chunk id.
	Commits []CommitMarker
	// Idempotency are the topic's live idempotency records, by key.
	Idempotency []IdempotencyRecord
}

// PartitionSnapshot is one partition's offsets and index.
type PartitionSnapshot struct {
	Partition      int32
	LogStartOffset int64
	HighWatermark  int64
	// Index holds the partition's index entries in offset order.
	Index []IndexEntry
}

// CommitMarker is the remembered result of committing one chunk to a
// topic, which makes a repeated commit of that chunk change nothing.
type CommitMarker struct {
	ChunkID string
	// Result is the stored commit result, in the form the commit script
	// writes and Commit parses.
	Result string
	// TTL is how long the marker had left when the snapshot was taken;
	// zero means it never expires.
	TTL time.Duration
}

// IdempotencyRecord is the first answer to a request with an idempotency
// key, kept for the dedup window.
type IdempotencyRecord struct {
	// TopicID is the incarnation of the topic the key was used with.
	TopicID string
	Key     string
	// Value is the stored answer: comma-separated base offsets, "|", and
	// the layout (see EncodeLayout).
	Value string
	// TTL is how long the record had left; zero means it never expires.
	TTL time.Duration
}

// GroupSnapshot is a consumer group's durable state.
type GroupSnapshot struct {
	Name string
	// Lease is the last lease (fencing token) the group handed out.
	Lease int64
	// Offsets are the group's committed offsets, by topic and partition.
	Offsets []GroupOffset
}

// snapshotRetry re-reads a topic that was deleted and created anew (with
// another partition count) between reading its registry entry and its
// data. A recreation is rare and quick, so a few short waits are enough;
// more than Attempts recreations in a row make the snapshot fail as
// unavailable, to be taken again later.
var snapshotRetry = retry.Policy{
	Base:      time.Millisecond,
	Max:       10 * time.Millisecond,
	Attempts:  5,
	Retryable: func(err error) bool { return errors.Is(err, errTopicChanged) },
}

// errTopicChanged says that a topic's partition count changed while it was
// read; the read is retried with the new count.
var errTopicChanged = errors.New("topic changed while being read")

// Snapshot reads a consistent copy of each topic and group (see Snapshot
// for what consistent means here).
func (s *Store) Snapshot(ctx context.Context) (*Snapshot, error) {
	now, err := s.rdb.Time(ctx).Result()
	if err != nil {
		return nil, unavailable("snapshot", err)
	}
	snap := &Snapshot{Time: now.Truncate(time.Millisecond)}

	// Markers and idempotency records can only be found by scanning. The
	// scan comes before the reads, so that every marker or record read
	// belongs to a commit that the topic's MULTI also sees: a marker
	// without its index entries would make a restore skip a chunk it must
	// index. A key written between the scan and the MULTI is missed. For
	// a marker that costs nothing (the index entries are there); for an
	// idempotency record it means that a retry of that one request, sent
	// after a restore from this snapshot, is appended again.
	markers := map[string][]string{} // topic -> chunk ids
	idems := map[string][]string{}   // topic -> "topicID:key"
	err = s.scanKeys(ctx, func(keys []string) {
		for _, k := range keys {
			topic, rest, ok := s.splitTopicKey(k)
			if !ok {
				continue
			}
			if id, ok := strings.CutPrefix(rest, "chunk:"); ok {
				markers[topic] = append(markers[topic], id)
			} else if idk, ok := strings.CutPrefix(rest, "idem:"); ok {
				idems[topic] = append(idems[topic], idk)
			}
		}
	})
	if err != nil {
		return nil, err
	}

	topics, err := s.Topics(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range topics {
		ts, err := s.snapshotTopic(ctx, t, markers[t.Name], idems[t.Name])
		if errors.Is(err, ErrTopicNotFound) {
			continue // deleted since it was listed
		}
		if err != nil {
			return nil, err
		}
		snap.Topics = append(snap.Topics, ts)
	}

	groups, err := s.Groups(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		gs, err := s.snapshotGroup(ctx, g)
		if err != nil {
			return nil, err
		}
		snap.Groups = append(snap.Groups, gs)
	}
	return snap, nil
}

func (s *Store) snapshotTopic(ctx context.Context, t Topic, markers, idems []string) (TopicSnapshot, error) {
	slices.Sort(markers)
	slices.Sort(idems)
	var ts TopicSnapshot
	err := snapshotRetry.Do(ctx, func(ctx context.Context) error {
		var err error
		ts, err = s.readTopic(ctx, t, markers, idems)
		if errors.Is(err, errTopicChanged) {
			t = ts.Topic // recreated meanwhile: read it again with its own partitions
		}
		return err
	})
	if errors.Is(err, errTopicChanged) {
		return TopicSnapshot{}, fmt.Errorf("snapshot topic %s: it kept changing while being read: %w", t.Name, ErrUnavailable)
	}
	if err != nil {
		return TopicSnapshot{}, err
	}
	return ts, nil
}

// readTopic reads topic t in one MULTI. If the topic no longer has
// t.Partitions partitions, it returns errTopicChanged and, in the
// snapshot's Topic, the topic as it is now.
func (s *Store) readTopic(ctx context.Context, t Topic, markers, idems []string) (TopicSnapshot, error) {
	var meta, hw, lso *redis.MapStringStringCmd
	idx := make([]*redis.StringSliceCmd, t.Partitions)
	mGet := make([]*redis.StringCmd, len(markers))
	mTTL := make([]*redis.DurationCmd, len(markers))
	iGet := make([]*redis.StringCmd, len(idems))
	iTTL := make([]*redis.DurationCmd, len(idems))
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		meta = p.HGetAll(ctx, s.topicKey(t.Name, "meta"))
		hw = p.HGetAll(ctx, s.topicKey(t.Name, "hw"))
		lso = p.HGetAll(ctx, s.topicKey(t.Name, "lso"))
		for i := range idx {
			idx[i] = p.ZRange(ctx, s.indexKey(t.Name, int32(i)), 0, -1)
		}
		for i, id := range markers {
			k := s.topicKey(t.Name, "chunk:"+id)
			mGet[i], mTTL[i] = p.Get(ctx, k), p.PTTL(ctx, k)
		}
		for i, idk := range idems {
			k := s.topicKey(t.Name, "idem:"+idk)
			iGet[i], iTTL[i] = p.Get(ctx, k), p.PTTL(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return TopicSnapshot{}, unavailable("snapshot topic "+t.Name, err)
	}
	cur, err := parseTopic(t.Name, meta.Val())
	if err != nil {
		return TopicSnapshot{}, err
	}
	if cur.Partitions != t.Partitions {
		return TopicSnapshot{Topic: cur}, errTopicChanged
	}
	ts := TopicSnapshot{Topic: cur, Partitions: make([]PartitionSnapshot, t.Partitions)}
	for i := range ts.Partitions {
		field := strconv.Itoa(i)
		ps := PartitionSnapshot{
			Partition:      int32(i),
			LogStartOffset: parseOffset(lso.Val()[field]),
			HighWatermark:  parseOffset(hw.Val()[field]),
		}
		members := idx[i].Val()
		if len(members) > 0 {
			ps.Index = make([]IndexEntry, len(members))
		}
		for j, m := range members {
			if ps.Index[j], err = parseEntry(m); err != nil {
				return TopicSnapshot{}, fmt.Errorf("snapshot topic %s/%d: %w", t.Name, i, err)
			}
		}
		ts.Partitions[i] = ps
	}
	for i, id := range markers {
		v, err := mGet[i].Result()
		if err != nil {
			continue // expired between the scan and the read
		}
		ts.Commits = append(ts.Commits, CommitMarker{ChunkID: id, Result: v, TTL: remaining(mTTL[i].Val())})
	}
	for i, idk := range idems {
		v, err := iGet[i].Result()
		if err != nil {
			continue
		}
		topicID, key, _ := strings.Cut(idk, ":")
		ts.Idempotency = append(ts.Idempotency, IdempotencyRecord{TopicID: topicID, Key: key, Value: v, TTL: remaining(iTTL[i].Val())})
	}
	return ts, nil
}

// remaining turns a PTTL reply into a TTL: zero for a key without expiry.
// A key that expires within the millisecond gets one millisecond, so that
// it is not taken for one that never expires.
func remaining(ttl time.Duration) time.Duration {
	if ttl < 0 {
		return 0
	}
	return max(ttl, time.Millisecond)
}

func (s *Store) snapshotGroup(ctx context.Context, group string) (GroupSnapshot, error) {
	var offsets *redis.MapStringStringCmd
	var lease *redis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		offsets = p.HGetAll(ctx, s.groupKey(group, "offsets"))
		lease = p.Get(ctx, s.groupKey(group, "lease"))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return GroupSnapshot{}, unavailable("snapshot group "+group, err)
	}
	gs := GroupSnapshot{Name: group, Lease: parseOffset(lease.Val())}
	for tp, v := range offsets.Val() {
		topic, p, err := splitTopicPartition(tp)
		if err != nil {
			return GroupSnapshot{}, fmt.Errorf("snapshot group %s: %w", group, err)
		}
		off, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return GroupSnapshot{}, fmt.Errorf("snapshot group %s: malformed offset %q for %s", group, v, tp)
		}
		gs.Offsets = append(gs.Offsets, GroupOffset{Topic: topic, Partition: p, Offset: off})
	}
	slices.SortFunc(gs.Offsets, compareGroupOffsets)
	return gs, nil
}

func compareGroupOffsets(a, b GroupOffset) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return int(a.Partition - b.Partition)
}

// Validate reports every problem that would keep the snapshot from being
// loaded: bad topics or groups, partitions out of order, index entries
// that do not make sense.
func (snap *Snapshot) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for _, ts := range snap.Topics {
		t := ts.Topic
		if err := t.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("topic %q: %w", t.Name, err))
			continue
		}
		if seen[t.Name] {
			errs = append(errs, fmt.Errorf("topic %s: listed twice", t.Name))
		}
		seen[t.Name] = true
		if len(ts.Partitions) != t.Partitions {
			errs = append(errs, fmt.Errorf("topic %s: %d partitions, %d in the snapshot", t.Name, t.Partitions, len(ts.Partitions)))
		}
		for i, ps := range ts.Partitions {
			if ps.Partition != int32(i) {
				errs = append(errs, fmt.Errorf("topic %s: partition %d in position %d", t.Name, ps.Partition, i))
			}
			if ps.LogStartOffset < 0 || ps.HighWatermark < ps.LogStartOffset {
				errs = append(errs, fmt.Errorf("topic %s/%d: log start offset %d, high watermark %d", t.Name, i, ps.LogStartOffset, ps.HighWatermark))
			}
			for _, e := range ps.Index {
				if e.BaseOffset < 0 || e.Records <= 0 || e.Offset < 0 || e.Length <= 0 || chunk.ValidateID(e.ChunkID) != nil {
					errs = append(errs, fmt.Errorf("topic %s/%d: bad index entry %+v", t.Name, i, e))
				}
			}
		}
		for _, m := range ts.Commits {
			if chunk.ValidateID(m.ChunkID) != nil || m.TTL < 0 {
				errs = append(errs, fmt.Errorf("topic %s: bad commit marker %q", t.Name, m.ChunkID))
			}
		}
		for _, r := range ts.Idempotency {
			if r.TopicID == "" || ValidateIdempotencyKey(r.Key) != nil || r.TTL < 0 {
				errs = append(errs, fmt.Errorf("topic %s: bad idempotency record %q:%q", t.Name, r.TopicID, r.Key))
			}
		}
	}
	groups := map[string]bool{}
	for _, g := range snap.Groups {
		if err := ValidateGroupName(g.Name); err != nil {
			errs = append(errs, fmt.Errorf("group: %w", err))
			continue
		}
		if groups[g.Name] {
			errs = append(errs, fmt.Errorf("group %s: listed twice", g.Name))
		}
		groups[g.Name] = true
		if g.Lease < 0 {
			errs = append(errs, fmt.Errorf("group %s: lease %d is negative", g.Name, g.Lease))
		}
		for _, o := range g.Offsets {
			if chunk.ValidateTopic(o.Topic) != nil || o.Partition < 0 {
				errs = append(errs, fmt.Errorf("group %s: bad offset %+v", g.Name, o))
			}
		}
	}
	return errors.Join(errs...)
}

// loadBatch is how many commands LoadSnapshot sends per pipeline, and
// loadZAdd how many index entries go in one ZADD.
const (
	loadBatch = 4096
	loadZAdd  = 1024
)

// LoadSnapshot writes snap into Redis, which must hold no key under the
// store's prefix (ErrNotEmpty otherwise). It writes the same keys that the
// snapshot was read from; markers and idempotency records get the TTL
// they had left when the snapshot was taken, and group lease counters are
// raised to Redis's clock in microseconds if they are below it. It is meant for a store that
// nothing else uses yet: a reader may see a topic before its index is
// complete.
func (s *Store) LoadSnapshot(ctx context.Context, snap *Snapshot) error {
	if err := snap.Validate(); err != nil {
		return fmt.Errorf("load snapshot: %w", err)
	}
	empty, err := s.IsEmpty(ctx)
	if err != nil {
		return err
	}
	if !empty {
		return fmt.Errorf("load snapshot: %w: keys under prefix %q exist", ErrNotEmpty, s.prefix)
	}
	// A group's lease counter starts no lower than Redis's clock in µs, as
	// a new group's does (scripts/group_sync.lua): members of the lost
	// Redis may hold leases handed out after the checkpoint, above its
	// counter, and must not find them handed out again.
	now, err := s.Now(ctx)
	if err != nil {
		return err
	}
	pl := &batchPipe{ctx: ctx, p: s.rdb.Pipeline()}
	for _, ts := range snap.Topics {
		t := ts.Topic
		pl.add(func(p redis.Pipeliner) {
			p.HSet(ctx, s.topicKey(t.Name, "meta"), "name", t.Name, "id", t.ID, "partitions", t.Partitions,
				"retention_ms", t.RetentionMS, "created_ms", t.CreatedMS, "retention_bytes", t.RetentionBytes)
		})
		refs := map[string]int64{}
		for _, ps := range ts.Partitions {
			field := strconv.Itoa(int(ps.Partition))
			if ps.HighWatermark != 0 {
				pl.add(func(p redis.Pipeliner) { p.HSet(ctx, s.topicKey(t.Name, "hw"), field, ps.HighWatermark) })
			}
			if ps.LogStartOffset != 0 {
				pl.add(func(p redis.Pipeliner) { p.HSet(ctx, s.topicKey(t.Name, "lso"), field, ps.LogStartOffset) })
			}
			var stored int64
			for _, e := range ps.Index {
				refs[e.ChunkID]++
				stored += e.Length
			}
			if stored != 0 {
				pl.add(func(p redis.Pipeliner) { p.HSet(ctx, s.topicKey(t.Name, "bytes"), field, stored) })
			}
			key := s.indexKey(t.Name, ps.Partition)
			for part := range slices.Chunk(ps.Index, loadZAdd) {
				members := make([]redis.Z, len(part))
				for i, e := range part {
					members[i] = redis.Z{Score: float64(e.BaseOffset), Member: formatEntry(e)}
				}
				pl.add(func(p redis.Pipeliner) { p.ZAdd(ctx, key, members...) })
			}
		}
		for part := range slices.Chunk(slices.Sorted(maps.Keys(refs)), loadZAdd) {
			fields := make([]any, 0, 2*len(part))
			for _, id := range part {
				fields = append(fields, id, refs[id])
			}
			pl.add(func(p redis.Pipeliner) { p.HSet(ctx, s.topicKey(t.Name, "refs"), fields...) })
		}
		for _, m := range ts.Commits {
			pl.add(func(p redis.Pipeliner) { p.Set(ctx, s.topicKey(t.Name, "chunk:"+m.ChunkID), m.Result, m.TTL) })
		}
		for _, r := range ts.Idempotency {
			pl.add(func(p redis.Pipeliner) {
				p.Set(ctx, s.topicKey(t.Name, "idem:"+r.TopicID+":"+r.Key), r.Value, r.TTL)
			})
		}
		pl.add(func(p redis.Pipeliner) { p.SAdd(ctx, s.topicsKey(), t.Name) })
	}
	for _, g := range snap.Groups {
		if len(g.Offsets) > 0 {
			fields := make([]any, 0, 2*len(g.Offsets))
			for _, o := range g.Offsets {
				fields = append(fields, o.Topic+"/"+strconv.Itoa(int(o.Partition)), o.Offset)
			}
			pl.add(func(p redis.Pipeliner) { p.HSet(ctx, s.groupKey(g.Name, "offsets"), fields...) })
		}
		if g.Lease != 0 {
			lease := max(g.Lease, now.UnixMicro())
			pl.add(func(p redis.Pipeliner) { p.Set(ctx, s.groupKey(g.Name, "lease"), lease, 0) })
		}
		pl.add(func(p redis.Pipeliner) { p.SAdd(ctx, s.groupsKey(), g.Name) })
	}
	if err := pl.flush(); err != nil {
		return unavailable("load snapshot", err)
	}
	return nil
}

// formatEntry is the index member that the commit script writes.
func formatEntry(e IndexEntry) string {
	return strconv.FormatInt(e.BaseOffset, 10) + "|" + strconv.Itoa(e.Records) + "|" + e.ChunkID + "|" +
		strconv.FormatInt(e.Offset, 10) + "|" + strconv.FormatInt(e.Length, 10)
}

// batchPipe queues commands and sends them loadBatch at a time; the first
// error sticks.
type batchPipe struct {
	ctx context.Context
	p   redis.Pipeliner
	err error
}

func (b *batchPipe) add(fn func(redis.Pipeliner)) {
	if b.err != nil {
		return
	}
	fn(b.p)
	if b.p.Len() >= loadBatch {
		b.err = b.flush()
	}
}

func (b *batchPipe) flush() error {
	if b.err != nil {
		return b.err
	}
	if b.p.Len() == 0 {
		return nil
	}
	_, err := b.p.Exec(b.ctx)
	return err
}

// IsEmpty reports whether Redis holds no key under the store's prefix.
func (s *Store) IsEmpty(ctx context.Context) (bool, error) {
	empty := true
	errFound := errors.New("found")
	err := s.scanEach(ctx, func(keys []string) error {
		if len(keys) > 0 {
			empty = false
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return false, err
	}
	return empty, nil
}

// Wipe deletes every key under the store's prefix and returns how many it
// deleted. Nothing may use the store meanwhile: a commit during a wipe may
// be left half deleted.
func (s *Store) Wipe(ctx context.Context) (int, error) {
	n := 0
	err := s.scanEach(ctx, func(keys []string) error {
		// One command per key: on Redis Cluster the keys live in
		// different slots, and the pipeline routes each to its node.
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Unlink(ctx, k)
			}
			return nil
		})
		if err != nil {
			return unavailable("wipe", err)
		}
		n += len(keys)
		return nil
	})
	return n, err
}

// scanKeys calls fn with every key under the store's prefix, in batches.
func (s *Store) scanKeys(ctx context.Context, fn func(keys []string)) error {
	return s.scanEach(ctx, func(keys []string) error { fn(keys); return nil })
}

// scanEach runs SCAN MATCH prefix:* over every master and calls fn with
// each non-empty batch of keys, one call at a time, until fn fails. A key
// that exists for the whole scan is passed at least once.
func (s *Store) scanEach(ctx context.Context, fn func(keys []string) error) error {
	match := escapeGlob(s.prefix) + ":*"
	var mu sync.Mutex
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, match, 1000).Result()
			if err != nil {
				return unavailable("scan keys", err)
			}
			if len(keys) > 0 {
				mu.Lock()
				err := fn(keys)
				mu.Unlock()
				if err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	}
	return scan(ctx, s.rdb)
}

// escapeGlob quotes the characters that SCAN MATCH treats as a pattern.
func escapeGlob(s string) string {
	var sb strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\', '^', '-':
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// splitTopicKey splits a key of a topic, prefix:{T}:rest, into T and rest.
// Group keys ({g:G}) and keys without a hash tag are not topic keys.
func (s *Store) splitTopicKey(key string) (topic, rest string, ok bool) {
	tagged, ok := strings.CutPrefix(key, s.prefix+":{")
	if !ok {
		return "", "", false
	}
	topic, rest, ok = strings.Cut(tagged, "}:")
	if !ok || chunk.ValidateTopic(topic) != nil {
		return "", "", false // topic names hold no ':', so this is a group key
	}
	return topic, rest, true
}
