package chunk

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// ChunkHeader is the decoded fixed header of a chunk. ReadHeader returns it
// only after checking it, so its lengths are consistent with each other and
// within the format's limits: a reader may size its next reads by them.
type ChunkHeader struct {
	// Version is the chunk format version.
	Version uint8
	// DirectoryLength is the size of the directory, which starts at
	// HeaderSize.
	DirectoryLength int64
	// Batches is the number of batches, 1..MaxBatches.
	Batches int
	// DataLength is the sum of all batch lengths; the data section starts
	// at HeaderSize+DirectoryLength.
	DataLength int64
	// DirectoryCRC is the CRC-32C of the directory bytes.
	DirectoryCRC uint32
}

// Size returns the total size of the chunk in bytes.
func (h ChunkHeader) Size() int64 { return HeaderSize + h.DirectoryLength + h.DataLength }

// ReadHeader decodes and checks the chunk header in the first HeaderSize
// bytes of b; bytes after those are ignored. Errors for bad input wrap
// ErrCorrupt.
func ReadHeader(b []byte) (ChunkHeader, error) {
	h, err := readHeader(b)
	if err != nil {
		return ChunkHeader{}, fmt.Errorf("read chunk header: %w", err)
	}
	return h, nil
}

func readHeader(b []byte) (ChunkHeader, error) {
	var h ChunkHeader
	if len(b) < HeaderSize {
		return h, corrupt("header is %d bytes, want %d", len(b), HeaderSize)
	}
	b = b[:HeaderSize]
	if string(b[:4]) != magic {
		return h, corrupt("bad magic %q", b[:4])
	}
	// The version comes before the CRC: a later version may move it.
	if b[4] != version {
		return h, corrupt("unknown chunk version %d", b[4])
	}
	if crc, want := crc32.Checksum(b[:28], castagnoli), binary.BigEndian.Uint32(b[28:]); crc != want {
		return h, corrupt("header crc32c %08x does not match computed %08x", want, crc)
	}
	if b[5] != 0 {
		return h, corrupt("unknown flags %#02x", b[5])
	}
	if b[6] != 0 || b[7] != 0 {
		return h, corrupt("nonzero reserved bytes in chunk header")
	}
	dirLen := int64(binary.BigEndian.Uint32(b[8:]))
	n := int64(binary.BigEndian.Uint32(b[12:]))
	dataLen := binary.BigEndian.Uint64(b[16:])
	if n == 0 || n > MaxBatches {
		return h, corrupt("batch count %d not in [1, %d]", n, MaxBatches)
	}
	if lo, hi := 1+1+n*minEntrySize, 1+MaxIDLen+n*maxEntrySize; dirLen < lo || dirLen > hi {
		return h, corrupt("directory length %d not in [%d, %d] for %d batches", dirLen, lo, hi, n)
	}
	if lo, hi := uint64(n)*BatchHeaderSize, uint64(n)*(BatchHeaderSize+MaxBatchBytes); dataLen < lo || dataLen > hi {
		return h, corrupt("data length %d not in [%d, %d] for %d batches", dataLen, lo, hi, n)
	}
	h.Version = b[4]
	h.DirectoryLength = dirLen
	h.Batches = int(n)
	h.DataLength = int64(dataLen)
	h.DirectoryCRC = binary.BigEndian.Uint32(b[24:])
	return h, nil
}

// DecodeDirectory decodes the directory of the chunk whose header is h
// from dir, which must be exactly the h.DirectoryLength bytes that follow
// the header. It returns the chunk id and one BatchInfo per batch, in data
// order, after checking the directory CRC, every entry, and that the batch
// ranges tile the data section exactly. Errors for bad input wrap
// ErrCorrupt.
func DecodeDirectory(h ChunkHeader, dir []byte) (id string, batches []BatchInfo, err error) {
	id, batches, err = decodeDirectory(h, dir)
	if err != nil {
		return "", nil, fmt.Errorf("decode chunk directory: %w", err)
	}
	return id, batches, nil
}

