package chunk

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

const (
	benchBatches   = 16
	benchRecords   = 64
	benchValueSize = 1 << 10
)

// benchInput returns a chunk's worth of batches of 1 KiB records, and the
// number of key and value bytes they hold.
func benchInput(codec Codec) ([]testBatch, int64) {
	r := rand.New(rand.NewPCG(11, 12))
	batches := make([]testBatch, benchBatches)
	var n int64
	for i := range batches {
		records := make([]Record, benchRecords)
		for j := range records {
			records[j] = Record{
				Key:       fmt.Appendf(nil, "key-%03d", j),
				Value:     textValue(r, benchValueSize),
				Timestamp: 1_700_000_000_000 + int64(j),
			}
			n += int64(len(records[j].Key) + len(records[j].Value))
		}
		batches[i] = testBatch{spec: BatchSpec{Topic: "bench", Partition: int32(i), Codec: codec}, records: records}
	}
	return batches, n
}

// BenchmarkEncode measures building one chunk of 16 batches of 64 records
// of 1 KiB with a reused Writer. Throughput counts key and value bytes.
func BenchmarkEncode(b *testing.B) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		b.Run(codec.String(), func(b *testing.B) {
			batches, n := benchInput(codec)
			w, err := NewWriter("bench")
			if err != nil {
				b.Fatal(err)
			}
			var size int
			b.SetBytes(n)
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Reset("bench"); err != nil {
					b.Fatal(err)
				}
				for _, batch := range batches {
					if _, err := w.Add(batch.spec, batch.records); err != nil {
						b.Fatal(err)
					}
				}
				out, _, err := w.Finish()
				if err != nil {
					b.Fatal(err)
				}
				size = len(out)
			}
			b.ReportMetric(float64(size)/float64(n), "stored/raw")
		})
	}
}

// BenchmarkDecode measures decoding that chunk and every record in it.
func BenchmarkDecode(b *testing.B) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		b.Run(codec.String(), func(b *testing.B) {
			batches, n := benchInput(codec)
			chunk, _ := buildChunk(b, "bench", batches)
			b.SetBytes(n)
			b.ReportAllocs()
			for b.Loop() {
				c, err := Decode(chunk)
				if err != nil {
					b.Fatal(err)
				}
				for i := range c.Batches() {
					if _, err := c.Batch(i); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkDecodeBatch measures decoding one batch from its own byte range,
// as a reader does after a ranged read.
func BenchmarkDecodeBatch(b *testing.B) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		b.Run(codec.String(), func(b *testing.B) {
			batches, n := benchInput(codec)
			chunk, infos := buildChunk(b, "bench", batches)
			info := infos[0]
			rng := chunk[info.Offset : info.Offset+info.Length]
			b.SetBytes(n / benchBatches)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := info.Decode(rng); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
