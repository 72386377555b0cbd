package bucket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/objectstore"
)

// Bucket is Mamba's typed view of a store: chunks, topic configs and
// checkpoints under the keys this package defines. It adds no state and is
// safe for concurrent use. Give it a store wrapped by Instrument so that its
// calls are measured.
type Bucket struct {
	store objectstore.Store
}

// New returns the bucket kept in store.
func New(store objectstore.Store) *Bucket { return &Bucket{store: store} }

// Store returns the store the bucket is kept in, for calls that need no
// key of this package's (a readiness probe) or that name a key it made
// (CheckpointKey).
func (b *Bucket) Store() objectstore.Store { return b.store }

// probeKey is the key Ping asks about. No object need exist there.
const probeKey = "readyz"

// Ping reports whether the store answers: a Stat of a key that need not
// exist, so a missing object is an answer too.
func (b *Bucket) Ping(ctx context.Context) error {
	if _, err := b.store.Stat(ctx, probeKey); err != nil && !errors.Is(err, objectstore.ErrNotExist) {
		return err
	}
	return nil
}

// Chunk is one chunk object as a listing finds it.
type Chunk struct {
	Key  string
	ID   chunkid.ID
	Size int64
}

// ChunkListing configures Chunks and counts what it passed over.
type ChunkListing struct {
	// Since is the earliest chunk time yielded; zero yields every chunk.
	Since time.Time
	// Listed counts every object under ChunkPrefix the listing has read,
	// foreign objects included. A listing with Since starts after the key
	// of the first chunk id Since can have (chunkListStart) and does not
	// read the keys before it. Chunks sets it as it goes.
	Listed int
}

// ListChunks yields, in id order (creation order), every chunk whose id
// time is at or after since. An object under ChunkPrefix that is not a
// chunk yields an error wrapping ErrForeignKey and the listing goes on; any
// other error ends it. With a non-zero since, the listing starts after the
// key below every chunk of that time or later (objectstore.ListAfter: S3
// and MinIO then do not list the older keys; foreign keys among those are
// not seen).
func (b *Bucket) ListChunks(ctx context.Context, since time.Time) iter.Seq2[Chunk, error] {
	return b.Chunks(ctx, &ChunkListing{Since: since})
}

// Chunks is ListChunks that also counts, in l, the objects it passed over.
func (b *Bucket) Chunks(ctx context.Context, l *ChunkListing) iter.Seq2[Chunk, error] {
	return func(yield func(Chunk, error) bool) {
		for obj, err := range objectstore.ListAfter(ctx, b.store, ChunkPrefix, chunkListStart(l.Since)) {
			if err != nil {
				yield(Chunk{}, fmt.Errorf("list chunks: %w", err))
				return
			}
			l.Listed++
			id, err := ParseChunkKey(obj.Key)
			if err != nil {
				if !yield(Chunk{Key: obj.Key}, err) {
					return
				}
				continue
			}
			// Keys list in id order, which is time order, and the listing
			// starts after every older one; this only restates it.
			if id.Time().Before(l.Since) {
				continue
			}
			if !yield(Chunk{Key: obj.Key, ID: id, Size: obj.Size}, nil) {
				return
			}
		}
	}
}

// PutChunk writes a chunk's bytes under its id.
func (b *Bucket) PutChunk(ctx context.Context, id chunkid.ID, data []byte) error {
	return b.store.Put(ctx, ChunkKey(id.String()), data)
}

// ReadChunkRange reads length bytes at off of the chunk with the given id
// (the text form of a chunkid.ID).
func (b *Bucket) ReadChunkRange(ctx context.Context, id string, off, length int64) ([]byte, error) {
	return b.store.GetRange(ctx, ChunkKey(id), off, length)
}

// Checkpoint is one checkpoint object as a listing finds it.
type Checkpoint struct {
	Key  string
	Time time.Time // the snapshot's time
	Node string    // the writer
}

