package filestore_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/filestore"
	"github.com/mambamq/mamba/objectstore/storetest"
)

func open(t *testing.T, dir string) *filestore.Store {
	t.Helper()
	s, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) objectstore.Store { return open(t, t.TempDir()) })
}

func TestKeysStayInsideRoot(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	s := open(t, root)
	outside := filepath.Join(parent, "secret")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A symbolic link planted inside the root must not lead out of it.
	if err := os.Symlink(parent, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := s.Get(ctx, "link/secret"); err == nil {
		t.Fatal("read through a symlink escaped the root")
	}
	if err := s.Put(ctx, "link/secret", []byte("overwritten")); err == nil {
		t.Fatal("write through a symlink escaped the root")
	}
	for _, key := range []string{"../secret", "a/../../secret", "/etc/passwd"} {
		if _, err := s.Get(ctx, key); !errors.Is(err, objectstore.ErrInvalidKey) {
			t.Errorf("Get(%q): err = %v, want ErrInvalidKey", key, err)
		}
	}
	if got, _ := os.ReadFile(outside); string(got) != "secret" {
		t.Fatalf("file outside the root changed: %q", got)
	}
}

func TestReservedTempDir(t *testing.T) {
	s := open(t, t.TempDir())
	if err := s.Put(t.Context(), ".mamba-tmp/x", []byte("x")); !errors.Is(err, objectstore.ErrInvalidKey) {
		t.Fatalf("put into the temp dir: err = %v, want ErrInvalidKey", err)
	}
	if err := s.Put(t.Context(), "k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for info, err := range s.List(t.Context(), "") {
		if err != nil || info.Key != "k" {
			t.Fatalf("list = %+v, %v; want only k", info, err)
		}
	}
	left, err := os.ReadDir(filepath.Join(s.Dir(), ".mamba-tmp"))
	if err != nil || len(left) != 0 {
		t.Fatalf("temp files left after a put: %v, %v", left, err)
	}
}

func TestKeyConflict(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := t.Context()
	if err := s.Put(ctx, "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a", []byte("x")); !errors.Is(err, filestore.ErrKeyConflict) {
		t.Fatalf("put a over directory a/: err = %v, want ErrKeyConflict", err)
	}
	if err := s.Put(ctx, "a/b/c", []byte("x")); !errors.Is(err, filestore.ErrKeyConflict) {
		t.Fatalf("put a/b/c under object a/b: err = %v, want ErrKeyConflict", err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, objectstore.ErrNotExist) {
		t.Fatalf("get of a directory: err = %v, want ErrNotExist", err)
	}
}

func TestReopenSeesObjects(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Put(t.Context(), "chunks/x", []byte("durable")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	got, err := open(t, dir).Get(t.Context(), "chunks/x")
	if err != nil || string(got) != "durable" {
		t.Fatalf("after reopen: %q, %v", got, err)
	}
}
