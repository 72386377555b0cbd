// Package filestore is an objectstore.Store on a local directory, for
// development, single-machine deployments and tests.
//
// A key maps to the file root/key, with "/" as the directory separator, so
// the tree is easy to inspect. Writes are atomic and durable: data goes to a
// temporary file under root/.mamba-tmp, which is fsynced, renamed into place,
// and then the parent directory is fsynced (and so is every directory the
// write created). All file access goes through os.Root, so no key, symbolic
// link or concurrent rename can reach outside the root directory.
//
// Like MinIO, the filesystem cannot hold both an object "a" and an object
// "a/b": the second Put of such a pair fails with ErrKeyConflict. Mamba's own
// key layout never does this.
package filestore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mambamq/mamba/objectstore"
)

// tmpDir holds writes in progress. Keys under it are reserved.
const tmpDir = ".mamba-tmp"

// staleTemp is how old a leftover temporary file must be before Open
// removes it: old enough that no live writer can still own it.
const staleTemp = time.Hour

// ErrKeyConflict is returned by Put when the key is a "directory" of other
// objects, or one of its parent "directories" is an object.
var ErrKeyConflict = errors.New("key conflicts with an existing object path")

// Store keeps objects as files under a root directory.
type Store struct {
	root *os.Root
	dir  string
}

var _ objectstore.Store = (*Store)(nil)

// Open opens (creating if needed) the directory dir as a store and removes
// temporary files that an interrupted write left behind.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("open file store: empty directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	s := &Store{root: root, dir: dir}
	if err := root.Mkdir(tmpDir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		root.Close()
		return nil, fmt.Errorf("open file store: %w", err)
	}
	s.removeStaleTemps()
	return s, nil
}

// Close releases the root directory handle.
func (s *Store) Close() error { return s.root.Close() }

// Dir returns the root directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) removeStaleTemps() {
	entries, err := fs.ReadDir(s.root.FS(), tmpDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err == nil && time.Since(info.ModTime()) > staleTemp {
			_ = s.root.Remove(path.Join(tmpDir, e.Name()))
		}
	}
}

func checkKey(key string) error {
	if err := objectstore.ValidateKey(key); err != nil {
		return err
	}
	if key == tmpDir || strings.HasPrefix(key, tmpDir+"/") {
		return fmt.Errorf("%w: %q is reserved by the file store", objectstore.ErrInvalidKey, tmpDir)
	}
	return nil
}

// Put writes data to a temporary file, fsyncs it, renames it to key and
// fsyncs the directory, so that after a crash the key holds either the old
// object or the new one.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := objectstore.ContextError(ctx, "put", key); err != nil {
		return err
	}
	tmp, err := s.writeTemp(data)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = s.root.Remove(tmp)
		}
	}()
	// A concurrent Delete may remove the parent directory between the
	// mkdir and the rename; a few attempts absorb that race.
	for attempt := 0; ; attempt++ {
		if err := s.mkdirAll(path.Dir(key)); err != nil {
			return fmt.Errorf("put %s: %w", key, conflict(err))
		}
		err = s.root.Rename(tmp, key)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 3 {
			return fmt.Errorf("put %s: %w", key, conflict(err))
		}
	}
	committed = true
	if err := s.syncDir(path.Dir(key)); err != nil {
		return fmt.Errorf("put %s: sync directory: %w", key, err)
	}
	return nil
}

// conflict maps the errors of a file/directory clash to ErrKeyConflict.
func conflict(err error) error {
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) ||
		errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("%w: %w", ErrKeyConflict, err)
	}
	return err
}

func (s *Store) writeTemp(data []byte) (string, error) {
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	name := path.Join(tmpDir, hex.EncodeToString(rnd[:]))
	f, err := s.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = s.root.Remove(name)
		return "", err
	}
	return name, nil
}

// mkdirAll creates dir and its missing parents, fsyncing the parent of each
// directory it creates so that the new entries survive a crash.
func (s *Store) mkdirAll(dir string) error {
	if dir == "." {
		return nil
	}
	if info, err := s.root.Stat(dir); err == nil {
		if !info.IsDir() {
			return syscall.ENOTDIR
		}
		return nil
	}
	if err := s.mkdirAll(path.Dir(dir)); err != nil {
		return err
	}
	if err := s.root.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return s.syncDir(path.Dir(dir))
}

