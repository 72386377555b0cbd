package ingest

import (
	"io"
	"slices"
	"sync"
)

// bodyPool recycles the buffers of binary produce request bodies, which
// are the bulk of what a node allocates, and of binary fetch responses:
// without it every request costs a fresh, zeroed buffer of its size and
// the garbage collector a matching sweep.
//
// Ownership: a buffer taken from the pool belongs to one request. Its
// decoded records alias it, so it goes back (release) only once nothing
// reads those records any more: after the records have been copied into
// their chunk (Node.upload), never when the HTTP handler returns, which
// under ack=buffered happens before that. A buffer that is never
// released is simply collected.
//
// Buffers come in size classes, sixteen per power of two from
// minPooledBody, so that a buffer wastes at most 1/16 of its size on a
// body: what a node holds for the bodies in its buffer stays close to
// the bytes --max-buffered-bytes counts (with four classes a power, a
// 4 MiB SDK batch plus its framing took a 5 MiB buffer). Smaller and
// larger bodies are not pooled.
type bodyPool struct {
	classes [bodyClasses]sync.Pool // of *[]byte
}

const (
	minPooledBody = 64 << 10
	classesPerPow = 16
	bodyClasses   = classesPerPow * 10 // up to 62 MiB, past any allowed body
)

// pooledBody is a buffer taken from a pool, to be released once.
type pooledBody struct {
	pool *bodyPool
	buf  []byte
}

// release gives the buffer back; later calls and a nil b do nothing.
func (b *pooledBody) release() {
	if b == nil || b.pool == nil {
		return
	}
	b.pool.release(b.buf)
	b.pool, b.buf = nil, nil
}

// bodyClassSize is the capacity of the buffers of class c.
func bodyClassSize(c int) int {
	return (minPooledBody << (c / classesPerPow)) / classesPerPow * (classesPerPow + c%classesPerPow)
}

// bodyClassFor returns the smallest class whose buffers hold n bytes, or
// -1 when n is outside the classes: above the largest, or small enough
// (under 3/4 of the smallest) that a pooled buffer would waste more than
// the allocation costs.
func bodyClassFor(n int) int {
	if n <= 0 || n < minPooledBody/4*3 {
		return -1
	}
	for c := range bodyClasses {
		if bodyClassSize(c) >= n {
			return c
		}
	}
	return -1
}

// take returns an empty buffer of class c from the pool, or nil.
func (p *bodyPool) take(c int) []byte {
	if v, ok := p.classes[c].Get().(*[]byte); ok {
		return (*v)[:0]
	}
	return nil
}

// get returns an empty buffer with room for n bytes: pooled when n fits
// a class (allocated at the class size when the pool is empty), else
// exact. A nil pool allocates.
func (p *bodyPool) get(n int) []byte {
	c := bodyClassFor(n)
	if p == nil || c < 0 {
		return make([]byte, 0, n)
	}
	if b := p.take(c); b != nil {
		return b
	}
	return make([]byte, 0, bodyClassSize(c))
}

// release gives buf back for reuse. The caller must hold the only
// reference to its bytes.
func (p *bodyPool) release(buf []byte) {
	if p == nil {
		return
	}
	c := bodyClassFor(cap(buf))
	if c < 0 || bodyClassSize(c) != cap(buf) {
		return // not one of ours; let it be collected
	}
	buf = buf[:0]
	p.classes[c].Put(&buf)
}

// read reads rd to the end, as readAllHint does, into a pooled buffer when
// size (the announced length, when positive) fits a class. As in
// readAllHint, an empty pool allocates no more than bodyPrealloc before
// bytes arrive: past that the buffer grows straight to its class size.
// The caller owns the buffer and may release it.
func (p *bodyPool) read(rd io.Reader, size int64) ([]byte, error) {
	c := -1
	if size > 0 && size < 1<<40 {
		c = bodyClassFor(int(size) + 1) // one more byte lets Read report EOF
	}
	if c < 0 {
		return readAllHint(rd, size)
	}
	full := bodyClassSize(c)
	buf := p.take(c)
	if buf == nil {
		buf = make([]byte, 0, min(full, bodyPrealloc))
	}
	for {
		if len(buf) == cap(buf) {
			if cap(buf) < full {
				buf = slices.Grow(buf, full-len(buf))[:len(buf):full]
			} else {
				// Longer than announced: net/http does not let this
				// happen, but be correct anyway.
				buf = slices.Grow(buf, cap(buf))
			}
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			p.release(buf)
			return nil, err
		}
	}
}
