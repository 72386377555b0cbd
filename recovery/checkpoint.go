package recovery

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mambamq/mamba/metadata"
)

// Checkpoint format constants; see the package documentation.
const (
	// CheckpointHeaderSize is the size of the fixed checkpoint header.
	CheckpointHeaderSize = 32
	// MaxPayloadBytes bounds the compressed payload of a checkpoint.
	MaxPayloadBytes = 4 << 30
	// MaxSnapshotBytes bounds the decompressed snapshot encoding.
	MaxSnapshotBytes = 16 << 30

	checkpointMagic = "MMCP"
	// checkpointVersion is the version written; version 1 (no retention
	// bytes) is still read.
	checkpointVersion = 2
	// maxZstdRatio is the most a zstd payload can expand: a block yields
	// at most 128 KiB and costs at least 4 bytes.
	maxZstdRatio = 32768
)

// ErrCorruptCheckpoint is wrapped by every error that decoding returns for
// bytes that are not a valid checkpoint.
var ErrCorruptCheckpoint = errors.New("corrupt checkpoint")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorruptCheckpoint, fmt.Sprintf(format, args...))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		// The payload CRC covers the compressed bytes and the header
		// names the decompressed length, so the frame checksum would add
		// nothing.
		return zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
	})
	zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		// DecodeAll writes into a buffer of exactly the declared length
		// and never grows it.
		return zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(MaxSnapshotBytes),
			zstd.WithDecodeAllCapLimit(true))
	})
)

