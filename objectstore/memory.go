package objectstore

import (
	"context"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"
)

// Memory is a Store that keeps objects in process memory. It follows the
// same rules as every other backend and is meant for tests and for
// single-process experiments; nothing survives the process.
type Memory struct {
	mu      sync.RWMutex
	objects map[string]memObject
	now     func() time.Time
}

type memObject struct {
	data    []byte
	modTime time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{objects: make(map[string]memObject), now: time.Now}
}

// Put stores a copy of data, so the caller may reuse its buffer.
func (m *Memory) Put(ctx context.Context, key string, data []byte) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ContextError(ctx, "put", key); err != nil {
		return err
	}
	obj := memObject{data: slices.Clone(data), modTime: m.now()}
	if obj.data == nil {
		obj.data = []byte{}
	}
	m.mu.Lock()
	m.objects[key] = obj
	m.mu.Unlock()
	return nil
}

func (m *Memory) lookup(ctx context.Context, op, key string) (memObject, error) {
	if err := ValidateKey(key); err != nil {
		return memObject{}, err
	}
	if err := ContextError(ctx, op, key); err != nil {
		return memObject{}, err
	}
	m.mu.RLock()
	obj, ok := m.objects[key]
	m.mu.RUnlock()
	if !ok {
		return memObject{}, NotExist(key)
	}
	return obj, nil
}

// Get returns a copy of the object.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	obj, err := m.lookup(ctx, "get", key)
	if err != nil {
		return nil, err
	}
	return slices.Clone(obj.data), nil
}

// GetRange returns a copy of the requested bytes.
func (m *Memory) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	obj, err := m.lookup(ctx, "get range", key)
	if err != nil {
		return nil, err
	}
	end, err := CheckRange(key, off, length, int64(len(obj.data)))
	if err != nil {
		return nil, err
	}
	return slices.Clone(obj.data[off:end:end]), nil
}

// Stat returns the object's size and modification time.
func (m *Memory) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	obj, err := m.lookup(ctx, "stat", key)
	if err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{Key: key, Size: int64(len(obj.data)), ModTime: obj.modTime}, nil
}

// Delete removes the object if it exists.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ContextError(ctx, "delete", key); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.objects, key)
	m.mu.Unlock()
	return nil
}

// List yields a snapshot of the matching objects taken when iteration
// starts.
func (m *Memory) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	if err := ValidatePrefix(prefix); err != nil {
		return ListError(err)
	}
	return func(yield func(ObjectInfo, error) bool) {
		m.mu.RLock()
		infos := make([]ObjectInfo, 0, len(m.objects))
		for k, obj := range m.objects {
			if strings.HasPrefix(k, prefix) {
				infos = append(infos, ObjectInfo{Key: k, Size: int64(len(obj.data)), ModTime: obj.modTime})
			}
		}
		m.mu.RUnlock()
		slices.SortFunc(infos, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
		for _, info := range infos {
			if err := ContextError(ctx, "list", prefix); err != nil {
				yield(ObjectInfo{}, err)
				return
			}
			if !yield(info, nil) {
				return
			}
		}
	}
}
