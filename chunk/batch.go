package chunk

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// batchHeader is the decoded form of the BatchHeaderSize bytes that start
// every batch. Once parseBatch has returned it, its fields are within the
// format's limits and consistent with each other and with the batch length.
type batchHeader struct {
	codec     Codec
	records   int
	rawLen    int // uncompressed payload length
	storedLen int
	crc       uint32
}

// putBatchHeader writes a batch header with its CRC into b, which holds the
// header followed by exactly storedLen bytes of stored payload.
func putBatchHeader(b []byte, codec Codec, records, rawLen, storedLen int) uint32 {
	b[0] = batchVersion
	b[1] = byte(codec)
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint32(b[4:], uint32(records))
	binary.BigEndian.PutUint32(b[8:], uint32(rawLen))
	binary.BigEndian.PutUint32(b[12:], uint32(storedLen))
	crc := batchCRC(b[:16], b[BatchHeaderSize:])
	binary.BigEndian.PutUint32(b[16:], crc)
	return crc
}

func batchCRC(head, stored []byte) uint32 {
	return crc32.Update(crc32.Checksum(head, castagnoli), castagnoli, stored)
}

// parseBatch checks the header and, with verify, the CRC of b, which must
// be exactly one batch, and returns the header and the stored payload. It
// does not decompress or decode records.
func parseBatch(b []byte, verify bool) (batchHeader, []byte, error) {
	var h batchHeader
	if len(b) < BatchHeaderSize {
		return h, nil, corrupt("batch is %d bytes, shorter than its %d-byte header", len(b), BatchHeaderSize)
	}
	if b[0] != batchVersion {
		return h, nil, corrupt("unknown batch version %d", b[0])
	}
	h.codec = Codec(b[1])
	if !h.codec.known() {
		return h, nil, corrupt("unknown codec %d", b[1])
	}
	if b[2] != 0 || b[3] != 0 {
		return h, nil, corrupt("nonzero reserved bytes in batch header")
	}
	records := binary.BigEndian.Uint32(b[4:])
	rawLen := binary.BigEndian.Uint32(b[8:])
	storedLen := binary.BigEndian.Uint32(b[12:])
	h.crc = binary.BigEndian.Uint32(b[16:])
	switch {
	case records == 0 || records > MaxBatchRecords:
		return h, nil, corrupt("batch record count %d not in [1, %d]", records, MaxBatchRecords)
	case rawLen > MaxBatchBytes:
		return h, nil, corrupt("batch payload length %d over limit %d", rawLen, MaxBatchBytes)
	case uint64(records)*minRecordSize > uint64(rawLen):
		return h, nil, corrupt("%d records cannot fit in %d payload bytes", records, rawLen)
	case storedLen > MaxBatchBytes:
		return h, nil, corrupt("batch stored length %d over limit %d", storedLen, MaxBatchBytes)
	case int64(storedLen) != int64(len(b))-BatchHeaderSize:
		return h, nil, corrupt("batch stored length %d does not match batch length %d", storedLen, len(b))
	case h.codec == CodecNone && rawLen != storedLen:
		return h, nil, corrupt("uncompressed batch has payload length %d and stored length %d", rawLen, storedLen)
	case h.codec == CodecZstd && uint64(rawLen) > uint64(storedLen)*maxZstdRatio:
		return h, nil, corrupt("%d zstd bytes cannot decompress to %d bytes", storedLen, rawLen)
	}
	stored := b[BatchHeaderSize:]
	if verify {
		if crc := batchCRC(b[:16], stored); crc != h.crc {
			return h, nil, corrupt("batch crc32c %08x does not match computed %08x", h.crc, crc)
		}
	}
	h.records, h.rawLen, h.storedLen = int(records), int(rawLen), int(storedLen)
	return h, stored, nil
}

// DecodeBatch decodes one batch from b, which must be exactly the batch's
// byte range [Offset, Offset+Length) of a chunk and nothing more. It checks
// the batch header and CRC, decompresses the payload and decodes every
// record. The records alias b, or the decompressed payload for CodecZstd.
//
// DecodeBatch does not know the directory entry of the batch: use
// BatchInfo.Decode to also check that the batch matches it. Every error for
// bad input wraps ErrCorrupt.
func DecodeBatch(b []byte) (*Batch, error) {
	batch, err := decodeBatch(b, true)
	if err != nil {
		return nil, fmt.Errorf("decode batch: %w", err)
	}
	return batch, nil
}

