package chunk

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
)

// BatchSpec names the topic-partition a batch belongs to and how it is
// stored.
type BatchSpec struct {
	// Topic must satisfy ValidateTopic.
	Topic string
	// Partition must not be negative.
	Partition int32
	// IdempotencyKey is at most MaxIdempotencyKeyLen bytes; empty means
	// none.
	IdempotencyKey string
	// Codec is CodecNone or CodecZstd.
	Codec Codec
}

// Writer builds one chunk in memory. Add encodes and compresses each batch
// as it arrives, so the Writer holds only encoded bytes; Finish lays out
// the header and directory in front of them. When Reserve has left room
// for them, Finish writes them in place and the batches are never copied.
// A Writer is not safe for concurrent use.
type Writer struct {
	id     string
	infos  []BatchInfo // Offset is relative to the start of the data
	dirLen int         // directory bytes so far, chunk id included
	// buf holds pre bytes of room for the header and directory, then the
	// batches back to back: the data section is buf[pre:].
	buf []byte
	pre int
	// lent is set once Finish has returned part of buf in place: those
	// bytes are the caller's, so the Writer never writes buf[:len(buf)]
	// again (Add only appends after it; Reset drops buf).
	lent    bool
	scratch []byte // uncompressed payload, reused by every zstd batch
}

// NewWriter returns a Writer for a chunk named id, which must satisfy
// ValidateID.
func NewWriter(id string) (*Writer, error) {
	w := &Writer{}
	if err := w.Reset(id); err != nil {
		return nil, err
	}
	return w, nil
}

// Reset discards every batch and starts a new chunk named id, keeping the
// Writer's buffers for reuse. Slices returned by an earlier Finish stay
// valid. On error the Writer is unchanged.
func (w *Writer) Reset(id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	w.id = id
	w.infos = w.infos[:0]
	w.dirLen = 1 + len(id)
	if w.lent {
		w.buf, w.pre, w.lent = nil, 0, false
	}
	w.buf = w.buf[:w.pre]
	return nil
}

// EntrySize is the size of the directory entry of a batch of topic with
// idempotencyKey, for Reserve.
func EntrySize(topic, idempotencyKey string) int {
	return entryFixedSize + len(topic) + len(idempotencyKey)
}

// Reserve prepares the Writer for batches whose directory entries take
// dirBytes in all (the sum of their EntrySize) and whose encoding takes
// about dataBytes, so that Add rarely grows its buffer and Finish can put
// the header and directory in front of the batches without copying them.
// It is only a hint: more or larger batches still work, at the cost of
// copies.
func (w *Writer) Reserve(dirBytes, dataBytes int) {
	pre := HeaderSize + 1 + len(w.id) + max(dirBytes, 0)
	data := w.buf[w.pre:]
	if pre <= w.pre && !w.lent && cap(w.buf)-len(w.buf) >= dataBytes {
		return
	}
	pre = max(pre, w.pre)
	buf := make([]byte, pre+len(data), pre+len(data)+max(dataBytes, 0))
	copy(buf[pre:], data)
	w.buf, w.pre, w.lent = buf, pre, false
}

// Add encodes records as one batch of spec.Topic/spec.Partition and
// returns its index in the slice Finish returns. records must hold between
// 1 and MaxBatchRecords records with at most MaxBatchHeaders headers in
// all; their encoding, and the stored (compressed) payload, must be at most
// MaxBatchBytes; header names must be valid UTF-8. The Writer copies what
// it needs, so records may be reused once Add returns. On error nothing is
// added; errors for input that breaks these rules wrap ErrInvalid.
func (w *Writer) Add(spec BatchSpec, records []Record) (int, error) {
	if err := ValidateTopic(spec.Topic); err != nil {
		return 0, err
	}
	switch {
	case spec.Partition < 0:
		return 0, invalid("partition %d is negative", spec.Partition)
	case len(spec.IdempotencyKey) > MaxIdempotencyKeyLen:
		return 0, invalid("idempotency key is %d bytes, over limit %d", len(spec.IdempotencyKey), MaxIdempotencyKeyLen)
	case !spec.Codec.known():
		return 0, invalid("unknown codec %d", uint8(spec.Codec))
	case len(records) == 0:
		return 0, invalid("batch has no records")
	case len(records) > MaxBatchRecords:
		return 0, invalid("batch has %d records, over limit %d", len(records), MaxBatchRecords)
	case len(w.infos) >= MaxBatches:
		return 0, invalid("chunk already holds %d batches, the limit", MaxBatches)
	}
	rawLen, lo, hi, err := recordsSize(records)
	if err != nil {
		return 0, err
	}

	if w.buf == nil {
		w.buf = make([]byte, 0, BatchHeaderSize+rawLen)
	}
	start := len(w.buf)
	w.buf = slices.Grow(w.buf, BatchHeaderSize+rawLen)
	w.buf = w.buf[:start+BatchHeaderSize]
	switch spec.Codec {
	case CodecNone:
		w.buf = appendRecords(w.buf, records)
	case CodecZstd:
		w.scratch = appendRecords(w.scratch[:0], records)
		if w.buf, err = compressZstd(w.buf, w.scratch); err != nil {
			w.buf = w.buf[:start]
			return 0, err
		}
	}
	storedLen := len(w.buf) - start - BatchHeaderSize
	if storedLen > MaxBatchBytes {
		w.buf = w.buf[:start]
		return 0, invalid("compressed batch is %d bytes, over limit %d", storedLen, MaxBatchBytes)
	}
	if spec.Codec == CodecZstd && rawLen > storedLen*maxZstdRatio {
		// A standard zstd encoder cannot produce this; refuse rather
		// than write a batch that no decoder accepts.
		w.buf = w.buf[:start]
		return 0, invalid("zstd payload of %d bytes expands to %d, beyond the format's ratio limit", storedLen, rawLen)
	}
	crc := putBatchHeader(w.buf[start:], spec.Codec, len(records), rawLen, storedLen)

	w.infos = append(w.infos, BatchInfo{
		Topic:          spec.Topic,
		Partition:      spec.Partition,
		Records:        len(records),
		IdempotencyKey: spec.IdempotencyKey,
		Codec:          spec.Codec,
		Offset:         int64(start - w.pre),
		Length:         int64(len(w.buf) - start),
		CRC:            crc,
		MinTimestamp:   lo,
		MaxTimestamp:   hi,
	})
	w.dirLen += entryFixedSize + len(spec.Topic) + len(spec.IdempotencyKey)
	return len(w.infos) - 1, nil
}

