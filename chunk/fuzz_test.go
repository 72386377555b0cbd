package chunk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mambamq/mamba/internal/tooling/fuzzcorpus"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the committed fuzz seed corpus under testdata/fuzz")

// seed is one committed fuzz input. Seeds named valid-* must decode, and
// every other seed must fail to decode.
type seed struct {
	name string
	data []byte
}

// chunkSeeds returns the seeds for FuzzDecode: valid chunks of every shape
// the Writer makes, and damaged ones that stop at each stage of decoding.
func chunkSeeds(tb testing.TB) []seed {
	r := rand.New(rand.NewPCG(7, 8))
	one, _ := buildChunk(tb, "one", []testBatch{{spec: BatchSpec{Topic: "t"}, records: []Record{{Key: []byte("k"), Value: []byte("v"), Timestamp: 1}}}})
	zstd, _ := buildChunk(tb, "zstd", []testBatch{{spec: BatchSpec{Topic: "z", Partition: 2, Codec: CodecZstd}, records: sampleRecords(r, 6, 40)}})
	mixed, _ := buildChunk(tb, "01HZX5K2T9ZQ8J6R4N7M3W2V1A", []testBatch{
		{spec: BatchSpec{Topic: "orders", Partition: 0, IdempotencyKey: "p1:1"}, records: sampleRecords(r, 4, 12)},
		{spec: BatchSpec{Topic: "orders", Partition: 1, Codec: CodecZstd}, records: sampleRecords(r, 5, 30)},
		{spec: BatchSpec{Topic: "audit.log", Partition: 7}, records: []Record{{Key: []byte{}}, {Headers: []Header{{Name: "ü", Value: []byte{0}}}}}},
		{spec: BatchSpec{Topic: "x_y-z", Partition: math.MaxInt32, Codec: CodecZstd, IdempotencyKey: "p2:9"}, records: []Record{{Value: bytes.Repeat([]byte("ab"), 200)}}},
	})
	extremes, _ := buildChunk(tb, "ts", []testBatch{{spec: BatchSpec{Topic: "ts"}, records: []Record{{Timestamp: math.MinInt64}, {Timestamp: math.MaxInt64}}}})

	flipped := slices.Clone(mixed)
	flipped[len(flipped)-1] ^= 1
	// A batch whose CRCs are all correct but whose records are not: it
	// passes Decode and fails in Chunk.Batch.
	badRecords := slices.Clone(one)
	badRecords[len(badRecords)-1] = 0x7f
	badRecords = resignChunk(badRecords)

	return []seed{
		{"valid-one-record", one},
		{"valid-zstd", zstd},
		{"valid-mixed", mixed},
		{"valid-timestamp-extremes", extremes},
		{"edge-empty", nil},
		{"edge-header-only", mixed[:HeaderSize]},
		{"edge-truncated-directory", mixed[:HeaderSize+10]},
		{"edge-truncated-batch", mixed[:len(mixed)-1]},
		{"edge-trailing-byte", append(slices.Clone(one), 0)},
		{"edge-bad-batch-crc", flipped},
		{"edge-bad-records", badRecords},
		{"edge-hostile-header", rawHeader(1+MaxIDLen+MaxBatches*maxEntrySize, MaxBatches, MaxBatches*(BatchHeaderSize+MaxBatchBytes), 0)},
	}
}

// batchSeeds returns the seeds for FuzzDecodeBatch.
func batchSeeds(tb testing.TB) []seed {
	r := rand.New(rand.NewPCG(9, 10))
	batchOf := func(codec Codec, records []Record) []byte {
		b, infos := buildChunk(tb, "b", []testBatch{{spec: BatchSpec{Topic: "t", Codec: codec}, records: records}})
		return b[infos[0].Offset:]
	}
	none := batchOf(CodecNone, sampleRecords(r, 5, 20))
	zstd := batchOf(CodecZstd, sampleRecords(r, 5, 20))
	zframe, err := compressZstd(nil, []byte("tiny"))
	if err != nil {
		tb.Fatal(err)
	}
	return []seed{
		{"valid-none", none},
		{"valid-zstd", zstd},
		{"valid-keys-and-headers", batchOf(CodecNone, []Record{
			{Key: nil, Value: []byte("v")},
			{Key: []byte{}, Headers: []Header{{Name: "", Value: nil}, {Name: "h", Value: []byte("x")}}},
			{Key: []byte("k"), Timestamp: -1},
		})},
		{"valid-large-zstd", batchOf(CodecZstd, []Record{{Value: textValue(r, 4096)}})},
		{"edge-empty", nil},
		{"edge-header-only", none[:BatchHeaderSize]},
		{"edge-truncated", zstd[:len(zstd)-1]},
		{"edge-hostile-count", rawNone(0xffffffff, make([]byte, 8))},
		{"edge-zstd-ratio", rawBatch(CodecZstd, 1, MaxBatchBytes, uint32(len(zframe)), zframe)},
		{"edge-header-count", rawNone(1, []byte{0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0})},
		{"edge-trailing-record-byte", rawNone(1, []byte{0, 0, 0, 0, 0})},
	}
}