// ListCheckpoints returns every checkpoint, oldest first. Objects under
// CheckpointPrefix whose keys are not checkpoint keys are left out.
func (b *Bucket) ListCheckpoints(ctx context.Context) ([]Checkpoint, error) {
	var cps []Checkpoint
	for obj, err := range b.store.List(ctx, CheckpointPrefix) {
		if err != nil {
			return nil, fmt.Errorf("list checkpoints: %w", err)
		}
		if t, node, err := ParseCheckpointKey(obj.Key); err == nil {
			cps = append(cps, Checkpoint{Key: obj.Key, Time: t, Node: node})
		}
	}
	// List sorts already; sorting again costs little and states the
	// invariant callers rely on.
	slices.SortFunc(cps, func(a, b Checkpoint) int { return strings.Compare(a.Key, b.Key) })
	return cps, nil
}

// PutCheckpoint writes an encoded checkpoint taken at t by node and
// returns its key.
func (b *Bucket) PutCheckpoint(ctx context.Context, t time.Time, node string, data []byte) (string, error) {
	key := CheckpointKey(t, node)
	if err := b.store.Put(ctx, key, data); err != nil {
		return key, fmt.Errorf("write checkpoint %s: %w", key, err)
	}
	return key, nil
}

// ReadCheckpoint reads the encoded checkpoint a listing found.
func (b *Bucket) ReadCheckpoint(ctx context.Context, cp Checkpoint) ([]byte, error) {
	return b.store.Get(ctx, cp.Key)
}

// DeleteCheckpoint deletes a checkpoint a listing found.
func (b *Bucket) DeleteCheckpoint(ctx context.Context, cp Checkpoint) error {
	return b.store.Delete(ctx, cp.Key)
}

// TopicConfig is a topic incarnation's configuration as it is stored in
// the bucket at TopicConfigKey(Name, ID). Its fields are those of
// metadata.Topic, so either converts to the other.
type TopicConfig struct {
	Name           string `json:"name"`
	ID             string `json:"id"`
	Partitions     int    `json:"partitions"`
	RetentionMS    int64  `json:"retention_ms"`
	RetentionBytes int64  `json:"retention_bytes,omitempty"`
	CreatedMS      int64  `json:"created_ms"`
}

// PutTopicConfig writes cfg at its key and returns the key. A changed
// retention overwrites the incarnation's object (PUT is atomic), so the
// bucket always holds the topic's current configuration.
func (b *Bucket) PutTopicConfig(ctx context.Context, cfg TopicConfig) (string, error) {
	body, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encode topic config: %w", err)
	}
	key := TopicConfigKey(cfg.Name, cfg.ID)
	return key, b.store.Put(ctx, key, body)
}

// DeleteTopicConfig deletes the config of incarnation id of topic name.
func (b *Bucket) DeleteTopicConfig(ctx context.Context, name, id string) error {
	return b.store.Delete(ctx, TopicConfigKey(name, id))
}

// ListTopicConfigs yields the key of every object under TopicPrefix, in
// key order, for ReadTopicConfig; after an error the sequence ends.
func (b *Bucket) ListTopicConfigs(ctx context.Context) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for obj, err := range b.store.List(ctx, TopicPrefix) {
			if err != nil {
				yield("", fmt.Errorf("list topic configs: %w", err))
				return
			}
			if !yield(obj.Key, nil) {
				return
			}
		}
	}
}

// ErrBadTopicConfig is wrapped by errors about a topic config object that
// does not decode or names another topic than its key.
var ErrBadTopicConfig = errors.New("bad topic config")

// ReadTopicConfig reads and decodes the topic config at key. A key that is
// not a topic config key fails with ErrForeignKey before any read; a
// config that does not decode, or names another topic or incarnation than
// its key, fails with ErrBadTopicConfig.
func (b *Bucket) ReadTopicConfig(ctx context.Context, key string) (TopicConfig, error) {
	name, id, err := ParseTopicConfigKey(key)
	if err != nil {
		return TopicConfig{}, err
	}
	data, err := b.store.Get(ctx, key)
	if err != nil {
		return TopicConfig{}, err
	}
	var cfg TopicConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return TopicConfig{}, fmt.Errorf("%w: decode: %w", ErrBadTopicConfig, err)
	}
	if cfg.Name != name || cfg.ID != id {
		return TopicConfig{}, fmt.Errorf("%w: config names topic %s incarnation %s", ErrBadTopicConfig, cfg.Name, cfg.ID)
	}
	return cfg, nil
}
