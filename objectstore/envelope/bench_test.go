package envelope_test

import (
	"crypto/rand"
	"testing"

	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/envelope"
)

// BenchmarkEnvelope measures sealing an 8 MiB chunk (the default flush
// size) and opening it whole. BenchmarkGetRange reads one 64 KiB batch of
// it by range from memory, with the data key cached, against the same read
// of the plaintext.
func BenchmarkEnvelope(b *testing.B) {
	r, data := benchChunk(b)
	sealed, err := envelope.Seal(r, "chunks/x", data)
	if err != nil {
		b.Fatal(err)
	}
	for name, fn := range map[string]func() ([]byte, error){
		"seal": func() ([]byte, error) { return envelope.Seal(r, "chunks/x", data) },
		"open": func() ([]byte, error) { return envelope.Open(r, "chunks/x", sealed) },
	} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGetRange(b *testing.B) {
	r, data := benchChunk(b)
	for _, tc := range []struct {
		name  string
		store objectstore.Store
	}{
		{"clear", objectstore.NewMemory()},
		{"sealed", envelope.New(objectstore.NewMemory(), r)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if err := tc.store.Put(b.Context(), "chunks/x", data); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(64 << 10)
			off := int64(0)
			for b.Loop() {
				if _, err := tc.store.GetRange(b.Context(), "chunks/x", off+1000, 64<<10); err != nil {
					b.Fatal(err)
				}
				off = (off + 64<<10) % (8<<20 - 128<<10)
			}
		})
	}
}

// benchChunk returns a keyring and 8 MiB of random bytes.
func benchChunk(b *testing.B) (*envelope.Keyring, []byte) {
	r, _ := ring(b, "k1")
	data := make([]byte, 8<<20)
	rand.Read(data)
	return r, data
}
