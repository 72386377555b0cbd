package metadata

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mambamq/mamba/internal/chunkid"
)

// MaxIdempotencyKeyLen is the longest idempotency key.
const MaxIdempotencyKeyLen = 255

// ValidateIdempotencyKey accepts 1 to 255 bytes of visible ASCII.
func ValidateIdempotencyKey(key string) error {
	if key == "" || len(key) > MaxIdempotencyKeyLen {
		return fmt.Errorf("idempotency key must be 1 to %d characters, not %d", MaxIdempotencyKeyLen, len(key))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return fmt.Errorf("idempotency key may hold only visible ASCII characters, not byte 0x%02x", key[i])
		}
	}
	return nil
}

// Batch is one batch of a chunk to index: Records records of Partition,
// stored at bytes [Offset, Offset+Length) of the chunk.
type Batch struct {
	Partition int32
	Records   int
	Offset    int64
	Length    int64
	// IdempotencyKey, when set, names the request the batch belongs to.
	// All batches of a request are committed together, in one call. If the
	// key was committed within the dedup window, the batch is not indexed
	// and the first answer is returned instead.
	IdempotencyKey string
	// Layout is stored with a new idempotency key and handed back with a
	// duplicate's answer; the caller uses it to rebuild its reply. Only the
	// first batch of each key needs it.
	Layout string
}

// Answer is what a request with an idempotency key was first told.
type Answer struct {
	// Layout is the Layout stored with the key.
	Layout string
	// BaseOffsets are the base offsets of the request's batches, in the
	// order they were committed.
	BaseOffsets []int64
}

// CommitResult tells where each batch of a commit went.
type CommitResult struct {
	// BaseOffsets has one entry per batch: the offset of its first record,
	// or -1 if it was dropped as a duplicate.
	BaseOffsets []int64
	// Duplicates holds, for each idempotency key seen before, its first
	// answer.
	Duplicates map[string]Answer
	// HighWatermarks are the partitions' high watermarks after the commit.
	HighWatermarks map[int32]int64
}

// Commit indexes the batches that chunkID holds for topic t, assigning
// each batch the next offsets of its partition, in one atomic script. It
// is idempotent per chunk: calling it again for the same chunk (after a
// timeout, say) returns the offsets the first call assigned.
//
// Errors: ErrTopicNotFound if the topic was deleted (or deleted and
// created again) since t was read; ErrPartitionNotFound for a batch outside
// the topic; ErrChunkTooOld when the chunk was created more than
// CommitAgeLimit ago (by Redis's clock); ErrUnavailable when Redis cannot be reached, in which case the
// commit may or may not have happened and should be retried.
func (s *Store) Commit(ctx context.Context, t Topic, chunkID string, batches []Batch) (CommitResult, error) {
	keys, args, err := s.commitCall(t, chunkID, batches, s.commitAge)
	if err != nil {
		return CommitResult{}, err
	}
	reply, err := commitScript.Run(ctx, s.rdb, keys, args...).Text()
	if err != nil {
		return CommitResult{}, scriptError("commit "+chunkID+" to", t.Name, err)
	}
	res, err := parseCommitReply(reply, len(batches))
	if err != nil {
		return CommitResult{}, fmt.Errorf("commit %s to %s: %w", chunkID, t.Name, err)
	}
	return res, nil
}

// commitCall checks a commit and returns the commit script's keys and
// arguments for it.
// A maxAge of zero commits a chunk of any age (restore replays old ones);
// otherwise a chunk id that does not parse as a chunk id commits without
// the age check, which only tests' made-up ids do.
func (s *Store) commitCall(t Topic, chunkID string, batches []Batch, maxAge time.Duration) ([]string, []any, error) {
	if len(batches) == 0 {
		return nil, nil, errors.New("commit: no batches")
	}
	var created int64
	if id, err := chunkid.Parse(chunkID); err == nil {
		created = id.Time().UnixMilli()
	} else {
		maxAge = 0
	}
	keys := make([]string, 0, 6+2*len(batches))
	keys = append(keys, s.topicKey(t.Name, "meta"), s.topicKey(t.Name, "hw"), s.topicKey(t.Name, "lso"),
		s.topicKey(t.Name, "chunk:"+chunkID), s.topicKey(t.Name, "refs"), s.topicKey(t.Name, "bytes"))
	args := make([]any, 0, 9+6*len(batches))
	args = append(args, t.ID, chunkID, s.markerTTL().Milliseconds(), s.dedupWindow.Milliseconds(),
		s.CommitsChannel(), t.Name, len(batches), created, maxAge.Milliseconds())
	noKey := s.topicKey(t.Name, "idem-none")
	for _, b := range batches {
		if b.Records <= 0 || b.Offset < 0 || b.Length <= 0 {
			return nil, nil, fmt.Errorf("commit %s to %s: batch of partition %d has %d records at [%d,+%d)",
				chunkID, t.Name, b.Partition, b.Records, b.Offset, b.Length)
		}
		idem := noKey
		if b.IdempotencyKey != "" {
			if err := ValidateIdempotencyKey(b.IdempotencyKey); err != nil {
				return nil, nil, fmt.Errorf("commit %s to %s: %w", chunkID, t.Name, err)
			}
			idem = s.topicKey(t.Name, "idem:"+t.ID+":"+b.IdempotencyKey)
		}
		keys = append(keys, s.indexKey(t.Name, b.Partition), idem)
		args = append(args, b.Partition, b.Records, b.Offset, b.Length, b.IdempotencyKey, b.Layout)
	}
	return keys, args, nil
}

func parseCommitReply(reply string, n int) (CommitResult, error) {
	lines := strings.Split(reply, "\n")
	if len(lines) < 2 {
		return CommitResult{}, fmt.Errorf("malformed commit reply %q", reply)
	}
	bases, err := parseInts(lines[0])
	if err != nil || len(bases) != n {
		return CommitResult{}, fmt.Errorf("malformed base offsets %q for %d batches", lines[0], n)
	}
	res := CommitResult{BaseOffsets: bases, HighWatermarks: map[int32]int64{}}
	if lines[1] != "" {
		for pair := range strings.SplitSeq(lines[1], ",") {
			p, hw, ok := strings.Cut(pair, ":")
			pi, err1 := strconv.ParseInt(p, 10, 32)
			hwi, err2 := strconv.ParseInt(hw, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return CommitResult{}, fmt.Errorf("malformed high watermark %q", pair)
			}
			res.HighWatermarks[int32(pi)] = hwi
		}
	}
	for _, line := range lines[2:] {
		key, stored, ok := strings.Cut(line, "\t")
		if !ok {
			return CommitResult{}, fmt.Errorf("malformed duplicate %q", line)
		}
		ans, err := parseAnswer(stored)
		if err != nil {
			return CommitResult{}, err
		}
		if res.Duplicates == nil {
			res.Duplicates = map[string]Answer{}
		}
		res.Duplicates[key] = ans
	}
	return res, nil
}

func parseAnswer(stored string) (Answer, error) {
	list, layout, ok := strings.Cut(stored, "|")
	bases, err := parseInts(list)
	if !ok || err != nil {
		return Answer{}, fmt.Errorf("malformed idempotency record %q", stored)
	}
	return Answer{Layout: layout, BaseOffsets: bases}, nil
}

func parseInts(s string) ([]int64, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]int64, len(parts))
	for i, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}