// CheckBatch checks that b is exactly one batch with a valid header and
// CRC, without decompressing or decoding its records. Every error wraps
// ErrCorrupt.
func CheckBatch(b []byte) error {
	if _, _, err := parseBatch(b, true); err != nil {
		return fmt.Errorf("check batch: %w", err)
	}
	return nil
}

// DecodeCheckedBatch decodes a batch that CheckBatch has accepted, or that
// a Writer built in this process, as DecodeBatch does but without
// computing its CRC again: for batches kept in memory and decoded many
// times, such as a node's cache. Every length is still checked, so no
// input makes it panic or read out of bounds, and errors wrap ErrCorrupt;
// but bytes changed since the check go unnoticed.
func DecodeCheckedBatch(b []byte) (*Batch, error) {
	batch, err := decodeBatch(b, false)
	if err != nil {
		return nil, fmt.Errorf("decode batch: %w", err)
	}
	return batch, nil
}

func decodeBatch(b []byte, verify bool) (*Batch, error) {
	h, payload, err := parseBatch(b, verify)
	if err != nil {
		return nil, err
	}
	if h.codec == CodecZstd {
		if payload, err = decompressZstd(payload, h.rawLen); err != nil {
			return nil, err
		}
	}
	records, err := decodeRecords(payload, h.records)
	if err != nil {
		return nil, err
	}
	return &Batch{Codec: h.codec, Records: records}, nil
}

// Decode decodes the batch that info describes from b, its byte range in
// the chunk, as DecodeBatch does, and also checks that the batch agrees with
// info: length, CRC, codec, record count and timestamp range. A mismatch
// wraps ErrCorrupt.
func (info BatchInfo) Decode(b []byte) (*Batch, error) {
	batch, err := info.decode(b)
	if err != nil {
		return nil, fmt.Errorf("decode batch of %s/%d at offset %d: %w", info.Topic, info.Partition, info.Offset, err)
	}
	return batch, nil
}

func (info BatchInfo) decode(b []byte) (*Batch, error) {
	if int64(len(b)) != info.Length {
		return nil, corrupt("batch is %d bytes, directory says %d", len(b), info.Length)
	}
	if len(b) >= BatchHeaderSize {
		if crc := binary.BigEndian.Uint32(b[16:]); crc != info.CRC {
			return nil, corrupt("batch crc32c %08x does not match directory's %08x", crc, info.CRC)
		}
	}
	batch, err := decodeBatch(b, true)
	if err != nil {
		return nil, err
	}
	if batch.Codec != info.Codec {
		return nil, corrupt("batch codec %s does not match directory's %s", batch.Codec, info.Codec)
	}
	if len(batch.Records) != info.Records {
		return nil, corrupt("batch has %d records, directory says %d", len(batch.Records), info.Records)
	}
	lo, hi := timestampRange(batch.Records)
	if lo != info.MinTimestamp || hi != info.MaxTimestamp {
		return nil, corrupt("batch timestamps span [%d, %d], directory says [%d, %d]", lo, hi, info.MinTimestamp, info.MaxTimestamp)
	}
	return batch, nil
}

func timestampRange(records []Record) (lo, hi int64) {
	lo, hi = math.MaxInt64, math.MinInt64
	for i := range records {
		lo = min(lo, records[i].Timestamp)
		hi = max(hi, records[i].Timestamp)
	}
	return lo, hi
}

