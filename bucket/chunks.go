package bucket

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/objectstore"
)

// DirectoryReadSize is the first ranged read of ReadChunkDirectory: the
// chunk header and, for most chunks, the whole batch directory.
const DirectoryReadSize = 8 << 10

// ReadChunkDirectory reads the batch directory of the chunk with the given
// id: one ranged GET of DirectoryReadSize bytes, and a second one when the
// directory is longer. The directory's length is bounded by the chunk
// format (chunk.ReadHeader checks it against the batch count) before it
// sizes the second read. A chunk that does not decode, or names itself
// with another id, fails with chunk.ErrCorrupt; a missing one with
// objectstore.ErrNotExist.
func (b *Bucket) ReadChunkDirectory(ctx context.Context, id chunkid.ID) (ChunkDirectory, error) {
	h, batches, err := b.readChunkDirectory(ctx, id)
	if err != nil {
		return ChunkDirectory{}, err
	}
	return ChunkDirectory{Size: h.Size(), Batches: batches}, nil
}

// ChunkDirectory is what a chunk's header and directory say about it.
type ChunkDirectory struct {
	// Size is the chunk's size in bytes, as its header states it.
	Size int64
	// Batches describes every batch, in the chunk's order.
	Batches []chunk.BatchInfo
}

func (b *Bucket) readChunkDirectory(ctx context.Context, id chunkid.ID) (chunk.ChunkHeader, []chunk.BatchInfo, error) {
	var h chunk.ChunkHeader
	data, err := b.ReadChunkRange(ctx, id.String(), 0, DirectoryReadSize)
	if err != nil {
		return h, nil, err
	}
	h, err = chunk.ReadHeader(data)
	if err != nil {
		return h, nil, err
	}
	end := chunk.HeaderSize + h.DirectoryLength
	if int64(len(data)) < end {
		more, err := b.ReadChunkRange(ctx, id.String(), int64(len(data)), end-int64(len(data)))
		if err != nil {
			return h, nil, err
		}
		data = append(data, more...)
	}
	if int64(len(data)) < end {
		return h, nil, fmt.Errorf("%w: chunk is %d bytes, its directory ends at %d", chunk.ErrCorrupt, len(data), end)
	}
	cid, batches, err := chunk.DecodeDirectory(h, data[chunk.HeaderSize:end])
	if err != nil {
		return h, nil, err
	}
	if cid != id.String() {
		return h, nil, fmt.Errorf("%w: chunk names itself %s", chunk.ErrCorrupt, cid)
	}
	return h, batches, nil
}

// DeleteChunk deletes the chunk with the given id (the text form of a
// chunkid.ID). Only garbage collection deletes chunks, and only once no
// index entry names them.
func (b *Bucket) DeleteChunk(ctx context.Context, id string) error {
	return b.store.Delete(ctx, ChunkKey(id))
}

// ChunksAfter yields, in key order (creation order), the objects under
// ChunkPrefix whose keys sort after the key after ("" yields from the
// first). Objects that are not chunks yield an error wrapping
// ErrForeignKey (with Chunk.Key set) and the listing goes on; any other
// error ends it. Stores that implement objectstore.ListerAfter (S3, MinIO)
// start the listing after the key, so a caller resuming from a cursor does
// not list the keys before it; others list them and pass over them.
func (b *Bucket) ChunksAfter(ctx context.Context, after string) iter.Seq2[Chunk, error] {
	return func(yield func(Chunk, error) bool) {
		for obj, err := range objectstore.ListAfter(ctx, b.store, ChunkPrefix, after) {
			if err != nil {
				yield(Chunk{}, fmt.Errorf("list chunks: %w", err))
				return
			}
			if after != "" && strings.Compare(obj.Key, after) <= 0 {
				continue
			}
			id, err := ParseChunkKey(obj.Key)
			if err != nil {
				if !yield(Chunk{Key: obj.Key}, err) {
					return
				}
				continue
			}
			if !yield(Chunk{Key: obj.Key, ID: id, Size: obj.Size}, nil) {
				return
			}
		}
	}
}
