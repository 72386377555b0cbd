package envelope_test

import (
	"bytes"
	"errors"
	"flag"
	"testing"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/tooling/fuzzcorpus"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/envelope"
)

// fuzzRing is a fixed keyring, so that fuzz inputs sealed under it in one
// run still open in the next.
func fuzzRing(tb testing.TB) *envelope.Keyring {
	r, err := envelope.ParseKeyring([]byte("fuzz:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"), false)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// sampleChunk returns a valid chunk of two batches.
func sampleChunk(tb testing.TB, value []byte) []byte {
	w, err := chunk.NewWriter("01HZX5K2T9ZQ8J6R4N7M3W2V1A")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Add(chunk.BatchSpec{Topic: "orders"}, []chunk.Record{{Key: []byte("k"), Value: value, Timestamp: 1}}); err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Add(chunk.BatchSpec{Topic: "audit", Partition: 3, Codec: chunk.CodecZstd}, []chunk.Record{{Value: bytes.Repeat(value, 50), Timestamp: 2}}); err != nil {
		tb.Fatal(err)
	}
	b, _, err := w.Finish()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the committed fuzz seed corpus under testdata/fuzz")

// openSeeds returns the seeds of FuzzOpen, sealed under fuzzRing for the
// key chunks/x: valid envelopes (an empty object, a short one, a chunk of
// two segments) and damaged ones. Sealing is random, so the committed
// corpus is one draw of them.
func openSeeds(tb testing.TB) []fuzzcorpus.Seed {
	r := fuzzRing(tb)
	seal := func(pt []byte) []byte {
		b, err := envelope.Seal(r, "chunks/x", pt)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	ck := seal(sampleChunk(tb, bytes.Repeat([]byte("payload"), 2400)))
	short := seal(sampleChunk(tb, []byte("v")))
	flipped := bytes.Clone(short)
	flipped[len(flipped)-20] ^= 1
	badCRC := bytes.Clone(short)
	badCRC[envelope.HeaderSize-1] ^= 1
	return []fuzzcorpus.Seed{
		{Name: "valid-empty", Data: seal(nil)},
		{Name: "valid-short", Data: short},
		{Name: "valid-chunk", Data: ck},
		{Name: "edge-magic-only", Data: []byte("MMBE")},
		{Name: "edge-header-only", Data: ck[:envelope.HeaderSize]},
		{Name: "edge-truncated-segment", Data: short[:len(short)-1]},
		{Name: "edge-truncated-at-boundary", Data: ck[:envelope.HeaderSize+1<<envelope.SegmentShift+envelope.TagSize]},
		{Name: "edge-flipped", Data: flipped},
		{Name: "edge-bad-header-crc", Data: badCRC},
	}
}

// TestFuzzCorpus checks the committed seed corpus of FuzzOpen; with
// -update-corpus it first writes a new one.
func TestFuzzCorpus(t *testing.T) {
	r := fuzzRing(t)
	fuzzcorpus.Check(t, "FuzzOpen", openSeeds(t), *updateCorpus, func(b []byte) error {
		_, err := envelope.Open(r, "chunks/x", b)
		return err
	}, envelope.ErrCorrupt)
}

// FuzzOpen feeds arbitrary bytes to the envelope decoder, whole and by
// ranges, and the chunk decoder after it: no input may panic, an input
// that opens reads the same by range as whole, and its chunk (if it is
// one) decodes batch by batch.
func FuzzOpen(f *testing.F) {
	r := fuzzRing(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := t.Context()
		mem := objectstore.NewMemory()
		if err := mem.Put(ctx, "chunks/x", data); err != nil {
			t.Fatal(err)
		}
		whole, err := envelope.Open(r, "chunks/x", data)
		if err != nil && !errors.Is(err, envelope.ErrCorrupt) && !errors.Is(err, envelope.ErrUnknownKey) && !errors.Is(err, envelope.ErrWrongKey) {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		s := envelope.New(mem, r)
		n := int64(len(data))
		for _, rg := range [][2]int64{{0, 64}, {100, 1 << 15}, {n / 3, n / 2}, {n - 1, 1}, {0, n}} {
			got, rerr := s.GetRange(ctx, "chunks/x", max(rg[0], 0), rg[1])
			if err != nil || !envelope.IsSealed(data) {
				continue
			}
			want, werr := memWith(t, "chunks/x", whole).GetRange(ctx, "chunks/x", max(rg[0], 0), rg[1])
			if !bytes.Equal(got, want) || (rerr == nil) != (werr == nil) {
				t.Fatalf("GetRange(%d, %d) = %d bytes, %v; whole object gives %d bytes, %v", rg[0], rg[1], len(got), rerr, len(want), werr)
			}
		}
		if err == nil {
			if c, cerr := chunk.Decode(whole); cerr == nil {
				for i := range c.Batches() {
					_, _ = c.Batch(i)
				}
			}
		}
	})
}

// FuzzSealedChunk seals arbitrary bytes (chunks among the seeds) and checks
// that opening gives them back, whole and by any range, and that the chunk
// decoder says the same of the opened bytes as of the original.
func FuzzSealedChunk(f *testing.F) {
	r := fuzzRing(f)
	f.Add(sampleChunk(f, []byte("v")), int64(0), int64(chunk.HeaderSize))
	f.Add(sampleChunk(f, bytes.Repeat([]byte("abc"), 10000)), int64(20000), int64(5000))
	f.Add([]byte{}, int64(0), int64(0))
	f.Fuzz(func(t *testing.T, pt []byte, off, length int64) {
		ctx := t.Context()
		mem := objectstore.NewMemory()
		s := envelope.New(mem, r)
		if err := s.Put(ctx, "chunks/y", pt); err != nil {
			t.Fatal(err)
		}
		raw, _ := mem.Get(ctx, "chunks/y")
		whole, err := envelope.Open(r, "chunks/y", raw)
		if err != nil || !bytes.Equal(whole, pt) {
			t.Fatalf("open = %d bytes, %v; sealed %d", len(whole), err, len(pt))
		}
		want, werr := memWith(t, "chunks/y", pt).GetRange(ctx, "chunks/y", off, length)
		for _, st := range []*envelope.Store{s, envelope.New(mem, r)} {
			got, err := st.GetRange(ctx, "chunks/y", off, length)
			if !bytes.Equal(got, want) || (err == nil) != (werr == nil) {
				t.Fatalf("GetRange(%d, %d) = %d bytes, %v; want %d bytes, %v", off, length, len(got), err, len(want), werr)
			}
		}
		_, err1 := chunk.Decode(pt)
		_, err2 := chunk.Decode(whole)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("chunk decode of plaintext: %v; of opened bytes: %v", err1, err2)
		}
	})
}

// memWith returns a memory store holding data at key: the reference for
// ranged reads.
func memWith(t *testing.T, key string, data []byte) *objectstore.Memory {
	m := objectstore.NewMemory()
	if err := m.Put(t.Context(), key, data); err != nil {
		t.Fatal(err)
	}
	return m
}
