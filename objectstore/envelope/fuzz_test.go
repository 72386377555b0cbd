package envelope_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mambamq/mamba/chunk"
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

// FuzzOpen feeds arbitrary bytes to the envelope decoder, whole and by
// range, and the chunk decoder after it: no input may panic, an input that
// opens reads the same by range as whole, and a chunk decoded from it
// decodes as the plaintext chunk would.
func FuzzOpen(f *testing.F) {
	r := fuzzRing(f)
	ck := sampleChunk(f, bytes.Repeat([]byte("payload"), 2400))
	for _, pt := range [][]byte{nil, []byte("x"), ck} {
		sealed, err := envelope.Seal(r, "chunks/x", pt)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sealed, int64(0), int64(64))
		f.Add(sealed[:len(sealed)-1], int64(100), int64(1<<15))
		f.Add(sealed[:envelope.HeaderSize], int64(0), int64(1))
	}
	f.Add([]byte("MMBE"), int64(0), int64(4))
	f.Fuzz(func(t *testing.T, data []byte, off, length int64) {
		ctx := t.Context()
		mem := objectstore.NewMemory()
		if err := mem.Put(ctx, "chunks/x", data); err != nil {
			t.Fatal(err)
		}
		s := envelope.New(mem, r)
		whole, err := envelope.Open(r, "chunks/x", data)
		if err != nil {
			if !errors.Is(err, envelope.ErrCorrupt) && !errors.Is(err, envelope.ErrUnknownKey) && !errors.Is(err, envelope.ErrWrongKey) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
		}
		got, rerr := s.GetRange(ctx, "chunks/x", off, length)
		if err == nil && envelope.IsSealed(data) {
			want, werr := memWith(t, "chunks/x", whole).GetRange(ctx, "chunks/x", off, length)
			if !bytes.Equal(got, want) || (rerr == nil) != (werr == nil) {
				t.Fatalf("GetRange(%d, %d) = %d bytes, %v; whole object gives %d bytes, %v", off, length, len(got), rerr, len(want), werr)
			}
			c, cerr := chunk.Decode(whole)
			if cerr == nil {
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
