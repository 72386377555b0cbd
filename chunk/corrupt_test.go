package chunk

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// smallChunk is a chunk small enough to corrupt at every byte.
func smallChunk(t *testing.T) []byte {
	t.Helper()
	b, _ := buildChunk(t, "small", []testBatch{
		{spec: BatchSpec{Topic: "a", Partition: 1, IdempotencyKey: "k"}, records: []Record{
			{Key: []byte("k"), Value: []byte("v1"), Timestamp: 5, Headers: []Header{{Name: "h", Value: []byte("x")}}},
			{Key: []byte{}, Value: []byte("v2"), Timestamp: -3},
		}},
		{spec: BatchSpec{Topic: "b", Codec: CodecZstd}, records: []Record{
			{Value: []byte("compressed value, compressed value, compressed value"), Timestamp: 7},
		}},
	})
	return b
}

func wantCorrupt(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: decoded without error", what)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s: error %v does not wrap ErrCorrupt", what, err)
	}
}

// decodeRanged reads b the way a reader of an object store does: header,
// directory, then every batch from its own range.
func decodeRanged(b []byte) error {
	h, err := ReadHeader(b)
	if err != nil {
		return err
	}
	if int64(len(b)) < HeaderSize+h.DirectoryLength {
		return corrupt("short")
	}
	_, infos, err := DecodeDirectory(h, b[HeaderSize:HeaderSize+h.DirectoryLength])
	if err != nil {
		return err
	}
	for _, info := range infos {
		if info.Offset+info.Length > int64(len(b)) {
			return corrupt("short")
		}
		if _, err := info.Decode(b[info.Offset : info.Offset+info.Length]); err != nil {
			return err
		}
	}
	return nil
}

// decodeAll decodes the whole chunk b and every batch in it.
func decodeAll(b []byte) error {
	c, err := Decode(b)
	if err != nil {
		return err
	}
	for i := range c.Batches() {
		if _, err := c.Batch(i); err != nil {
			return err
		}
	}
	return nil
}

func TestEveryByteFlipIsDetected(t *testing.T) {
	b := smallChunk(t)
	if err := decodeAll(b); err != nil {
		t.Fatal(err)
	}
	c, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			mutated := slices.Clone(b)
			mutated[i] ^= x
			// Decode alone checks every CRC, so it must catch the flip
			// without decoding any batch.
			_, err := Decode(mutated)
			wantCorrupt(t, "Decode with byte flipped", err)
			wantCorrupt(t, "ranged decode with byte flipped", decodeRanged(mutated))
		}
	}
	for _, info := range c.Batches() {
		batch := b[info.Offset : info.Offset+info.Length]
		for i := range batch {
			mutated := slices.Clone(batch)
			mutated[i] ^= 0x10
			_, err := DecodeBatch(mutated)
			wantCorrupt(t, "DecodeBatch with byte flipped", err)
			_, err = info.Decode(mutated)
			wantCorrupt(t, "BatchInfo.Decode with byte flipped", err)
		}
	}
}

func TestEveryTruncationIsDetected(t *testing.T) {
	b := smallChunk(t)
	for n := range len(b) {
		_, err := Decode(b[:n])
		wantCorrupt(t, "Decode of truncated chunk", err)
		if n < HeaderSize {
			_, err := ReadHeader(b[:n])
			wantCorrupt(t, "ReadHeader of truncated header", err)
		}
	}
	_, err := Decode(append(slices.Clone(b), 0))
	wantCorrupt(t, "Decode with a trailing byte", err)

	h, err := ReadHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	dir := b[HeaderSize : HeaderSize+h.DirectoryLength]
	for n := range len(dir) {
		_, _, err := DecodeDirectory(h, dir[:n])
		wantCorrupt(t, "DecodeDirectory of truncated directory", err)
	}

	c, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range c.Batches() {
		batch := b[info.Offset : info.Offset+info.Length]
		for n := range len(batch) {
			_, err := DecodeBatch(batch[:n])
			wantCorrupt(t, "DecodeBatch of truncated batch", err)
			_, err = info.Decode(batch[:n])
			wantCorrupt(t, "BatchInfo.Decode of truncated batch", err)
		}
		_, err := DecodeBatch(append(slices.Clone(batch), 0))
		wantCorrupt(t, "DecodeBatch with a trailing byte", err)
	}
}

