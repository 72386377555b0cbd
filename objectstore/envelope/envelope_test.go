package envelope_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/envelope"
	"github.com/mambamq/mamba/objectstore/miniostore"
	"github.com/mambamq/mamba/objectstore/storetest"
)

// ring returns a keyring of the given ids with random keys, the first
// active, and its text form.
func ring(t testing.TB, ids ...string) (*envelope.Keyring, string) {
	t.Helper()
	var text strings.Builder
	for _, id := range ids {
		k := make([]byte, envelope.KeySize)
		if _, err := rand.Read(k); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&text, "%s:%s\n", id, base64.StdEncoding.EncodeToString(k))
	}
	r, err := envelope.ParseKeyring([]byte(text.String()), false)
	if err != nil {
		t.Fatal(err)
	}
	return r, text.String()
}

func TestConformance(t *testing.T) {
	r, _ := ring(t, "k1")
	storetest.RunWith(t, func(t *testing.T) objectstore.Store {
		return envelope.New(objectstore.NewMemory(), r)
	}, storetest.Options{StoredListSizes: true})
}

// Every range of objects around segment boundaries reads back what a
// plaintext store returns, errors included, and through a fresh Store (no
// cached data key) as well as the writer.
func TestRangesAcrossSegments(t *testing.T) {
	r, _ := ring(t, "k1")
	mem := objectstore.NewMemory()
	plain := objectstore.NewMemory()
	w := envelope.New(mem, r)
	seg := 1 << envelope.SegmentShift
	ctx := t.Context()
	for _, n := range []int{0, 1, seg - 1, seg, seg + 1, 2 * seg, 3*seg + 5} {
		data := make([]byte, n)
		rand.Read(data)
		key := fmt.Sprintf("chunks/%d", n)
		if err := w.Put(ctx, key, data); err != nil {
			t.Fatal(err)
		}
		if err := plain.Put(ctx, key, data); err != nil {
			t.Fatal(err)
		}
		stored, _ := mem.Get(ctx, key)
		if len(stored) <= n || !envelope.IsSealed(stored) {
			t.Fatalf("object of %d bytes stored as %d bytes, sealed %v", n, len(stored), envelope.IsSealed(stored))
		}
		if got := envelope.PlainSize(int64(len(stored)), int64(seg)); got != int64(n) {
			t.Fatalf("PlainSize(%d) = %d, want %d", len(stored), got, n)
		}
		fresh := envelope.New(mem, r)
		for _, off := range []int{0, 1, seg - 1, seg, seg + 1, n - 1, n, n + 1} {
			for _, length := range []int{0, 1, 2, seg, seg + 2, 1 << 30} {
				if off < 0 {
					continue
				}
				want, wantErr := plain.GetRange(ctx, key, int64(off), int64(length))
				for name, s := range map[string]*envelope.Store{"writer": w, "fresh": fresh} {
					got, err := s.GetRange(ctx, key, int64(off), int64(length))
					if !bytes.Equal(got, want) || errors.Is(err, objectstore.ErrInvalidRange) != errors.Is(wantErr, objectstore.ErrInvalidRange) || (err == nil) != (wantErr == nil) {
						t.Fatalf("%s: size %d GetRange(%d, %d) = %d bytes, %v; want %d bytes, %v", name, n, off, length, len(got), err, len(want), wantErr)
					}
				}
			}
		}
	}
}

