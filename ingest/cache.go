package ingest

import (
	"container/list"
	"sync"

	"github.com/mambamq/mamba/internal/membudget"
)

// batchCache keeps recently written and read batches, least recently used
// first out, bounded by the bytes it holds. Keys are "chunkID@offset".
//
// The node inserts the batches of a chunk it just uploaded as slices of
// the chunk's buffer, so consumers tailing a partition read from memory.
// A chunk's buffer stays alive while any of its batches is cached; since
// batches of one chunk enter together and age together, the bytes held
// stay close to the bytes counted.
//
// The cache reserves what it holds from the node's memory budget (kind
// Cache) as it grows and gives it back as it evicts. When the budget
// refuses a batch, the cache evicts its own oldest batches to make room,
// and caches nothing if that is not enough: it never takes memory that
// requests in flight hold, though it does not give up what it holds for
// them either (its share, CacheBytes, is part of the budget's split).
type batchCache struct {
	mu        sync.Mutex
	maxBytes  int64
	mem       *membudget.Reservation
	bytes     int64
	evictions int64      // entries dropped to make room, ever
	order     *list.List // front: most recently used
	entries   map[string]*list.Element
}

type cacheEntry struct {
	key  string
	data []byte
}

func newBatchCache(maxBytes int64, mem *membudget.Reservation) *batchCache {
	return &batchCache{maxBytes: maxBytes, mem: mem, order: list.New(), entries: make(map[string]*list.Element)}
}

func (c *batchCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry).data, true
}

// put adds data unless it alone is larger than the cache, evicting the
// least recently used entries to make room.
func (c *batchCache) put(key string, data []byte) {
	size := int64(len(data))
	if size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.order.MoveToFront(el)
		return
	}
	for c.bytes+size > c.maxBytes {
		c.evictLocked()
	}
	for !c.mem.TryGrow(size) {
		if c.order.Len() == 0 {
			c.mem.Refused()
			return
		}
		c.evictLocked()
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, data: data})
	c.bytes += size
}

// evictLocked drops the least recently used entry; the cache must hold
// one.
func (c *batchCache) evictLocked() {
	last := c.order.Back()
	e := last.Value.(*cacheEntry)
	c.order.Remove(last)
	delete(c.entries, e.key)
	c.bytes -= int64(len(e.data))
	c.mem.Shrink(int64(len(e.data)))
	c.evictions++
}

func (c *batchCache) size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

func (c *batchCache) evicted() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.evictions
}

// has reports whether key is cached, without counting as a use.
func (c *batchCache) has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[key]
	return ok
}