// rawBatch builds a batch with the given header fields and stored payload
// and a correct CRC, as a hostile writer would.
func rawBatch(codec Codec, records, rawLen, storedLen uint32, stored []byte) []byte {
	b := make([]byte, BatchHeaderSize, BatchHeaderSize+len(stored))
	b[0] = batchVersion
	b[1] = byte(codec)
	binary.BigEndian.PutUint32(b[4:], records)
	binary.BigEndian.PutUint32(b[8:], rawLen)
	binary.BigEndian.PutUint32(b[12:], storedLen)
	b = append(b, stored...)
	binary.BigEndian.PutUint32(b[16:], batchCRC(b[:16], b[BatchHeaderSize:]))
	return b
}

// rawNone builds an uncompressed batch of payload with a correct CRC.
func rawNone(records uint32, payload []byte) []byte {
	return rawBatch(CodecNone, records, uint32(len(payload)), uint32(len(payload)), payload)
}

// rawHeader builds a chunk header with the given fields and a correct CRC.
func rawHeader(dirLen, batches uint32, dataLen uint64, dirCRC uint32) []byte {
	b := make([]byte, HeaderSize)
	copy(b, magic)
	b[4] = version
	binary.BigEndian.PutUint32(b[8:], dirLen)
	binary.BigEndian.PutUint32(b[12:], batches)
	binary.BigEndian.PutUint64(b[16:], dataLen)
	binary.BigEndian.PutUint32(b[24:], dirCRC)
	binary.BigEndian.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
	return b
}

