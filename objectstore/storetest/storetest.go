// Package storetest is the conformance suite for objectstore.Store. Every
// backend runs it from its own tests, the S3 backends against a real MinIO
// server, so that all stores answer every call the same way.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mambamq/mamba/objectstore"
)

// NewStore returns an empty store for one subtest. The store must not share
// objects with stores returned by other calls.
type NewStore func(t *testing.T) objectstore.Store

// Options adjusts the suite to a store that deliberately differs.
type Options struct {
	// StoredListSizes says List reports the size an object takes in the
	// store it wraps rather than its length (an encrypting wrapper), so
	// list sizes are not checked.
	StoredListSizes bool
}

// Run runs every conformance test against stores made by newStore.
func Run(t *testing.T, newStore NewStore) { RunWith(t, newStore, Options{}) }

// RunWith is Run with options.
func RunWith(t *testing.T, newStore NewStore, opts Options) {
	testList := func(t *testing.T, s objectstore.Store) { testList(t, s, opts) }
	tests := []struct {
		name string
		fn   func(*testing.T, objectstore.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyObject", testEmptyObject},
		{"Ranges", testRanges},
		{"Missing", testMissing},
		{"Overwrite", testOverwrite},
		{"Delete", testDelete},
		{"ListOrderAndPrefixes", testList},
		{"ListAfter", testListAfter},
		{"LargeObject", testLargeObject},
		{"Concurrent", testConcurrent},
		{"ContextCancellation", testContext},
		{"UnusualKeys", testUnusualKeys},
		{"InvalidKeys", testInvalidKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPut(t *testing.T, s objectstore.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(ctxFor(t), key, data); err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

func mustGet(t *testing.T, s objectstore.Store, key string) []byte {
	t.Helper()
	got, err := s.Get(ctxFor(t), key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return got
}

func listKeys(t *testing.T, s objectstore.Store, prefix string) []string {
	t.Helper()
	keys := []string{}
	for info, err := range s.List(ctxFor(t), prefix) {
		if err != nil {
			t.Fatalf("list %q: %v", prefix, err)
		}
		keys = append(keys, info.Key)
	}
	return keys
}

func testRoundTrip(t *testing.T, s objectstore.Store) {
	data := randomBytes(t, 4096+17)
	mustPut(t, s, "objects/01-roundtrip", data)
	if got := mustGet(t, s, "objects/01-roundtrip"); !bytes.Equal(got, data) {
		t.Fatalf("get returned %d bytes that differ from the %d put", len(got), len(data))
	}
	info, err := s.Stat(ctxFor(t), "objects/01-roundtrip")
	if err != nil {
		t.Fatal(err)
	}
	if info.Key != "objects/01-roundtrip" || info.Size != int64(len(data)) {
		t.Fatalf("stat = %+v, want key objects/01-roundtrip size %d", info, len(data))
	}
	if info.ModTime.IsZero() || time.Since(info.ModTime) > time.Hour || time.Until(info.ModTime) > time.Hour {
		t.Fatalf("stat mod time %v is not close to now", info.ModTime)
	}
	// The store must not keep a reference to the caller's buffer.
	data[0] ^= 0xff
	if got := mustGet(t, s, "objects/01-roundtrip"); bytes.Equal(got, data) {
		t.Fatal("changing the caller's buffer after put changed the stored object")
	}
}

func testEmptyObject(t *testing.T, s objectstore.Store) {
	mustPut(t, s, "empty", nil)
	if got := mustGet(t, s, "empty"); len(got) != 0 {
		t.Fatalf("get of empty object returned %d bytes", len(got))
	}
	info, err := s.Stat(ctxFor(t), "empty")
	if err != nil || info.Size != 0 {
		t.Fatalf("stat = %+v, %v; want size 0", info, err)
	}
	got, err := s.GetRange(ctxFor(t), "empty", 0, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("GetRange(0, 0) of empty object = %d bytes, %v; want 0 bytes, nil", len(got), err)
	}
	if _, err := s.GetRange(ctxFor(t), "empty", 0, 1); !errors.Is(err, objectstore.ErrInvalidRange) {
		t.Fatalf("GetRange(0, 1) of empty object: err = %v, want ErrInvalidRange", err)
	}
}

func testRanges(t *testing.T, s objectstore.Store) {
	const size = 1000
	data := randomBytes(t, size)
	mustPut(t, s, "ranged", data)
	tests := []struct {
		name        string
		off, length int64
		want        []byte
		err         error
	}{
		{"whole", 0, size, data, nil},
		{"first byte", 0, 1, data[:1], nil},
		{"middle", 100, 250, data[100:350], nil},
		{"last byte", size - 1, 1, data[size-1:], nil},
		{"tail", 990, 10, data[990:], nil},
		{"zero length at start", 0, 0, []byte{}, nil},
		{"zero length in middle", 500, 0, []byte{}, nil},
		{"zero length at end", size, 0, []byte{}, nil},
		{"runs past the end", 990, 100, data[990:], nil},
		{"huge length", 10, 1 << 40, data[10:], nil},
		{"starts at the end", size, 1, nil, objectstore.ErrInvalidRange},
		{"starts past the end", size + 5, 1, nil, objectstore.ErrInvalidRange},
		{"zero length past the end", size + 1, 0, nil, objectstore.ErrInvalidRange},
		{"negative offset", -1, 10, nil, objectstore.ErrInvalidRange},
		{"negative length", 10, -1, nil, objectstore.ErrInvalidRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.GetRange(ctxFor(t), "ranged", tt.off, tt.length)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("GetRange(%d, %d): err = %v, want %v", tt.off, tt.length, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetRange(%d, %d): %v", tt.off, tt.length, err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("GetRange(%d, %d) returned %d bytes, want %d (content differs: %v)",
					tt.off, tt.length, len(got), len(tt.want), !bytes.Equal(got, tt.want))
			}
		})
	}
}

func testMissing(t *testing.T, s objectstore.Store) {
	mustPut(t, s, "present/a", []byte("x"))
	for _, key := range []string{"missing", "present", "present/b", "present/a/deeper"} {
		if _, err := s.Get(ctxFor(t), key); !errors.Is(err, objectstore.ErrNotExist) {
			t.Errorf("Get(%q): err = %v, want ErrNotExist", key, err)
		}
		if _, err := s.GetRange(ctxFor(t), key, 0, 1); !errors.Is(err, objectstore.ErrNotExist) {
			t.Errorf("GetRange(%q): err = %v, want ErrNotExist", key, err)
		}
		if _, err := s.GetRange(ctxFor(t), key, 0, 0); !errors.Is(err, objectstore.ErrNotExist) {
			t.Errorf("GetRange(%q, 0, 0): err = %v, want ErrNotExist", key, err)
		}
		if _, err := s.Stat(ctxFor(t), key); !errors.Is(err, objectstore.ErrNotExist) {
			t.Errorf("Stat(%q): err = %v, want ErrNotExist", key, err)
		}
		if err := s.Delete(ctxFor(t), key); err != nil {
			t.Errorf("Delete(%q) of a missing key: %v", key, err)
		}
		if objectstore.IsRetryable(fmt.Errorf("wrapped: %w", objectstore.NotExist(key))) {
			t.Errorf("a missing key must not be retryable")
		}
	}
}

func testOverwrite(t *testing.T, s objectstore.Store) {
	first := randomBytes(t, 3000)
	second := randomBytes(t, 1200)
	mustPut(t, s, "over/write", first)
	mustPut(t, s, "over/write", second)
	if got := mustGet(t, s, "over/write"); !bytes.Equal(got, second) {
		t.Fatalf("after overwrite get returned %d bytes, want the %d of the second put", len(got), len(second))
	}
	info, err := s.Stat(ctxFor(t), "over/write")
	if err != nil || info.Size != int64(len(second)) {
		t.Fatalf("stat after overwrite = %+v, %v; want size %d", info, err, len(second))
	}
	got, err := s.GetRange(ctxFor(t), "over/write", 1100, 500)
	if err != nil || !bytes.Equal(got, second[1100:]) {
		t.Fatalf("GetRange after overwrite = %d bytes, %v; want the last 100 bytes of the second put", len(got), err)
	}
	if keys := listKeys(t, s, "over/"); !slices.Equal(keys, []string{"over/write"}) {
		t.Fatalf("list after overwrite = %q", keys)
	}
}

func testDelete(t *testing.T, s objectstore.Store) {
	mustPut(t, s, "d/1", []byte("one"))
	mustPut(t, s, "d/2", []byte("two"))
	if err := s.Delete(ctxFor(t), "d/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctxFor(t), "d/1"); !errors.Is(err, objectstore.ErrNotExist) {
		t.Fatalf("get after delete: err = %v, want ErrNotExist", err)
	}
	if keys := listKeys(t, s, "d/"); !slices.Equal(keys, []string{"d/2"}) {
		t.Fatalf("list after delete = %q, want [d/2]", keys)
	}
	if err := s.Delete(ctxFor(t), "d/1"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	// A key whose "directory" was emptied by the delete can be written again,
	// and so can a key named like that directory.
	if err := s.Delete(ctxFor(t), "d/2"); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "d", []byte("now a file"))
	if got := mustGet(t, s, "d"); string(got) != "now a file" {
		t.Fatalf("get d = %q", got)
	}
}

func testList(t *testing.T, s objectstore.Store, opts Options) {
	// Keys chosen so that byte order differs from a naive directory walk:
	// '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f), '0' (0x30) after.
	keys := []string{
		"p/x-1", "p/x.1", "p/x/1", "p/x/2/deep", "p/x0", "p/xa", "p/y",
		"p0", "pq", "q/r", "a",
	}
	for i, k := range keys {
		mustPut(t, s, k, []byte(fmt.Sprint(i)))
	}
	sorted := slices.Sorted(slices.Values(keys))
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", sorted},
		{"p", []string{"p/x-1", "p/x.1", "p/x/1", "p/x/2/deep", "p/x0", "p/xa", "p/y", "p0", "pq"}},
		{"p/", []string{"p/x-1", "p/x.1", "p/x/1", "p/x/2/deep", "p/x0", "p/xa", "p/y"}},
		{"p/x", []string{"p/x-1", "p/x.1", "p/x/1", "p/x/2/deep", "p/x0", "p/xa"}},
		{"p/x/", []string{"p/x/1", "p/x/2/deep"}},
		{"p/x/2", []string{"p/x/2/deep"}},
		{"p/x/2/deep", []string{"p/x/2/deep"}},
		{"p/x/2/deeper", []string{}},
		{"p/z", []string{}},
		{"nothing/", []string{}},
		{"z", []string{}},
	}
	for _, tt := range tests {
		if got := listKeys(t, s, tt.prefix); !slices.Equal(got, tt.want) {
			t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
	// Sizes are reported, and stopping early is allowed.
	n := 0
	for info, err := range s.List(ctxFor(t), "p/") {
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != 1 && !opts.StoredListSizes {
			t.Errorf("list reports size %d for %s, want 1", info.Size, info.Key)
		}
		n++
		if n == 2 {
			break
		}
	}
}

// testListAfter checks objectstore.ListAfter, which uses the store's
// ListerAfter when it has one: only keys after the given one, in order,
// under the prefix.
func testListAfter(t *testing.T, s objectstore.Store) {
	for _, k := range []string{"c/1", "c/2", "c/2x", "c/3", "d/1"} {
		mustPut(t, s, k, []byte("x"))
	}
	for _, tt := range []struct {
		after string
		want  []string
	}{
		{"", []string{"c/1", "c/2", "c/2x", "c/3"}},
		{"c/1", []string{"c/2", "c/2x", "c/3"}},
		{"c/2", []string{"c/2x", "c/3"}},
		{"c/25", []string{"c/2x", "c/3"}}, // a key with no object; "x" sorts after "5"
		{"c/3", []string{}},
		{"b", []string{"c/1", "c/2", "c/2x", "c/3"}},
	} {
		got := []string{}
		for info, err := range objectstore.ListAfter(ctxFor(t), s, "c/", tt.after) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, info.Key)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ListAfter(c/, %q) = %q, want %q", tt.after, got, tt.want)
		}
	}
}

func testLargeObject(t *testing.T, s objectstore.Store) {
	data := randomBytes(t, 16<<20+3)
	mustPut(t, s, "large/object", data)
	got := mustGet(t, s, "large/object")
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("16 MiB round trip returned %d bytes with a different digest", len(got))
	}
	off := int64(8<<20 - 5)
	part, err := s.GetRange(ctxFor(t), "large/object", off, 1<<20)
	if err != nil || !bytes.Equal(part, data[off:off+1<<20]) {
		t.Fatalf("1 MiB range from the middle: %d bytes, %v", len(part), err)
	}
	tail, err := s.GetRange(ctxFor(t), "large/object", int64(len(data)-1), 1)
	if err != nil || len(tail) != 1 || tail[0] != data[len(data)-1] {
		t.Fatalf("last byte of the large object: %v, %v", tail, err)
	}
}

func testConcurrent(t *testing.T, s objectstore.Store) {
	const workers, perWorker = 8, 6
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				key := fmt.Sprintf("conc/%d/%d", w, i)
				data := bytes.Repeat([]byte{byte(w*perWorker + i)}, 1000+w*100+i)
				if err := s.Put(ctxFor(t), key, data); err != nil {
					t.Errorf("put %s: %v", key, err)
					return
				}
				got, err := s.Get(ctxFor(t), key)
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("get %s: %d bytes, %v", key, len(got), err)
					return
				}
			}
		})
	}
	// Writers race on one key while readers read it: every read must see
	// one writer's object in full, never a mix or a partial write.
	mustPut(t, s, "conc/shared", bytes.Repeat([]byte{0xff}, 512))
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				if w%2 == 0 {
					data := bytes.Repeat([]byte{byte(w)}, 512*(w+1))
					if err := s.Put(ctxFor(t), "conc/shared", data); err != nil {
						t.Errorf("put shared: %v", err)
					}
					continue
				}
				got, err := s.Get(ctxFor(t), "conc/shared")
				if err != nil {
					t.Errorf("get shared (read %d): %v", i, err)
					continue
				}
				if len(got) == 0 || len(got)%512 != 0 || !bytes.Equal(got, bytes.Repeat(got[:1], len(got))) {
					t.Errorf("get shared returned a torn object of %d bytes", len(got))
				}
			}
		})
	}
	wg.Wait()
	if got := listKeys(t, s, "conc/"); len(got) != workers*perWorker+1 {
		t.Fatalf("list after concurrent puts found %d objects, want %d", len(got), workers*perWorker+1)
	}
}