// Batches reports how many batches have been added since the last Reset.
func (w *Writer) Batches() int { return len(w.infos) }

// Len reports the size in bytes that Finish would return now.
func (w *Writer) Len() int { return HeaderSize + w.dirLen + len(w.buf) - w.pre }

// Finish returns the encoded chunk and its directory, with offsets counted
// from the start of the chunk and batches in the order they were added. It
// needs at least one batch. Finish does not change what the Writer holds:
// it may add more batches and Finish again, or Reset. The returned slices
// are the caller's: the chunk may share memory with the Writer's buffer
// (when Reserve left room for the header and directory), but the Writer
// never writes those bytes again.
func (w *Writer) Finish() ([]byte, []BatchInfo, error) {
	if len(w.infos) == 0 {
		return nil, nil, invalid("chunk %s has no batches", w.id)
	}
	head := HeaderSize + w.dirLen
	data := w.buf[w.pre:]
	infos := make([]BatchInfo, len(w.infos))
	for i, info := range w.infos {
		info.Offset += int64(head)
		infos[i] = info
	}

	var out []byte
	if !w.lent && head <= w.pre {
		// The header and directory go right in front of the data.
		out = w.buf[w.pre-head : len(w.buf) : len(w.buf)]
		w.lent = true
	} else {
		out = make([]byte, head+len(data))
		copy(out[head:], data)
	}
	dir := out[HeaderSize:HeaderSize]
	dir = append(dir, byte(len(w.id)))
	dir = append(dir, w.id...)
	for i := range infos {
		dir = appendEntry(dir, &infos[i])
	}
	if len(dir) != w.dirLen {
		panic(fmt.Sprintf("chunk: directory is %d bytes, counted %d", len(dir), w.dirLen))
	}

	h := out[:HeaderSize]
	copy(h, magic)
	h[4] = version
	h[5] = 0
	h[6], h[7] = 0, 0
	binary.BigEndian.PutUint32(h[8:], uint32(len(dir)))
	binary.BigEndian.PutUint32(h[12:], uint32(len(infos)))
	binary.BigEndian.PutUint64(h[16:], uint64(len(data)))
	binary.BigEndian.PutUint32(h[24:], crc32.Checksum(dir, castagnoli))
	binary.BigEndian.PutUint32(h[28:], crc32.Checksum(h[:28], castagnoli))
	return out, infos, nil
}

func appendEntry(dst []byte, info *BatchInfo) []byte {
	dst = append(dst, byte(len(info.Topic)))
	dst = append(dst, info.Topic...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(info.Partition))
	dst = binary.BigEndian.AppendUint32(dst, uint32(info.Records))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(info.IdempotencyKey)))
	dst = append(dst, info.IdempotencyKey...)
	dst = append(dst, byte(info.Codec))
	dst = binary.BigEndian.AppendUint64(dst, uint64(info.Offset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(info.Length))
	dst = binary.BigEndian.AppendUint32(dst, info.CRC)
	dst = binary.BigEndian.AppendUint64(dst, uint64(info.MinTimestamp))
	dst = binary.BigEndian.AppendUint64(dst, uint64(info.MaxTimestamp))
	return dst
}