// warmZstd decodes src, which holds n bytes, once with each of the shared
// decoder's pooled states, which it hands out in turn, so that buffers
// each state allocates once are not counted against a test.
func warmZstd(t *testing.T, src []byte, n int) {
	t.Helper()
	for range runtime.GOMAXPROCS(0) {
		if _, err := decompressZstd(src, n); err != nil {
			t.Fatal(err)
		}
	}
}

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestHostileLengths(t *testing.T) {
	zframe, err := compressZstd(nil, []byte("tiny"))
	if err != nil {
		t.Fatal(err)
	}
	zlong, err := compressZstd(nil, make([]byte, 4096))
	if err != nil {
		t.Fatal(err)
	}
	warmZstd(t, zframe, 4)

	uv := func(p []byte, v uint64) []byte { return binary.AppendUvarint(p, v) }
	record := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	huge := uint64(1) << 62

	dir := append([]byte{1, 'c'}, make([]byte, minEntrySize)...)
	dirCRC := crc32.Checksum(dir, castagnoli)

	tests := []struct {
		name   string
		decode func() error
	}{
		{"batch record count 2^32-1", func() error {
			_, err := DecodeBatch(rawNone(0xffffffff, make([]byte, 16)))
			return err
		}},
		{"batch record count beyond payload", func() error {
			_, err := DecodeBatch(rawNone(MaxBatchRecords, make([]byte, 16)))
			return err
		}},
		{"batch payload length 2^32-1", func() error {
			_, err := DecodeBatch(rawBatch(CodecZstd, 1, 0xffffffff, uint32(len(zframe)), zframe))
			return err
		}},
		{"batch stored length beyond input", func() error {
			_, err := DecodeBatch(rawBatch(CodecNone, 1, MaxBatchBytes, MaxBatchBytes, make([]byte, 16)))
			return err
		}},
		{"zstd payload claims MaxBatchBytes", func() error {
			_, err := DecodeBatch(rawBatch(CodecZstd, 1, MaxBatchBytes, uint32(len(zframe)), zframe))
			return err
		}},
		{"zstd frame longer than declared", func() error {
			_, err := DecodeBatch(rawBatch(CodecZstd, 1, 8, uint32(len(zlong)), zlong))
			return err
		}},
		{"key length 2^62", func() error {
			_, err := DecodeBatch(rawNone(1, record([]byte{0}, uv(nil, huge), make([]byte, 8))))
			return err
		}},
		{"value length 2^62", func() error {
			_, err := DecodeBatch(rawNone(1, record([]byte{0, 0}, uv(nil, huge), make([]byte, 8))))
			return err
		}},
		{"header count 2^62", func() error {
			_, err := DecodeBatch(rawNone(1, record([]byte{0, 0, 0}, uv(nil, huge), make([]byte, 8))))
			return err
		}},
		{"header count just beyond bytes left", func() error {
			_, err := DecodeBatch(rawNone(1, record([]byte{0, 0, 0}, uv(nil, 5), make([]byte, 8))))
			return err
		}},
		{"header name length 2^62", func() error {
			_, err := DecodeBatch(rawNone(1, record([]byte{0, 0, 0, 1}, uv(nil, huge), make([]byte, 8))))
			return err
		}},
		{"varint overflow", func() error {
			_, err := DecodeBatch(rawNone(1, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0}))
			return err
		}},
		{"chunk claims MaxBatches and a huge directory", func() error {
			_, err := Decode(rawHeader(1+MaxIDLen+MaxBatches*maxEntrySize, MaxBatches, MaxBatches*(BatchHeaderSize+MaxBatchBytes), 0))
			return err
		}},
		{"directory claims more batches than it holds", func() error {
			h := ChunkHeader{Version: version, DirectoryLength: int64(len(dir)), Batches: MaxBatches, DataLength: 1 << 40, DirectoryCRC: dirCRC}
			_, _, err := DecodeDirectory(h, dir)
			return err
		}},
		{"directory with hostile header not from ReadHeader", func() error {
			h := ChunkHeader{DirectoryLength: int64(len(dir)), Batches: -1, DataLength: -1, DirectoryCRC: dirCRC}
			_, _, err := DecodeDirectory(h, dir)
			return err
		}},
		{"header batch count 2^32-1", func() error {
			_, err := ReadHeader(rawHeader(100, 0xffffffff, 100, 0))
			return err
		}},
		{"header data length 2^64-1", func() error {
			_, err := ReadHeader(rawHeader(2+minEntrySize, 1, 1<<64-1, 0))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			n := allocated(func() { err = tt.decode() })
			wantCorrupt(t, tt.name, err)
			if n > 64<<10 {
				t.Errorf("allocated %d bytes for %v", n, err)
			}
		})
	}
}

// TestHeaderLimit checks that a small zstd batch cannot make the decoder
// allocate a Header for every two bytes of a large payload: the payload
// holds more zero-length headers than MaxBatchHeaders allows.
func TestHeaderLimit(t *testing.T) {
	count := MaxBatchHeaders + 1
	payload := binary.AppendUvarint([]byte{0, 0, 0}, uint64(count))
	payload = append(payload, make([]byte, 2*count)...)
	stored, err := compressZstd(nil, payload)
	if err != nil {
		t.Fatal(err)
	}
	warmZstd(t, stored, len(payload))
	b := rawBatch(CodecZstd, 1, uint32(len(payload)), uint32(len(stored)), stored)
	var derr error
	n := allocated(func() { _, derr = DecodeBatch(b) })
	wantCorrupt(t, "batch over the header limit", derr)
	if n > uint64(len(payload))+256<<10 {
		t.Errorf("allocated %d bytes to reject a %d-byte batch with a %d-byte payload", n, len(b), len(payload))
	}
}