// EncodeCheckpoint encodes snap as a checkpoint. snap must pass
// Validate.
func EncodeCheckpoint(snap *metadata.Snapshot) ([]byte, error) {
	if err := snap.Validate(); err != nil {
		return nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	raw := appendSnapshot(nil, snap)
	if len(raw) > MaxSnapshotBytes {
		return nil, fmt.Errorf("encode checkpoint: snapshot is %d bytes, over the limit of %d", len(raw), MaxSnapshotBytes)
	}
	enc, err := zstdEncoder()
	if err != nil {
		return nil, fmt.Errorf("create zstd encoder: %w", err)
	}
	out := make([]byte, CheckpointHeaderSize, CheckpointHeaderSize+len(raw)/4+64)
	out = enc.EncodeAll(raw, out)
	payload := out[CheckpointHeaderSize:]
	if len(payload) > MaxPayloadBytes {
		return nil, fmt.Errorf("encode checkpoint: payload is %d bytes, over the limit of %d", len(payload), MaxPayloadBytes)
	}
	h := out[:CheckpointHeaderSize]
	copy(h, checkpointMagic)
	h[4] = checkpointVersion
	h[5] = 0
	h[6], h[7] = 0, 0
	binary.BigEndian.PutUint32(h[8:], crc32.Checksum(payload, castagnoli))
	binary.BigEndian.PutUint64(h[12:], uint64(len(payload)))
	binary.BigEndian.PutUint64(h[20:], uint64(len(raw)))
	binary.BigEndian.PutUint32(h[28:], crc32.Checksum(h[:28], castagnoli))
	return out, nil
}

// DecodeCheckpoint decodes and checks a checkpoint. Errors for bad input
// wrap ErrCorruptCheckpoint.
func DecodeCheckpoint(b []byte) (*metadata.Snapshot, error) {
	snap, err := decodeCheckpoint(b)
	if err != nil {
		return nil, fmt.Errorf("decode checkpoint: %w", err)
	}
	return snap, nil
}

func decodeCheckpoint(b []byte) (*metadata.Snapshot, error) {
	if len(b) < CheckpointHeaderSize {
		return nil, corrupt("%d bytes, shorter than the %d-byte header", len(b), CheckpointHeaderSize)
	}
	h := b[:CheckpointHeaderSize]
	if string(h[:4]) != checkpointMagic {
		return nil, corrupt("bad magic %q", h[:4])
	}
	version := h[4]
	if version != 1 && version != checkpointVersion {
		return nil, corrupt("unknown version %d", h[4])
	}
	if crc, want := crc32.Checksum(h[:28], castagnoli), binary.BigEndian.Uint32(h[28:]); crc != want {
		return nil, corrupt("header crc32c %08x does not match computed %08x", want, crc)
	}
	if h[5] != 0 {
		return nil, corrupt("unknown flags %#02x", h[5])
	}
	if h[6] != 0 || h[7] != 0 {
		return nil, corrupt("nonzero reserved bytes")
	}
	payloadLen := binary.BigEndian.Uint64(h[12:])
	rawLen := binary.BigEndian.Uint64(h[20:])
	payload := b[CheckpointHeaderSize:]
	switch {
	case payloadLen == 0 || payloadLen > MaxPayloadBytes:
		return nil, corrupt("payload length %d not in [1, %d]", payloadLen, MaxPayloadBytes)
	case payloadLen != uint64(len(payload)):
		return nil, corrupt("payload is %d bytes, header says %d", len(payload), payloadLen)
	case rawLen == 0 || rawLen > MaxSnapshotBytes || rawLen > payloadLen*maxZstdRatio:
		return nil, corrupt("snapshot length %d impossible for a %d-byte payload", rawLen, payloadLen)
	}
	if crc, want := crc32.Checksum(payload, castagnoli), binary.BigEndian.Uint32(h[8:]); crc != want {
		return nil, corrupt("payload crc32c %08x does not match computed %08x", want, crc)
	}
	dec, err := zstdDecoder()
	if err != nil {
		return nil, fmt.Errorf("create zstd decoder: %w", err)
	}
	raw, err := dec.DecodeAll(payload, make([]byte, 0, rawLen))
	if err != nil {
		return nil, fmt.Errorf("%w: decompress payload: %w", ErrCorruptCheckpoint, err)
	}
	if uint64(len(raw)) != rawLen {
		return nil, corrupt("payload decompressed to %d bytes, header says %d", len(raw), rawLen)
	}
	return decodeSnapshot(raw, version)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTTL(b []byte, ttl time.Duration) []byte {
	return binary.AppendUvarint(b, uint64(max(ttl.Milliseconds(), 0)))
}

// appendSnapshot appends the snapshot encoding of the package
// documentation.
func appendSnapshot(b []byte, snap *metadata.Snapshot) []byte {
	b = binary.AppendVarint(b, snap.Time.UnixMilli())
	b = binary.AppendUvarint(b, uint64(len(snap.Topics)))
	for _, ts := range snap.Topics {
		t := ts.Topic
		b = appendString(b, t.Name)
		b = appendString(b, t.ID)
		b = binary.AppendUvarint(b, uint64(t.Partitions))
		b = binary.AppendVarint(b, t.RetentionMS)
		b = binary.AppendVarint(b, t.CreatedMS)
		b = binary.AppendVarint(b, t.RetentionBytes)
		for _, ps := range ts.Partitions {
			b = binary.AppendVarint(b, ps.LogStartOffset)
			b = binary.AppendVarint(b, ps.HighWatermark)
			b = binary.AppendUvarint(b, uint64(len(ps.Index)))
			for _, e := range ps.Index {
				b = binary.AppendVarint(b, e.BaseOffset)
				b = binary.AppendUvarint(b, uint64(e.Records))
				b = appendString(b, e.ChunkID)
				b = binary.AppendVarint(b, e.Offset)
				b = binary.AppendVarint(b, e.Length)
			}
		}
		b = binary.AppendUvarint(b, uint64(len(ts.Commits)))
		for _, m := range ts.Commits {
			b = appendString(b, m.ChunkID)
			b = appendString(b, m.Result)
			b = appendTTL(b, m.TTL)
		}
		b = binary.AppendUvarint(b, uint64(len(ts.Idempotency)))
		for _, r := range ts.Idempotency {
			b = appendString(b, r.TopicID)
			b = appendString(b, r.Key)
			b = appendString(b, r.Value)
			b = appendTTL(b, r.TTL)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(snap.Groups)))
	for _, g := range snap.Groups {
		b = appendString(b, g.Name)
		b = binary.AppendVarint(b, g.Lease)
		b = binary.AppendUvarint(b, uint64(len(g.Offsets)))
		for _, o := range g.Offsets {
			b = appendString(b, o.Topic)
			b = binary.AppendUvarint(b, uint64(o.Partition))
			b = binary.AppendVarint(b, o.Offset)
		}
	}
	return b
}

// reader decodes varints and strings from b. The first bad read sets err,
// after which every read returns zero, so a caller checks err once after
// a group of reads.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = corrupt(format, args...)
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad or truncated uvarint with %d bytes left", len(r.b))
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad or truncated varint with %d bytes left", len(r.b))
		return 0
	}
	r.b = r.b[n:]
	return v
}

