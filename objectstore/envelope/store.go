package envelope

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"sync"

	"github.com/mambamq/mamba/objectstore"
)

// DefaultCacheEntries bounds the objects whose unwrapped data keys a Store
// keeps for ranged reads: about 1 KiB each (key, cipher state).
const DefaultCacheEntries = 8192

// Store is an objectstore.Store that seals every object it writes with the
// keyring's active key and opens sealed objects it reads; objects stored in
// the clear (written before encryption was turned on) read as they are, so
// a bucket may hold both. With a nil keyring it writes in the clear, and a
// read that sees a sealed object's header fails with ErrUnknownKey naming
// the key id.
//
// A ranged read of a sealed object needs its header: the Store reads it
// with one extra ranged GET the first time it reads a range of that object
// and then keeps the unwrapped data key (for objects it wrote, from the
// write), up to DefaultCacheEntries objects. Chunks, the only objects read
// by range, are never rewritten with other content; a cached key that no
// longer opens an object (it was rewritten) is dropped and the header read
// again.
//
// List and ListAfter report stored sizes, which for a sealed object exceed
// its plaintext by HeaderSize plus TagSize per segment; Stat reports the
// plaintext size.
type Store struct {
	store objectstore.Store
	ring  *Keyring
	cache *keyCache
}

var (
	_ objectstore.Store               = (*Store)(nil)
	_ objectstore.ListerAfter         = (*Store)(nil)
	_ objectstore.ReplicationReporter = (*Store)(nil)
)

// New returns store wrapped so that objects are sealed with ring (nil: in
// the clear).
func New(store objectstore.Store, ring *Keyring) *Store {
	return &Store{store: store, ring: ring, cache: newKeyCache(DefaultCacheEntries)}
}

// Keyring returns the keyring the store seals with, nil for none.
func (s *Store) Keyring() *Keyring { return s.ring }

// Put seals data under the active key and writes it; with no keyring it
// writes data as is.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if s.ring == nil {
		return s.store.Put(ctx, key, data)
	}
	if err := objectstore.ValidateKey(key); err != nil {
		return err
	}
	sealed, obj, err := seal(s.ring, key, data)
	if err != nil {
		return err
	}
	if err := s.store.Put(ctx, key, sealed); err != nil {
		s.cache.drop(key)
		return err
	}
	s.cache.put(key, obj)
	return nil
}

// Get reads the whole object and opens it if it is sealed.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.store.Get(ctx, key)
	if err != nil || !IsSealed(b) {
		return b, err
	}
	return openInPlace(s.ring, key, b) // b is this call's own buffer
}

// GetRange reads plaintext bytes [off, off+length) of the object. For a
// sealed object it reads the segments that hold them, with one ranged GET
// once the object's data key is known.
func (s *Store) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if _, err := objectstore.CheckRange(key, off, length, math.MaxInt64); err != nil {
		return nil, err
	}
	if s.ring == nil {
		b, err := s.store.GetRange(ctx, key, off, length)
		if err == nil && off == 0 && IsSealed(b) {
			return nil, s.sealedWithoutKey(ctx, key, b)
		}
		return b, err
	}
	if length == 0 {
		info, err := s.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		_, err = objectstore.CheckRange(key, off, 0, info.Size)
		return []byte{}, err
	}
	for attempt := 0; ; attempt++ {
		obj, cached, err := s.object(ctx, key)
		if err != nil {
			return nil, err
		}
		if obj == nil {
			return s.store.GetRange(ctx, key, off, length)
		}
		b, err := s.readSealed(ctx, key, obj, off, length)
		if err != nil && cached && attempt == 0 && errors.Is(err, ErrCorrupt) {
			s.cache.drop(key) // the object may have been rewritten since
			continue
		}
		return b, err
	}
}

// sealedWithoutKey is the error for a sealed object read with no keyring;
// head holds its first bytes.
func (s *Store) sealedWithoutKey(ctx context.Context, key string, head []byte) error {
	if len(head) < HeaderSize {
		b, err := s.store.GetRange(ctx, key, 0, HeaderSize)
		if err != nil {
			return err
		}
		head = b
	}
	h, err := ParseHeader(key, head)
	if err != nil {
		return err
	}
	_, err = s.ring.key(h.KeyID)
	return fmt.Errorf("open %s: %w", key, err)
}

// object returns the cached or freshly unwrapped data key of the object at
// key, nil for an object in the clear, and whether it came from the cache.
func (s *Store) object(ctx context.Context, key string) (*object, bool, error) {
	if obj, ok := s.cache.get(key); ok {
		return obj, true, nil
	}
	head, err := s.store.GetRange(ctx, key, 0, HeaderSize)
	if errors.Is(err, objectstore.ErrInvalidRange) {
		return nil, false, nil // an empty object: not sealed
	}
	if err != nil {
		return nil, false, err
	}
	if !IsSealed(head) {
		s.cache.put(key, nil)
		return nil, false, nil
	}
	h, err := ParseHeader(key, head)
	if err != nil {
		return nil, false, err
	}
	obj, err := h.unwrap(s.ring, key)
	if err != nil {
		return nil, false, err
	}
	s.cache.put(key, obj)
	return obj, false, nil
}