// resignChunk returns a copy of b with every CRC it can find recomputed:
// each batch's, each directory entry's copy of it, the directory's and the
// header's. Fuzzing decodes resigned inputs too, because a mutation that
// breaks a CRC would otherwise stop decoding before the structure behind
// it. It never panics, whatever b holds.
func resignChunk(b []byte) []byte {
	b = slices.Clone(b)
	if len(b) < HeaderSize {
		return b
	}
	dirEnd := HeaderSize + int64(binary.BigEndian.Uint32(b[8:]))
	if dirEnd <= int64(len(b)) {
		d := decoder{b: b[HeaderSize:dirEnd]}
		d.bytes(int(d.u8()))
		n := min(binary.BigEndian.Uint32(b[12:]), MaxBatches)
		for range n {
			d.bytes(int(d.u8()))
			d.u32()
			d.u32()
			d.bytes(int(d.u16()))
			d.u8()
			offset := d.u64()
			length := uint64(d.u32())
			crcField := d.bytes(4)
			d.u64()
			d.u64()
			if d.err != nil {
				break
			}
			if length >= BatchHeaderSize && offset <= uint64(len(b)) && length <= uint64(len(b))-offset {
				batch := resignBatch(b[offset : offset+length])
				copy(crcField, batch[16:20])
			}
		}
		binary.BigEndian.PutUint32(b[24:], crc32.Checksum(b[HeaderSize:dirEnd], castagnoli))
	}
	binary.BigEndian.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
	return b
}

func FuzzDecode(f *testing.F) {
	for _, s := range chunkSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		checkDecode(t, resignChunk(b))
	})
}

// checkDecode decodes b as a whole chunk and range by range, checks that
// both ways agree, and that a chunk that decodes completely re-encodes to
// the same content.
func checkDecode(t *testing.T, b []byte) {
	c, err := Decode(b)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decode error does not wrap ErrCorrupt: %v", err)
		}
		return
	}
	h, err := ReadHeader(b)
	if err != nil {
		t.Fatalf("Decode succeeded, ReadHeader failed: %v", err)
	}
	id, infos, err := DecodeDirectory(h, b[HeaderSize:HeaderSize+h.DirectoryLength])
	if err != nil {
		t.Fatalf("Decode succeeded, DecodeDirectory failed: %v", err)
	}
	if id != c.ID() || !slices.Equal(infos, c.Batches()) {
		t.Fatalf("DecodeDirectory = %q %+v, Decode = %q %+v", id, infos, c.ID(), c.Batches())
	}

	batches := make([]testBatch, len(infos))
	complete := true
	for i, info := range infos {
		batch, err := c.Batch(i)
		ranged, rerr := DecodeBatch(b[info.Offset : info.Offset+info.Length])
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Batch(%d) error does not wrap ErrCorrupt: %v", i, err)
			}
			complete = false
			continue
		}
		if rerr != nil {
			t.Fatalf("Batch(%d) succeeded, DecodeBatch of its range failed: %v", i, rerr)
		}
		if d := diffRecords(ranged.Records, batch.Records); d != "" {
			t.Fatalf("batch %d: DecodeBatch and Chunk.Batch disagree: %s", i, d)
		}
		batches[i] = testBatch{
			spec:    BatchSpec{Topic: info.Topic, Partition: info.Partition, IdempotencyKey: info.IdempotencyKey, Codec: info.Codec},
			records: batch.Records,
		}
	}
	if !complete {
		return
	}

	// Everything decoded: encoding it again must give a chunk that decodes
	// to the same content.
	again, againInfos := buildChunk(t, c.ID(), batches)
	c2, err := Decode(again)
	if err != nil {
		t.Fatalf("decode re-encoded chunk: %v", err)
	}
	if c2.ID() != c.ID() || len(c2.Batches()) != len(infos) {
		t.Fatalf("re-encoded chunk %q has %d batches, want %q with %d", c2.ID(), len(c2.Batches()), c.ID(), len(infos))
	}
	for i := range infos {
		if d := diffInfo(againInfos[i], infos[i]); d != "" {
			t.Fatalf("re-encoded batch %d: %s", i, d)
		}
		batch, err := c2.Batch(i)
		if err != nil {
			t.Fatalf("decode re-encoded batch %d: %v", i, err)
		}
		if d := diffRecords(batch.Records, batches[i].records); d != "" {
			t.Fatalf("re-encoded batch %d: %s", i, d)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range batchSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodeBatch(t, b)
		if len(b) >= BatchHeaderSize {
			checkDecodeBatch(t, resignBatch(slices.Clone(b)))
		}
	})
}

