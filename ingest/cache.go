package ingest

import (
	"container/list"
	"sync"
)

// batchCache keeps recently written and read batches, least recently used
// first out, bounded by the bytes it holds. Keys are "chunkID@offset".
//
// The node inserts the batches of a chunk it just uploaded as slices of
// the chunk's buffer, so consumers tailing a partition read from memory.
// A chunk's buffer stays alive while any of its batches is cached; since
// batches of one chunk enter together and age together, the bytes held
// stay close to the bytes counted.
type batchCache struct {
	mu        sync.Mutex
	maxBytes  int64
	bytes     int64
	evictions int64      // entries dropped to make room, ever
	order     *list.List // front: most recently used
	entries   map[string]*list.Element
}

type cacheEntry struct {
	key  string
	data []byte
}

func newBatchCache(maxBytes int64) *batchCache {
	return &batchCache{maxBytes: maxBytes, order: list.New(), entries: make(map[string]*list.Element)}
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
		last := c.order.Back()
		e := last.Value.(*cacheEntry)
		c.order.Remove(last)
		delete(c.entries, e.key)
		c.bytes -= int64(len(e.data))
		c.evictions++
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, data: data})
	c.bytes += size
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