func testContext(t *testing.T, s objectstore.Store) {
	mustPut(t, s, "ctx/present", []byte("data"))
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()
	for name, ctx := range map[string]context.Context{"cancelled": cancelled, "expired": expired} {
		want := ctx.Err()
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, want) {
				t.Errorf("%s with %s context: err = %v, want %v", op, name, err, want)
			}
			if objectstore.IsRetryable(err) {
				t.Errorf("%s with %s context: error %v must not be retryable", op, name, err)
			}
		}
		check("Put", s.Put(ctx, "ctx/new-"+name, []byte("x")))
		_, err := s.Get(ctx, "ctx/present")
		check("Get", err)
		_, err = s.GetRange(ctx, "ctx/present", 0, 2)
		check("GetRange", err)
		_, err = s.Stat(ctx, "ctx/present")
		check("Stat", err)
		check("Delete", s.Delete(ctx, "ctx/present"))
		var listErr error
		for _, err := range s.List(ctx, "ctx/") {
			if err != nil {
				listErr = err
				break
			}
		}
		check("List", listErr)
		if _, err := s.Stat(ctxFor(t), "ctx/new-"+name); !errors.Is(err, objectstore.ErrNotExist) {
			t.Errorf("a put with a %s context wrote the object (stat err = %v)", name, err)
		}
	}
	if got := mustGet(t, s, "ctx/present"); string(got) != "data" {
		t.Fatalf("a delete with a done context removed the object")
	}
}