// decodeRecords decodes exactly n records that fill p. Every length is
// checked against the bytes left before it is used, and n against what p
// could hold before anything is allocated for it.
func decodeRecords(p []byte, n int) ([]Record, error) {
	if n <= 0 || n > len(p)/minRecordSize {
		return nil, corrupt("%d records cannot fit in %d payload bytes", n, len(p))
	}
	records := make([]Record, n)
	// All headers of the batch share one backing array; each record's
	// Headers has its capacity clipped so that appending to it cannot
	// overwrite the next record's headers.
	var headers []Header
	for i := range records {
		r := &records[i]
		ts, k := binary.Varint(p)
		if k <= 0 {
			return nil, corrupt("record %d: bad timestamp varint", i)
		}
		r.Timestamp = ts
		p = p[k:]

		keyLen, k := binary.Uvarint(p)
		if k <= 0 {
			return nil, corrupt("record %d: bad key length varint", i)
		}
		p = p[k:]
		if keyLen > 0 {
			keyLen--
			if keyLen > uint64(len(p)) {
				return nil, corrupt("record %d: key length %d exceeds %d bytes left", i, keyLen, len(p))
			}
			r.Key = p[:keyLen:keyLen]
			p = p[keyLen:]
		}

		if r.Value, p, k = lengthPrefixed(p); k <= 0 {
			return nil, corrupt("record %d: bad value length", i)
		}

		count, k := binary.Uvarint(p)
		if k <= 0 {
			return nil, corrupt("record %d: bad header count varint", i)
		}
		p = p[k:]
		if count > uint64(len(p)/minHeaderSize) {
			return nil, corrupt("record %d: %d headers cannot fit in %d bytes left", i, count, len(p))
		}
		if count > uint64(MaxBatchHeaders-len(headers)) {
			return nil, corrupt("record %d: %d more headers exceed the batch limit of %d", i, count, MaxBatchHeaders)
		}
		if count == 0 {
			continue
		}
		start := len(headers)
		headers = slices.Grow(headers, int(count))
		for j := range int(count) {
			var name, value []byte
			if name, p, k = lengthPrefixed(p); k <= 0 {
				return nil, corrupt("record %d header %d: bad name length", i, j)
			}
			if !utf8.Valid(name) {
				return nil, corrupt("record %d header %d: name is not valid utf-8", i, j)
			}
			if value, p, k = lengthPrefixed(p); k <= 0 {
				return nil, corrupt("record %d header %d: bad value length", i, j)
			}
			headers = append(headers, Header{Name: string(name), Value: value})
		}
		r.Headers = headers[start:len(headers):len(headers)]
	}
	if len(p) != 0 {
		return nil, corrupt("%d bytes after the last record", len(p))
	}
	return records, nil
}

// lengthPrefixed reads a uvarint length and that many bytes from p. It
// returns the bytes (nil when empty), the rest of p, and k <= 0 when the
// varint is bad or the length exceeds what p holds.
func lengthPrefixed(p []byte) (field, rest []byte, k int) {
	n, k := binary.Uvarint(p)
	if k <= 0 {
		return nil, p, k
	}
	p = p[k:]
	if n > uint64(len(p)) {
		return nil, p, -1
	}
	if n == 0 {
		return nil, p, k
	}
	return p[:n:n], p[n:], k
}

// recordsSize returns the encoded size of records and their timestamp
// range, and checks that they can be encoded. It stops as soon as the size
// exceeds MaxBatchBytes, so the sum cannot overflow.
func recordsSize(records []Record) (size int, lo, hi int64, err error) {
	lo, hi = math.MaxInt64, math.MinInt64
	headers := 0
	for i := range records {
		r := &records[i]
		lo = min(lo, r.Timestamp)
		hi = max(hi, r.Timestamp)
		size += varintLen(r.Timestamp)
		if r.Key == nil {
			size++
		} else {
			size += uvarintLen(uint64(len(r.Key))+1) + len(r.Key)
		}
		size += uvarintLen(uint64(len(r.Value))) + len(r.Value)
		size += uvarintLen(uint64(len(r.Headers)))
		if headers += len(r.Headers); headers > MaxBatchHeaders {
			return 0, 0, 0, invalid("batch has over %d record headers at record %d", MaxBatchHeaders, i)
		}
		for j := range r.Headers {
			h := &r.Headers[j]
			if !utf8.ValidString(h.Name) {
				return 0, 0, 0, invalid("record %d header %d: name is not valid utf-8", i, j)
			}
			size += uvarintLen(uint64(len(h.Name))) + len(h.Name)
			size += uvarintLen(uint64(len(h.Value))) + len(h.Value)
		}
		if size > MaxBatchBytes {
			return 0, 0, 0, invalid("batch payload over %d bytes at record %d", MaxBatchBytes, i)
		}
	}
	return size, lo, hi, nil
}

// appendRecords appends the encoding of records, which recordsSize has
// accepted, to dst.
func appendRecords(dst []byte, records []Record) []byte {
	for i := range records {
		r := &records[i]
		dst = binary.AppendVarint(dst, r.Timestamp)
		if r.Key == nil {
			dst = append(dst, 0)
		} else {
			dst = binary.AppendUvarint(dst, uint64(len(r.Key))+1)
			dst = append(dst, r.Key...)
		}
		dst = binary.AppendUvarint(dst, uint64(len(r.Value)))
		dst = append(dst, r.Value...)
		dst = binary.AppendUvarint(dst, uint64(len(r.Headers)))
		for j := range r.Headers {
			h := &r.Headers[j]
			dst = binary.AppendUvarint(dst, uint64(len(h.Name)))
			dst = append(dst, h.Name...)
			dst = binary.AppendUvarint(dst, uint64(len(h.Value)))
			dst = append(dst, h.Value...)
		}
	}
	return dst
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

func varintLen(v int64) int { return uvarintLen(uint64(v<<1) ^ uint64(v>>63)) }
