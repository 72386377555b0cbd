package bucket

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/mambamq/mamba/internal/chunkid"
)

// Key prefixes: every object Mamba writes has a key under one of them.
const (
	// ChunkPrefix begins the key of every chunk.
	ChunkPrefix = "chunks/"
	// TopicPrefix begins the key of every topic config object.
	TopicPrefix = "topics/"
	// CheckpointPrefix begins the key of every metadata checkpoint.
	CheckpointPrefix = "checkpoints/"
)

const (
	checkpointSuffix = ".ckpt"
	topicSuffix      = ".json"
	// checkpointTimeDigits zero-pads the time so that keys sort by time.
	checkpointTimeDigits = 20
)

// ErrForeignKey is wrapped by errors about a key under one of Mamba's
// prefixes that Mamba did not make: it is not a chunk, checkpoint or topic
// config key.
var ErrForeignKey = errors.New("not a key of Mamba's bucket layout")

// ChunkKey is the key of the chunk with the given id (the text form of a
// chunkid.ID).
func ChunkKey(id string) string { return ChunkPrefix + id }

// chunkListStart is the key a listing of the chunks created at or after
// t starts after: ChunkPrefix and the smallest ULID of t's millisecond,
// with no node. Every chunk key of an older id sorts before it (ULID text
// sorts like its bytes, time first, and is of fixed length), and every
// other after it (it extends the ULID with "-node"). It is "" (list from
// the first key) for times at or before the Unix epoch.
func chunkListStart(t time.Time) string {
	ms := t.UnixMilli()
	if t.IsZero() || ms <= 0 {
		return ""
	}
	var u ulid.ULID
	if err := u.SetTime(min(uint64(ms), ulid.MaxTime())); err != nil {
		return ""
	}
	return ChunkPrefix + u.String()
}

// ParseChunkKey returns the id of a key made by ChunkKey.
func ParseChunkKey(key string) (chunkid.ID, error) {
	rest, ok := strings.CutPrefix(key, ChunkPrefix)
	if !ok {
		return chunkid.ID{}, fmt.Errorf("%w: chunk key %q lacks the prefix %s", ErrForeignKey, key, ChunkPrefix)
	}
	id, err := chunkid.Parse(rest)
	if err != nil {
		return chunkid.ID{}, fmt.Errorf("%w: %w", ErrForeignKey, err)
	}
	return id, nil
}

// CheckpointKey is the key of a checkpoint taken at t by node. Times
// before 1970 are clamped to 0.
func CheckpointKey(t time.Time, node string) string {
	return fmt.Sprintf("%s%0*d-%s%s", CheckpointPrefix, checkpointTimeDigits, max(t.UnixMilli(), 0), node, checkpointSuffix)
}

// ParseCheckpointKey returns the time and node of a key made by
// CheckpointKey.
func ParseCheckpointKey(key string) (time.Time, string, error) {
	rest, ok := strings.CutPrefix(key, CheckpointPrefix)
	if ok {
		rest, ok = strings.CutSuffix(rest, checkpointSuffix)
	}
	if !ok || len(rest) < checkpointTimeDigits+2 || rest[checkpointTimeDigits] != '-' {
		return time.Time{}, "", fmt.Errorf("%w: checkpoint key %q: want %s<20-digit unix ms>-<node>%s", ErrForeignKey, key, CheckpointPrefix, checkpointSuffix)
	}
	ms, err := strconv.ParseUint(rest[:checkpointTimeDigits], 10, 63)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: checkpoint key %q: bad time: %w", ErrForeignKey, key, err)
	}
	node := rest[checkpointTimeDigits+1:]
	if err := chunkid.ValidateNode(node); err != nil {
		return time.Time{}, "", fmt.Errorf("%w: checkpoint key %q: %w", ErrForeignKey, key, err)
	}
	return time.UnixMilli(int64(ms)), node, nil
}

// TopicConfigKey is the key of the config of incarnation id of the topic
// called name.
func TopicConfigKey(name, id string) string { return TopicPrefix + name + "/" + id + topicSuffix }

// ParseTopicConfigKey returns the topic name and incarnation id of a key
// made by TopicConfigKey.
func ParseTopicConfigKey(key string) (name, id string, err error) {
	rest, ok := strings.CutPrefix(key, TopicPrefix)
	name, file, found := strings.Cut(rest, "/")
	id, isJSON := strings.CutSuffix(file, topicSuffix)
	if !ok || !found || !isJSON || name == "" || id == "" || strings.Contains(id, "/") {
		return "", "", fmt.Errorf("%w: topic config key %q: want %s<name>/<id>%s", ErrForeignKey, key, TopicPrefix, topicSuffix)
	}
	return name, id, nil
}