// UnusualKeys are legal keys with characters that need escaping in URLs,
// HTTP headers or shells.
var UnusualKeys = []string{
	"with space/and  two",
	"unicode/ñandú/日本語/😀",
	"plus+equals=amp&",
	"percent%20encoded%2F",
	"quote'double\"",
	"hash#question?",
	"tilde~colon:semi;comma,",
	"brackets[]{}()<>",
	"star*at@dollar$bang!caret^pipe|",
	"backtick`",
	"-leading-dash",
	"..dots../x..y",
	".hidden/.also",
	"trailing.dot.",
	"long/" + string(bytes.Repeat([]byte("k"), 200)),
}

func testUnusualKeys(t *testing.T, s objectstore.Store) {
	for i, key := range UnusualKeys {
		if err := objectstore.ValidateKey(key); err != nil {
			t.Fatalf("suite key %q is not valid: %v", key, err)
		}
		data := []byte(fmt.Sprintf("object %d for %s", i, key))
		mustPut(t, s, key, data)
		if got := mustGet(t, s, key); !bytes.Equal(got, data) {
			t.Errorf("get %q = %q, want %q", key, got, data)
		}
		if info, err := s.Stat(ctxFor(t), key); err != nil || info.Key != key {
			t.Errorf("stat %q = %+v, %v", key, info, err)
		}
		if got := listKeys(t, s, key); !slices.Equal(got, []string{key}) {
			t.Errorf("list with prefix %q = %q", key, got)
		}
	}
	want := slices.Sorted(slices.Values(UnusualKeys))
	if got := listKeys(t, s, ""); !slices.Equal(got, want) {
		t.Errorf("list of unusual keys = %q, want %q", got, want)
	}
	for _, key := range UnusualKeys {
		if err := s.Delete(ctxFor(t), key); err != nil {
			t.Errorf("delete %q: %v", key, err)
		}
	}
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Errorf("objects left after deleting every unusual key: %q", got)
	}
}

func testInvalidKeys(t *testing.T, s objectstore.Store) {
	for _, key := range []string{
		"", "/abs", "trailing/", "a//b", "../escape", "a/../../b", "a/./b", ".", "..",
		"nul\x00", "newline\n", "back\\slash", "\xff\xfe", string(bytes.Repeat([]byte("k"), objectstore.MaxKeyLen+1)),
	} {
		if err := s.Put(ctxFor(t), key, []byte("x")); !errors.Is(err, objectstore.ErrInvalidKey) {
			t.Errorf("Put(%q): err = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Get(ctxFor(t), key); !errors.Is(err, objectstore.ErrInvalidKey) {
			t.Errorf("Get(%q): err = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctxFor(t), key); !errors.Is(err, objectstore.ErrInvalidKey) {
			t.Errorf("Delete(%q): err = %v, want ErrInvalidKey", key, err)
		}
	}
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Errorf("invalid puts left objects: %q", got)
	}
}