// A bucket written before encryption was turned on keeps reading, whole
// and by range; a store without a keyring names the key id of a sealed
// object it cannot read.
func TestMixedBucketAndMissingKey(t *testing.T) {
	r, _ := ring(t, "k1")
	mem := objectstore.NewMemory()
	ctx := t.Context()
	clear := envelope.New(mem, nil)
	if err := clear.Put(ctx, "chunks/old", []byte("old plaintext")); err != nil {
		t.Fatal(err)
	}
	s := envelope.New(mem, r)
	if err := s.Put(ctx, "chunks/new", []byte("new secret value")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetRange(ctx, "chunks/old", 4, 9); err != nil || string(got) != "plaintext" {
		t.Fatalf("old object by range = %q, %v", got, err)
	}
	if got, err := s.Get(ctx, "chunks/old"); err != nil || string(got) != "old plaintext" {
		t.Fatalf("old object = %q, %v", got, err)
	}
	raw, _ := mem.Get(ctx, "chunks/new")
	if bytes.Contains(raw, []byte("secret")) {
		t.Fatal("the stored object holds its plaintext")
	}
	for _, read := range []func() ([]byte, error){
		func() ([]byte, error) { return clear.Get(ctx, "chunks/new") },
		func() ([]byte, error) { return clear.GetRange(ctx, "chunks/new", 0, 100) },
	} {
		_, err := read()
		if !errors.Is(err, envelope.ErrUnknownKey) || !strings.Contains(err.Error(), `"k1"`) {
			t.Fatalf("read without a keyring: %v, want ErrUnknownKey naming k1", err)
		}
	}
	other, _ := ring(t, "k2")
	_, err := envelope.New(mem, other).GetRange(ctx, "chunks/new", 4, 6)
	if !errors.Is(err, envelope.ErrUnknownKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("read with another keyring: %v, want ErrUnknownKey naming k1", err)
	}
	// Same id, other key material.
	wrong, wrongText := ring(t, "k1")
	_, err = envelope.New(mem, wrong).Get(ctx, "chunks/new")
	if !errors.Is(err, envelope.ErrWrongKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("read with other key material: %v, want ErrWrongKey naming k1", err)
	}
	if strings.Contains(err.Error(), strings.TrimPrefix(strings.TrimSpace(wrongText), "k1:")) {
		t.Fatal("error message holds key material")
	}
}

// Rotation: a keyring with a new active key reads objects sealed under the
// old one and seals new ones under the new one.
func TestRotation(t *testing.T) {
	_, oldText := ring(t, "k1")
	_, newText := ring(t, "k2")
	old, _ := envelope.ParseKeyring([]byte(oldText), false)
	rotated, err := envelope.ParseKeyring([]byte(newText+"# previous\n"+oldText), false)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Active() != "k2" {
		t.Fatalf("active key = %q, want the first, k2", rotated.Active())
	}
	mem := objectstore.NewMemory()
	ctx := t.Context()
	if err := envelope.New(mem, old).Put(ctx, "a", []byte("sealed by k1")); err != nil {
		t.Fatal(err)
	}
	s := envelope.New(mem, rotated)
	if err := s.Put(ctx, "b", []byte("sealed by k2")); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"a": "sealed by k1", "b": "sealed by k2"} {
		if got, err := s.Get(ctx, key); err != nil || string(got) != want {
			t.Fatalf("%s = %q, %v", key, got, err)
		}
		raw, _ := mem.Get(ctx, key)
		h, err := envelope.ParseHeader(key, raw)
		if err != nil || h.KeyID != want[len(want)-2:] {
			t.Fatalf("%s header key id = %q, %v", key, h.KeyID, err)
		}
	}
	if _, err := envelope.New(mem, old).Get(ctx, "b"); !errors.Is(err, envelope.ErrUnknownKey) {
		t.Fatalf("old keyring reading a k2 object: %v", err)
	}
}