// int reads a uvarint that must lie in [lo, hi].
func (r *reader) int(what string, lo, hi uint64) int {
	v := r.uvarint()
	if r.err == nil && (v < lo || v > hi) {
		r.fail("%s %d not in [%d, %d]", what, v, lo, hi)
		return 0
	}
	return int(v)
}

// count reads a list length: at most the bytes left after it, since every
// element takes at least one byte.
func (r *reader) count(what string) int {
	v := r.uvarint()
	if r.err == nil && v > uint64(len(r.b)) {
		r.fail("%s count %d exceeds the %d bytes left", what, v, len(r.b))
		return 0
	}
	return int(v)
}

func (r *reader) str() string {
	n := r.count("string length")
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) ttl() time.Duration {
	ms := r.uvarint()
	if r.err == nil && ms > uint64(time.Duration(1<<62).Milliseconds()) {
		r.fail("ttl %d ms out of range", ms)
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// decodeSnapshot decodes the snapshot encoding of the package
// documentation. Every count is bounded by the bytes left, so what it
// allocates is bounded by a small multiple of len(raw).
func decodeSnapshot(raw []byte, version byte) (*metadata.Snapshot, error) {
	r := &reader{b: raw}
	snap := &metadata.Snapshot{Time: time.UnixMilli(r.varint())}
	if n := r.count("topic"); n > 0 {
		snap.Topics = make([]metadata.TopicSnapshot, n)
	}
	for i := range snap.Topics {
		ts := &snap.Topics[i]
		ts.Topic.Name = r.str()
		ts.Topic.ID = r.str()
		ts.Topic.Partitions = r.int("partition count", 1, metadata.MaxPartitions)
		if r.err == nil && ts.Topic.Partitions > len(r.b) {
			r.fail("partition count %d exceeds the %d bytes left", ts.Topic.Partitions, len(r.b))
		}
		ts.Topic.RetentionMS = r.varint()
		ts.Topic.CreatedMS = r.varint()
		if version >= 2 {
			ts.Topic.RetentionBytes = r.varint()
		}
		if r.err != nil {
			return nil, fmt.Errorf("topic %d: %w", i, r.err)
		}
		ts.Partitions = make([]metadata.PartitionSnapshot, ts.Topic.Partitions)
		for p := range ts.Partitions {
			ps := &ts.Partitions[p]
			ps.Partition = int32(p)
			ps.LogStartOffset = r.varint()
			ps.HighWatermark = r.varint()
			if n := r.count("index entry"); n > 0 {
				ps.Index = make([]metadata.IndexEntry, n)
			}
			for j := range ps.Index {
				e := &ps.Index[j]
				e.BaseOffset = r.varint()
				e.Records = r.int("record count", 1, 1<<31-1)
				e.ChunkID = r.str()
				e.Offset = r.varint()
				e.Length = r.varint()
			}
			if r.err != nil {
				return nil, fmt.Errorf("topic %s partition %d: %w", ts.Topic.Name, p, r.err)
			}
		}
		if n := r.count("commit marker"); n > 0 {
			ts.Commits = make([]metadata.CommitMarker, n)
		}
		for j := range ts.Commits {
			m := &ts.Commits[j]
			m.ChunkID = r.str()
			m.Result = r.str()
			m.TTL = r.ttl()
		}
		if n := r.count("idempotency record"); n > 0 {
			ts.Idempotency = make([]metadata.IdempotencyRecord, n)
		}
		for j := range ts.Idempotency {
			rec := &ts.Idempotency[j]
			rec.TopicID = r.str()
			rec.Key = r.str()
			rec.Value = r.str()
			rec.TTL = r.ttl()
		}
		if r.err != nil {
			return nil, fmt.Errorf("topic %s: %w", ts.Topic.Name, r.err)
		}
	}
	if n := r.count("group"); n > 0 {
		snap.Groups = make([]metadata.GroupSnapshot, n)
	}
	for i := range snap.Groups {
		g := &snap.Groups[i]
		g.Name = r.str()
		g.Lease = r.varint()
		if n := r.count("group offset"); n > 0 {
			g.Offsets = make([]metadata.GroupOffset, n)
		}
		for j := range g.Offsets {
			o := &g.Offsets[j]
			o.Topic = r.str()
			o.Partition = int32(r.int("partition", 0, 1<<31-1))
			o.Offset = r.varint()
		}
		if r.err != nil {
			return nil, fmt.Errorf("group %d: %w", i, r.err)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, corrupt("%d bytes after the last group", len(r.b))
	}
	if err := snap.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptCheckpoint, err)
	}
	return snap, nil
}