func decodeDirectory(h ChunkHeader, dir []byte) (string, []BatchInfo, error) {
	if int64(len(dir)) != h.DirectoryLength {
		return "", nil, corrupt("directory is %d bytes, header says %d", len(dir), h.DirectoryLength)
	}
	if crc := crc32.Checksum(dir, castagnoli); crc != h.DirectoryCRC {
		return "", nil, corrupt("directory crc32c %08x does not match computed %08x", h.DirectoryCRC, crc)
	}
	// h may not come from ReadHeader, so bound the allocation by what dir
	// can hold rather than by h.Batches alone.
	if h.Batches <= 0 || h.Batches > MaxBatches || h.Batches > len(dir)/minEntrySize {
		return "", nil, corrupt("%d batches cannot fit in a %d-byte directory", h.Batches, len(dir))
	}
	if h.DataLength < 0 || h.DataLength > math.MaxInt64-HeaderSize-h.DirectoryLength {
		return "", nil, corrupt("data length %d out of range", h.DataLength)
	}

	d := decoder{b: dir}
	idLen := int(d.u8())
	idBytes := d.bytes(idLen)
	if d.err != nil || idLen == 0 || idLen > MaxIDLen || !validName(idBytes) {
		return "", nil, corrupt("bad chunk id %q", idBytes)
	}
	id := string(idBytes)

	batches := make([]BatchInfo, h.Batches)
	next := HeaderSize + h.DirectoryLength // where the next batch must start
	end := next + h.DataLength
	for i := range batches {
		info := &batches[i]
		topicLen := int(d.u8())
		topic := d.bytes(topicLen)
		partition := d.u32()
		records := d.u32()
		key := d.bytes(int(d.u16()))
		codec := Codec(d.u8())
		offset := d.u64()
		length := d.u32()
		info.CRC = d.u32()
		info.MinTimestamp = int64(d.u64())
		info.MaxTimestamp = int64(d.u64())
		switch {
		case d.err != nil:
			return "", nil, corrupt("entry %d: %v", i, d.err)
		case topicLen == 0 || topicLen > MaxTopicLen || !validName(topic):
			return "", nil, corrupt("entry %d: bad topic %q", i, topic)
		case partition > math.MaxInt32:
			return "", nil, corrupt("entry %d: partition %d out of range", i, partition)
		case records == 0 || records > MaxBatchRecords:
			return "", nil, corrupt("entry %d: record count %d not in [1, %d]", i, records, MaxBatchRecords)
		case len(key) > MaxIdempotencyKeyLen:
			return "", nil, corrupt("entry %d: idempotency key is %d bytes, over limit %d", i, len(key), MaxIdempotencyKeyLen)
		case !codec.known():
			return "", nil, corrupt("entry %d: unknown codec %d", i, codec)
		case offset != uint64(next):
			return "", nil, corrupt("entry %d: batch offset %d, want %d", i, offset, next)
		case length < BatchHeaderSize || length > BatchHeaderSize+MaxBatchBytes:
			return "", nil, corrupt("entry %d: batch length %d out of range", i, length)
		case int64(length) > end-next:
			return "", nil, corrupt("entry %d: batch [%d, %d) runs past the end of data at %d", i, offset, next+int64(length), end)
		case info.MinTimestamp > info.MaxTimestamp:
			return "", nil, corrupt("entry %d: min timestamp %d after max %d", i, info.MinTimestamp, info.MaxTimestamp)
		}
		info.Topic = string(topic)
		info.Partition = int32(partition)
		info.Records = int(records)
		if len(key) > 0 {
			info.IdempotencyKey = string(key)
		}
		info.Codec = codec
		info.Offset = next
		info.Length = int64(length)
		next += info.Length
	}
	if len(d.b) != 0 {
		return "", nil, corrupt("%d bytes after the last directory entry", len(d.b))
	}
	if next != end {
		return "", nil, corrupt("batches end at %d, data ends at %d", next, end)
	}
	return id, batches, nil
}

// decoder reads big-endian fields from b. The first read past the end sets
// err, after which every read returns zero, so a caller checks err once
// after a group of reads.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.err = fmt.Errorf("need %d bytes, %d left", n, len(d.b))
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) bytes(n int) []byte { return d.take(n) }

func (d *decoder) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// Chunk is a decoded chunk. It holds the chunk's bytes and decodes batches
// from them on demand; those bytes must not be modified while the Chunk or
// any record decoded from it is in use.
type Chunk struct {
	id      string
	batches []BatchInfo
	b       []byte
}

// Decode decodes the whole chunk b: it checks the header, the directory,
// that b is exactly as long as the header says, and every batch's header
// and CRC against its directory entry. Record payloads are decompressed and
// decoded only by Chunk.Batch. Errors for bad input wrap ErrCorrupt.
func Decode(b []byte) (*Chunk, error) {
	c, err := decodeChunk(b)
	if err != nil {
		return nil, fmt.Errorf("decode chunk: %w", err)
	}
	return c, nil
}

func decodeChunk(b []byte) (*Chunk, error) {
	h, err := readHeader(b)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != h.Size() {
		return nil, corrupt("chunk is %d bytes, header says %d", len(b), h.Size())
	}
	id, batches, err := decodeDirectory(h, b[HeaderSize:HeaderSize+h.DirectoryLength])
	if err != nil {
		return nil, err
	}
	for i := range batches {
		info := &batches[i]
		bh, _, err := parseBatch(b[info.Offset:info.Offset+info.Length], true)
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", i, err)
		}
		switch {
		case bh.crc != info.CRC:
			return nil, corrupt("batch %d: crc32c %08x does not match directory's %08x", i, bh.crc, info.CRC)
		case bh.codec != info.Codec:
			return nil, corrupt("batch %d: codec %s does not match directory's %s", i, bh.codec, info.Codec)
		case bh.records != info.Records:
			return nil, corrupt("batch %d: %d records, directory says %d", i, bh.records, info.Records)
		}
	}
	return &Chunk{id: id, batches: batches, b: b}, nil
}

// ID returns the chunk id.
func (c *Chunk) ID() string { return c.id }

// Batches returns the directory: one BatchInfo per batch, in data order.
// The slice is shared and must not be modified.
func (c *Chunk) Batches() []BatchInfo { return c.batches }

// Batch decodes batch i, checking it against its directory entry as
// BatchInfo.Decode does. The records alias the chunk's bytes or the
// decompressed payload. An index outside [0, len(Batches())) is an error
// that does not wrap ErrCorrupt.
func (c *Chunk) Batch(i int) (*Batch, error) {
	if i < 0 || i >= len(c.batches) {
		return nil, fmt.Errorf("batch index %d out of range [0, %d)", i, len(c.batches))
	}
	info := c.batches[i]
	return info.Decode(c.b[info.Offset : info.Offset+info.Length])
}