// Altered, truncated or moved objects fail authentication.
func TestTamperingDetected(t *testing.T) {
	r, _ := ring(t, "k1")
	mem := objectstore.NewMemory()
	s := envelope.New(mem, r)
	ctx := t.Context()
	data := bytes.Repeat([]byte("x"), 3<<envelope.SegmentShift)
	if err := s.Put(ctx, "a", data); err != nil {
		t.Fatal(err)
	}
	raw, _ := mem.Get(ctx, "a")
	full := 1<<envelope.SegmentShift + envelope.TagSize
	cases := map[string][]byte{
		"flipped":   func() []byte { b := bytes.Clone(raw); b[len(b)/2] ^= 1; return b }(),
		"header":    func() []byte { b := bytes.Clone(raw); b[60] ^= 1; return b }(),
		"truncated": raw[:envelope.HeaderSize+2*full],
		"swapped":   append(append(append(bytes.Clone(raw[:envelope.HeaderSize]), raw[envelope.HeaderSize+full:envelope.HeaderSize+2*full]...), raw[envelope.HeaderSize:envelope.HeaderSize+full]...), raw[envelope.HeaderSize+2*full:]...),
	}
	for name, b := range cases {
		if _, err := envelope.Open(r, "a", b); err == nil {
			t.Errorf("%s: Open succeeded", name)
		}
	}
	if _, err := envelope.Open(r, "b", raw); !errors.Is(err, envelope.ErrWrongKey) {
		t.Errorf("object moved to another key: %v", err)
	}
	// A range read of a truncated object that ends on a segment boundary.
	if err := mem.Put(ctx, "a", cases["truncated"]); err != nil {
		t.Fatal(err)
	}
	if _, err := envelope.New(mem, r).GetRange(ctx, "a", 0, int64(len(data))); !errors.Is(err, envelope.ErrCorrupt) {
		t.Errorf("range over a truncated object: %v, want ErrCorrupt", err)
	}
}

func TestParseKeyring(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, bad := range []string{
		"",
		"# only a comment\n",
		"k1:" + base64.StdEncoding.EncodeToString(make([]byte, 16)),
		"k1:not base64!",
		"k1:" + key + "\nk1:" + key,
		"bad id:" + key,
		strings.Repeat("x", 33) + ":" + key,
		key, // no id in a file
	} {
		if _, err := envelope.ParseKeyring([]byte(bad), false); err == nil {
			t.Errorf("ParseKeyring(%q) succeeded", bad)
		} else if strings.Contains(err.Error(), key) {
			t.Errorf("error %v holds key material", err)
		}
	}
	r, err := envelope.ParseKeyring([]byte(key), true)
	if err != nil || r.Active() != envelope.DefaultKeyID {
		t.Fatalf("bare key: %v, %v", r, err)
	}
}

func TestLoadKeyring(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("new:"+key+"\nold:"+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	none := func(string) (string, bool) { return "", false }
	env := func(v string) func(string) (string, bool) {
		return func(name string) (string, bool) { return v, name == envelope.EnvKey }
	}
	if r, err := envelope.LoadKeyring("", none); r != nil || err != nil {
		t.Fatalf("nothing set: %v, %v", r, err)
	}
	if r, err := envelope.LoadKeyring(path, none); err != nil || strings.Join(r.IDs(), ",") != "new,old" {
		t.Fatalf("file: %v, %v", r, err)
	}
	if r, err := envelope.LoadKeyring("", env("a:"+key+",b:"+key)); err != nil || strings.Join(r.IDs(), ",") != "a,b" {
		t.Fatalf("env: %v, %v", r, err)
	}
	if r, err := envelope.LoadKeyring("", env(key)); err != nil || r.Active() != envelope.DefaultKeyID {
		t.Fatalf("bare env key: %v, %v", r, err)
	}
	if _, err := envelope.LoadKeyring(path, env(key)); err == nil {
		t.Fatal("file and environment both set: no error")
	}
	if _, err := envelope.LoadKeyring(filepath.Join(t.TempDir(), "missing"), none); err == nil {
		t.Fatal("missing file: no error")
	}
}

// The suite again on a real MinIO through minio-go, whose ranged GETs
// answer short at the end of an object as S3 does: every range the
// envelope maps to segments reads back right there too.
func TestConformanceOnMinIO(t *testing.T) {
	m := testserver.StartMinIO(t)
	r, _ := ring(t, "k1")
	var n atomic.Int32
	storetest.RunWith(t, func(t *testing.T) objectstore.Store {
		s, err := miniostore.New(miniostore.Config{
			Endpoint:    m.Endpoint,
			Bucket:      m.CreateBucket(t, fmt.Sprintf("sealed-%d", n.Add(1))),
			Region:      "us-east-1",
			PathStyle:   true,
			Credentials: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		})
		if err != nil {
			t.Fatal(err)
		}
		return envelope.New(s, r)
	}, storetest.Options{StoredListSizes: true})
}