// checkDecodeBatch decodes b as one batch and checks that, if it decodes,
// encoding its records again with either codec gives the same records.
//
// DecodeCheckedBatch must not panic on any input, must wrap ErrCorrupt,
// and must agree with DecodeBatch on every batch that passes CheckBatch.
func checkDecodeBatch(t *testing.T, b []byte) {
	unchecked, uerr := DecodeCheckedBatch(b)
	if uerr != nil && !errors.Is(uerr, ErrCorrupt) {
		t.Fatalf("DecodeCheckedBatch error does not wrap ErrCorrupt: %v", uerr)
	}
	cerr := CheckBatch(b)
	if cerr != nil && !errors.Is(cerr, ErrCorrupt) {
		t.Fatalf("CheckBatch error does not wrap ErrCorrupt: %v", cerr)
	}
	batch, err := DecodeBatch(b)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeBatch error does not wrap ErrCorrupt: %v", err)
		}
		if cerr == nil && uerr == nil {
			t.Fatalf("DecodeBatch failed (%v) but CheckBatch and DecodeCheckedBatch accept the batch", err)
		}
		return
	}
	if cerr != nil || uerr != nil {
		t.Fatalf("DecodeBatch accepts the batch but CheckBatch says %v and DecodeCheckedBatch %v", cerr, uerr)
	}
	if d := diffRecords(unchecked.Records, batch.Records); d != "" || unchecked.Codec != batch.Codec {
		t.Fatalf("DecodeCheckedBatch differs from DecodeBatch: %s", d)
	}
	if len(batch.Records) == 0 {
		t.Fatal("DecodeBatch returned no records")
	}
	for _, codec := range []Codec{batch.Codec, CodecNone, CodecZstd} {
		again, infos := buildChunk(t, "again", []testBatch{{spec: BatchSpec{Topic: "t", Codec: codec}, records: batch.Records}})
		got, err := DecodeBatch(again[infos[0].Offset:])
		if err != nil {
			t.Fatalf("decode batch re-encoded with %s: %v", codec, err)
		}
		if d := diffRecords(got.Records, batch.Records); d != "" {
			t.Fatalf("batch re-encoded with %s: %s", codec, d)
		}
	}
}

// TestFuzzCorpus checks the committed seed corpus: every seed the seed
// functions make is committed, valid-* seeds decode and the others do not.
// With -update-corpus it first rewrites the corpus from those functions.
func TestFuzzCorpus(t *testing.T) {
	for _, target := range []struct {
		name   string
		seeds  []seed
		decode func([]byte) error
	}{
		{"FuzzDecode", chunkSeeds(t), decodeAll},
		{"FuzzDecodeBatch", batchSeeds(t), func(b []byte) error { _, err := DecodeBatch(b); return err }},
	} {
		seeds := make([]fuzzcorpus.Seed, len(target.seeds))
		for i, sd := range target.seeds {
			seeds[i] = fuzzcorpus.Seed{Name: sd.name, Data: sd.data}
		}
		fuzzcorpus.Check(t, target.name, seeds, *updateCorpus, target.decode, ErrCorrupt)
	}
}