// TestZstdAllocationBounded checks the one allocation a hostile batch can
// force, the declared payload length of a zstd batch, stays within the
// format's ratio limit of its stored length.
func TestZstdAllocationBounded(t *testing.T) {
	zframe, err := compressZstd(nil, []byte("tiny"))
	if err != nil {
		t.Fatal(err)
	}
	warmZstd(t, zframe, 4)
	rawLen := uint32(len(zframe)) * maxZstdRatio
	b := rawBatch(CodecZstd, 1, rawLen, uint32(len(zframe)), zframe)
	var derr error
	n := allocated(func() { _, derr = DecodeBatch(b) })
	wantCorrupt(t, "zstd payload shorter than declared", derr)
	if n > uint64(rawLen)+256<<10 {
		t.Errorf("allocated %d bytes for a declared length of %d", n, rawLen)
	}
}

func TestDirectoryChecks(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	b, _ := buildChunk(t, "dir", []testBatch{
		{spec: BatchSpec{Topic: "a"}, records: sampleRecords(r, 3, 10)},
		{spec: BatchSpec{Topic: "b", Codec: CodecZstd}, records: sampleRecords(r, 3, 10)},
	})
	h, err := ReadHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	dir := slices.Clone(b[HeaderSize : HeaderSize+h.DirectoryLength])
	firstEntry := 1 + len("dir")

	// rewrite re-signs the directory after edit so that only the edited
	// field, not the CRC, can make decoding fail.
	rewrite := func(edit func(d []byte, h *ChunkHeader) []byte) error {
		d := edit(slices.Clone(dir), &h)
		hh := h
		hh.DirectoryLength = int64(len(d))
		hh.DirectoryCRC = crc32.Checksum(d, castagnoli)
		_, _, err := DecodeDirectory(hh, d)
		return err
	}
	// Field offsets within the first entry, whose topic is "a" and which
	// has no idempotency key.
	const (
		topicLen  = 0
		topic     = 1
		partition = 2
		records   = 6
		keyLen    = 10
		codec     = 12
		offset    = 13
		length    = 21
		minTS     = 29
		maxTS     = 37
	)
	orig := h
	tests := []struct {
		name string
		edit func(d []byte, h *ChunkHeader) []byte
	}{
		{"empty chunk id", func(d []byte, _ *ChunkHeader) []byte { d[0] = 0; return d }},
		{"bad chunk id byte", func(d []byte, _ *ChunkHeader) []byte { d[1] = '/'; return d }},
		{"empty topic", func(d []byte, _ *ChunkHeader) []byte {
			d[firstEntry+topicLen] = 0
			return slices.Delete(d, firstEntry+topic, firstEntry+topic+1)
		}},
		{"bad topic byte", func(d []byte, _ *ChunkHeader) []byte { d[firstEntry+topic] = '*'; return d }},
		{"partition over int32", func(d []byte, _ *ChunkHeader) []byte { d[firstEntry+partition] = 0x80; return d }},
		{"zero records", func(d []byte, _ *ChunkHeader) []byte {
			binary.BigEndian.PutUint32(d[firstEntry+records:], 0)
			return d
		}},
		{"too many records", func(d []byte, _ *ChunkHeader) []byte {
			binary.BigEndian.PutUint32(d[firstEntry+records:], MaxBatchRecords+1)
			return d
		}},
		{"idempotency key over limit", func(d []byte, _ *ChunkHeader) []byte {
			binary.BigEndian.PutUint16(d[firstEntry+keyLen:], MaxIdempotencyKeyLen+1)
			return slices.Insert(d, firstEntry+keyLen+2, make([]byte, MaxIdempotencyKeyLen+1)...)
		}},
		{"unknown codec", func(d []byte, _ *ChunkHeader) []byte { d[firstEntry+codec] = 9; return d }},
		{"gap before first batch", func(d []byte, _ *ChunkHeader) []byte { d[firstEntry+offset+7]++; return d }},
		{"batch length below header", func(d []byte, _ *ChunkHeader) []byte {
			binary.BigEndian.PutUint32(d[firstEntry+length:], BatchHeaderSize-1)
			return d
		}},
		{"batches overlap", func(d []byte, _ *ChunkHeader) []byte { d[firstEntry+length+3]++; return d }},
		{"batches leave a gap", func(d []byte, _ *ChunkHeader) []byte { d[firstEntry+length+3]--; return d }},
		{"data longer than batches", func(d []byte, h *ChunkHeader) []byte { h.DataLength++; return d }},
		{"data shorter than batches", func(d []byte, h *ChunkHeader) []byte { h.DataLength--; return d }},
		{"min timestamp after max", func(d []byte, _ *ChunkHeader) []byte {
			binary.BigEndian.PutUint64(d[firstEntry+minTS:], 1<<62)
			binary.BigEndian.PutUint64(d[firstEntry+maxTS:], 1)
			return d
		}},
		{"trailing byte", func(d []byte, _ *ChunkHeader) []byte {
			// Move both batches along so that only the extra byte is wrong.
			for _, e := range []int{firstEntry, firstEntry + minEntrySize} {
				d[e+offset+7]++
			}
			return append(d, 0)
		}},
		{"missing entry", func(d []byte, h *ChunkHeader) []byte { h.Batches = 3; return d }},
		{"extra entry", func(d []byte, h *ChunkHeader) []byte { h.Batches = 1; return d }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h = orig
			wantCorrupt(t, tt.name, rewrite(tt.edit))
		})
	}
	h = orig
	if err := rewrite(func(d []byte, _ *ChunkHeader) []byte { return d }); err != nil {
		t.Fatalf("unedited directory: %v", err)
	}
}