func (s *Store) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// open opens key for reading; a directory or a missing file is ErrNotExist.
func (s *Store) open(ctx context.Context, op, key string) (*os.File, fs.FileInfo, error) {
	if err := checkKey(key); err != nil {
		return nil, nil, err
	}
	if err := objectstore.ContextError(ctx, op, key); err != nil {
		return nil, nil, err
	}
	f, err := s.root.Open(key)
	if err != nil {
		return nil, nil, mapErr(op, key, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s %s: %w", op, key, err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, objectstore.NotExist(key)
	}
	return f, info, nil
}

func mapErr(op, key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return objectstore.NotExist(key)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// Get reads the whole file.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	return s.read(ctx, "get", key, 0, -1)
}

// GetRange reads the requested bytes with one positioned read.
func (s *Store) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if length < 0 {
		// Negative length is a caller error whatever the object; -1 is
		// reserved for read's "to the end".
		return nil, fmt.Errorf("%w: %s: length %d", objectstore.ErrInvalidRange, key, length)
	}
	return s.read(ctx, "get range", key, off, length)
}

func (s *Store) read(ctx context.Context, op, key string, off, length int64) ([]byte, error) {
	f, info, err := s.open(ctx, op, key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if length < 0 {
		length = info.Size()
	}
	end, err := objectstore.CheckRange(key, off, length, info.Size())
	if err != nil {
		return nil, err
	}
	buf := make([]byte, end-off)
	if _, err := f.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && len(buf) == 0) {
		return nil, fmt.Errorf("%s %s: %w", op, key, err)
	}
	return buf, nil
}

// Stat reports the file's size and modification time.
func (s *Store) Stat(ctx context.Context, key string) (objectstore.ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return objectstore.ObjectInfo{}, err
	}
	if err := objectstore.ContextError(ctx, "stat", key); err != nil {
		return objectstore.ObjectInfo{}, err
	}
	info, err := s.root.Stat(key)
	if err != nil {
		return objectstore.ObjectInfo{}, mapErr("stat", key, err)
	}
	if !info.Mode().IsRegular() {
		return objectstore.ObjectInfo{}, objectstore.NotExist(key)
	}
	return objectstore.ObjectInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()}, nil
}

// Delete removes the file and then every parent directory it left empty.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := objectstore.ContextError(ctx, "delete", key); err != nil {
		return err
	}
	info, err := s.root.Lstat(key)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if info.IsDir() {
		return nil // a "directory" of other objects is not an object
	}
	if err := s.root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := s.syncDir(path.Dir(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: sync directory: %w", key, err)
	}
	// Empty directories are removed so that listing stays cheap and the
	// directory's name can become an object again. Remove fails on a
	// directory that is not empty, which ends the walk.
	for dir := path.Dir(key); dir != "."; dir = path.Dir(dir) {
		if s.root.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// List walks the tree under the deepest directory that the prefix names,
// visiting entries in key order. Directory names sort as if they ended in
// "/", which makes a depth-first walk yield keys in byte order.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[objectstore.ObjectInfo, error] {
	if err := objectstore.ValidatePrefix(prefix); err != nil {
		return objectstore.ListError(err)
	}
	return func(yield func(objectstore.ObjectInfo, error) bool) {
		start := ""
		if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
			start = prefix[:i]
			if objectstore.ValidateKey(start) != nil {
				return // no valid key can lie under this directory
			}
		}
		if err := objectstore.ContextError(ctx, "list", prefix); err != nil {
			yield(objectstore.ObjectInfo{}, err)
			return
		}
		s.walk(ctx, start, prefix, yield)
	}
}

type walkEntry struct {
	name  string // sort name: directory names end in "/"
	entry fs.DirEntry
}

// walk yields the objects under dir that match prefix. It reports whether
// the caller should continue.
func (s *Store) walk(ctx context.Context, dir, prefix string, yield func(objectstore.ObjectInfo, error) bool) bool {
	name := dir
	if name == "" {
		name = "."
	}
	entries, err := fs.ReadDir(s.root.FS(), name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return true
		}
		yield(objectstore.ObjectInfo{}, fmt.Errorf("list %s: %w", prefix, err))
		return false
	}
	sorted := make([]walkEntry, 0, len(entries))
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			if dir == "" && n == tmpDir {
				continue
			}
			n += "/"
		} else if !e.Type().IsRegular() {
			continue
		}
		sorted = append(sorted, walkEntry{name: n, entry: e})
	}
	slices.SortFunc(sorted, func(a, b walkEntry) int { return strings.Compare(a.name, b.name) })
	for _, we := range sorted {
		if err := objectstore.ContextError(ctx, "list", prefix); err != nil {
			yield(objectstore.ObjectInfo{}, err)
			return false
		}
		key := we.name
		if dir != "" {
			key = dir + "/" + we.name
		}
		if we.entry.IsDir() {
			if strings.HasPrefix(key, prefix) || strings.HasPrefix(prefix, key) {
				if !s.walk(ctx, strings.TrimSuffix(key, "/"), prefix, yield) {
					return false
				}
			}
			continue
		}
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		info, err := we.entry.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted while listing
		}
		if err != nil {
			yield(objectstore.ObjectInfo{}, fmt.Errorf("list %s: %w", prefix, err))
			return false
		}
		if !yield(objectstore.ObjectInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()}, nil) {
			return false
		}
	}
	return true
}