// readSealed reads plaintext [off, off+length) of a sealed object: the
// segments that cover it, in one ranged GET.
func (s *Store) readSealed(ctx context.Context, key string, obj *object, off, length int64) ([]byte, error) {
	seg, full := int64(obj.seg), int64(obj.seg+TagSize)
	end := off + min(length, math.MaxInt64-off)
	first := off / seg
	last := min((end-1)/seg, (math.MaxInt64-HeaderSize)/full-1)
	cOff, cLen := HeaderSize+first*full, (last-first+1)*full
	body, err := s.store.GetRange(ctx, key, cOff, cLen)
	if err != nil {
		if errors.Is(err, objectstore.ErrInvalidRange) {
			return nil, fmt.Errorf("%w: %s: offset %d is past the end of the object", objectstore.ErrInvalidRange, key, off)
		}
		return nil, err
	}
	pt, final, err := obj.openSegments(key, body, first) // body is this call's own buffer
	if err != nil {
		return nil, err
	}
	if int64(len(body)) < cLen && !final {
		return nil, corrupt(key, "object ends after segment %d without its final segment", first+int64(len(body))/full)
	}
	rel := off - first*seg
	if rel >= int64(len(pt)) {
		return nil, fmt.Errorf("%w: %s: offset %d is past the end of a %d-byte object", objectstore.ErrInvalidRange, key, off, first*seg+int64(len(pt)))
	}
	out := pt[rel:min(rel+length, int64(len(pt)))]
	if len(pt)-len(out) > len(out)/8 {
		// Callers cache what they read: do not pin the rest of the
		// segments with it.
		return append([]byte(nil), out...), nil
	}
	return out[:len(out):len(out)], nil
}

// Stat returns the object's metadata with its plaintext size.
func (s *Store) Stat(ctx context.Context, key string) (objectstore.ObjectInfo, error) {
	info, err := s.store.Stat(ctx, key)
	if err != nil || s.ring == nil || info.Size < HeaderSize {
		return info, err
	}
	head, err := s.store.GetRange(ctx, key, 0, HeaderSize)
	if err != nil {
		return objectstore.ObjectInfo{}, err
	}
	if !IsSealed(head) {
		return info, nil
	}
	h, err := ParseHeader(key, head)
	if err != nil {
		return objectstore.ObjectInfo{}, err
	}
	if info.Size = PlainSize(info.Size, int64(h.SegmentSize)); info.Size < 0 {
		return objectstore.ObjectInfo{}, corrupt(key, "stored size is no envelope's size")
	}
	return info, nil
}

// Delete removes the object.
func (s *Store) Delete(ctx context.Context, key string) error {
	s.cache.drop(key)
	return s.store.Delete(ctx, key)
}

// List yields the objects under prefix with their stored sizes.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[objectstore.ObjectInfo, error] {
	return s.store.List(ctx, prefix)
}

// ListAfter lists through the wrapped store's ListerAfter when it has one.
func (s *Store) ListAfter(ctx context.Context, prefix, after string) iter.Seq2[objectstore.ObjectInfo, error] {
	return objectstore.ListAfter(ctx, s.store, prefix, after)
}

// ReplicationStatus asks the wrapped store.
func (s *Store) ReplicationStatus(ctx context.Context, key string) (string, error) {
	status, ok, err := objectstore.ReplicationStatus(ctx, s.store, key)
	if !ok {
		return "", objectstore.ErrNoReplicationStatus
	}
	return status, err
}

// Close closes the wrapped store.
func (s *Store) Close() error { return objectstore.Close(s.store) }

// keyCache keeps the data keys of up to max objects, dropping the oldest
// entry when full; a nil *object marks an object stored in the clear.
type keyCache struct {
	mu    sync.Mutex
	max   int
	m     map[string]*object
	order []string // insertion order, for eviction; may hold dropped keys
}

func newKeyCache(n int) *keyCache { return &keyCache{max: n, m: map[string]*object{}} }

func (c *keyCache) get(key string) (*object, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	obj, ok := c.m[key]
	return obj, ok
}

func (c *keyCache) put(key string, obj *object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok {
		for len(c.m) >= c.max && len(c.order) > 0 {
			delete(c.m, c.order[0])
			c.order = c.order[1:]
		}
		c.order = append(c.order, key)
	}
	c.m[key] = obj
	if len(c.order) > 2*c.max {
		// Dropped keys linger in order; compact it now and then.
		live := c.order[:0]
		for _, k := range c.order {
			if _, ok := c.m[k]; ok {
				live = append(live, k)
			}
		}
		c.order = append([]string(nil), live...)
	}
}

func (c *keyCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}