func TestHeaderChecks(t *testing.T) {
	b := smallChunk(t)
	resign := func(edit func(h []byte)) error {
		h := slices.Clone(b[:HeaderSize])
		edit(h)
		binary.BigEndian.PutUint32(h[28:], crc32.Checksum(h[:28], castagnoli))
		_, err := ReadHeader(h)
		return err
	}
	tests := []struct {
		name string
		edit func(h []byte)
	}{
		{"bad magic", func(h []byte) { h[0] = 'X' }},
		{"version 0", func(h []byte) { h[4] = 0 }},
		{"version 2", func(h []byte) { h[4] = 2 }},
		{"flags", func(h []byte) { h[5] = 1 }},
		{"reserved", func(h []byte) { h[7] = 1 }},
		{"no batches", func(h []byte) { binary.BigEndian.PutUint32(h[12:], 0) }},
		{"too many batches", func(h []byte) { binary.BigEndian.PutUint32(h[12:], MaxBatches+1) }},
		{"directory too short for batches", func(h []byte) { binary.BigEndian.PutUint32(h[8:], 2+2*minEntrySize-1) }},
		{"directory too long for batches", func(h []byte) { binary.BigEndian.PutUint32(h[8:], 1+MaxIDLen+2*maxEntrySize+1) }},
		{"data too short for batches", func(h []byte) { binary.BigEndian.PutUint64(h[16:], 2*BatchHeaderSize-1) }},
		{"data too long for batches", func(h []byte) { binary.BigEndian.PutUint64(h[16:], 2*(BatchHeaderSize+MaxBatchBytes)+1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCorrupt(t, tt.name, resign(tt.edit))
		})
	}
	if err := resign(func([]byte) {}); err != nil {
		t.Fatalf("unedited header: %v", err)
	}
}

func TestBatchChecks(t *testing.T) {
	payload := appendRecords(nil, []Record{{Value: []byte("v")}, {Key: []byte("k")}})
	good := rawNone(2, payload)
	if _, err := DecodeBatch(good); err != nil {
		t.Fatalf("well-formed batch: %v", err)
	}
	utf := appendRecords(nil, []Record{{Headers: []Header{{Name: "ok"}}}})
	utf[5] = 0xff // first byte of the header name, after four one-byte varints and the name length

	tests := []struct {
		name string
		b    []byte
	}{
		{"version 0", func() []byte { b := slices.Clone(good); b[0] = 0; return resignBatch(b) }()},
		{"version 2", func() []byte { b := slices.Clone(good); b[0] = 2; return resignBatch(b) }()},
		{"unknown codec", rawBatch(2, 2, uint32(len(payload)), uint32(len(payload)), payload)},
		{"reserved", func() []byte { b := slices.Clone(good); b[2] = 1; return resignBatch(b) }()},
		{"zero records", rawNone(0, payload)},
		{"fewer records than payload", rawNone(1, payload)},
		{"more records than payload", rawNone(3, payload)},
		{"uncompressed lengths disagree", rawBatch(CodecNone, 2, uint32(len(payload))-1, uint32(len(payload)), payload)},
		{"zstd payload that is not zstd", rawBatch(CodecZstd, 2, uint32(len(payload)), uint32(len(payload)), payload)},
		{"header name not utf-8", rawNone(1, utf)},
		{"trailing payload byte", rawNone(2, append(slices.Clone(payload), 0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBatch(tt.b)
			wantCorrupt(t, tt.name, err)
		})
	}
}

func resignBatch(b []byte) []byte {
	binary.BigEndian.PutUint32(b[16:], batchCRC(b[:16], b[BatchHeaderSize:]))
	return b
}

// TestBatchDirectoryMismatch checks that BatchInfo.Decode and Decode catch a
// batch that is valid on its own but disagrees with its directory entry.
func TestBatchDirectoryMismatch(t *testing.T) {
	b, infos := buildChunk(t, "m", []testBatch{{spec: BatchSpec{Topic: "t"}, records: []Record{{Timestamp: 1}, {Timestamp: 9}}}})
	batch := b[infos[0].Offset:]
	edits := map[string]func(*BatchInfo){
		"length":        func(i *BatchInfo) { i.Length++ },
		"crc":           func(i *BatchInfo) { i.CRC++ },
		"codec":         func(i *BatchInfo) { i.Codec = CodecZstd },
		"records":       func(i *BatchInfo) { i.Records = 3 },
		"min timestamp": func(i *BatchInfo) { i.MinTimestamp = 0 },
		"max timestamp": func(i *BatchInfo) { i.MaxTimestamp = 10 },
	}
	for name, edit := range edits {
		info := infos[0]
		edit(&info)
		_, err := info.Decode(batch)
		wantCorrupt(t, "BatchInfo.Decode with wrong "+name, err)
	}
	if _, err := infos[0].Decode(batch); err != nil {
		t.Fatalf("BatchInfo.Decode: %v", err)
	}

	// A directory entry re-signed to disagree with its batch: Decode must
	// compare them, since each CRC alone still matches.
	for _, field := range []string{"records", "codec"} {
		mutated := slices.Clone(b)
		h, err := ReadHeader(mutated)
		if err != nil {
			t.Fatal(err)
		}
		dir := mutated[HeaderSize : HeaderSize+h.DirectoryLength]
		e := 2 // after the one-byte id "m"
		switch field {
		case "records":
			binary.BigEndian.PutUint32(dir[e+1+1+4:], 1)
		case "codec":
			dir[e+1+1+4+4+2] = byte(CodecZstd)
		}
		binary.BigEndian.PutUint32(mutated[24:], crc32.Checksum(dir, castagnoli))
		binary.BigEndian.PutUint32(mutated[28:], crc32.Checksum(mutated[:28], castagnoli))
		_, err = Decode(mutated)
		wantCorrupt(t, "Decode with directory "+field+" disagreeing with batch", err)
	}
}
