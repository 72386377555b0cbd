package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/membudget"
)

// readBody reads the whole request body, refusing one over
// MaxRequestBytes: at once when Content-Length says so, otherwise once
// that many bytes have been read. Its buffer is reserved from the memory
// budget in the request's body reservation (withBodyMemory), which the
// route releases once the handler returns.
//
// The returned buffer is never reused: decoded records may alias it, and
// under ack=buffered the node keeps them after the request ends.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return h.readBodyFrom(w, r, nil, bodyMemory(r.Context()))
}

// readBodyFrom is readBody that takes the buffer from pool, when not nil
// (the caller then owns it and may release it to pool), and reserves it
// in mem before each growth (nil: no budget). When mem refuses, it reads
// the rest of the body through a small buffer, drops it, and returns
// errMemoryFull.
func (h *handler) readBodyFrom(w http.ResponseWriter, r *http.Request, pool *bodyPool, mem *membudget.Reservation) ([]byte, error) {
	limit := h.opts.MaxRequestBytes
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: request body of %d bytes is over the limit of %d", ingest.ErrTooLarge, r.ContentLength, limit)
	}
	if r.Body == nil {
		return nil, nil
	}
	start := time.Now()
	src := h.bodySource(w, r)
	var body []byte
	var err error
	if pool != nil {
		body, err = pool.read(src, r.ContentLength, mem)
	} else {
		body, err = readAllHint(src, r.ContentLength, mem)
	}
	if err == errMemoryFull {
		_, _ = io.Copy(io.Discard, src) // as discardBody does
		return nil, err
	}
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, fmt.Errorf("%w: request body is over the limit of %d bytes", ingest.ErrTooLarge, limit)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("%w: the request body did not arrive in time (no byte for %s, or not all of it within %s)",
				errBodyTimeout, h.opts.BodyReadTimeout, h.opts.MaxBodyTime)
		}
		// The error may name addresses: it goes to the log only.
		h.log.Debug("read request body", "method", r.Method, "path", r.URL.Path, "err", err, "after", time.Since(start))
		return nil, invalidf("the request body could not be read to its end (the connection failed or the body is shorter than its Content-Length)")
	}
	return body, nil
}

// bodySource is r's body, cut off past MaxRequestBytes and by the body
// read deadlines (deadlineReader).
func (h *handler) bodySource(w http.ResponseWriter, r *http.Request) io.Reader {
	return &deadlineReader{r: http.MaxBytesReader(w, r.Body, h.opts.MaxRequestBytes), rc: http.NewResponseController(w),
		timeout: h.opts.BodyReadTimeout, until: time.Now().Add(h.opts.MaxBodyTime)}
}

// discardBody reads the rest of r's body through a small buffer and drops
// it, so that a client still sending gets the answer on a connection
// that stays usable; a client that stops sending is cut off by the body
// read deadlines.
func (h *handler) discardBody(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, h.bodySource(w, r))
}

// deadlineReader sets the connection's read deadline before each read of
// the body, so that a body that stops arriving is cut off after timeout,
// never later than until: a client can hold a buffer neither by sending
// nothing nor by sending a byte now and then. (The deadline it sets
// replaces the server's whole-request ReadTimeout, which until keeps.)
type deadlineReader struct {
	r       io.Reader
	rc      *http.ResponseController
	timeout time.Duration
	until   time.Time
	unset   bool // the writer cannot set deadlines (a test recorder)
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if !d.unset {
		deadline := time.Now().Add(d.timeout)
		if deadline.After(d.until) {
			deadline = d.until
		}
		if err := d.rc.SetReadDeadline(deadline); err != nil {
			d.unset = true
		}
	}
	return d.r.Read(p)
}

// bodyPrealloc bounds what readAllHint allocates before bytes arrive, so
// that requests announcing large bodies and sending nothing cost little.
const bodyPrealloc = 1 << 20

// readAllHint reads rd to the end. size, when positive, is the expected
// length: the buffer starts at that size (up to bodyPrealloc) and doubles
// without passing it, so a body of the announced length is read with a
// few allocations and no final doubling. Each buffer is reserved in mem
// before it is allocated, the one it replaces given back after.
func readAllHint(rd io.Reader, size int64, mem *membudget.Reservation) ([]byte, error) {
	initial := int64(512)
	if size > 0 {
		// One byte more than announced lets Read report EOF without a
		// reallocation.
		initial = min(size+1, bodyPrealloc)
	}
	if !mem.Grow(initial) {
		return nil, errMemoryFull
	}
	buf := make([]byte, 0, initial)
	for {
		if len(buf) == cap(buf) {
			grow := cap(buf)
			if size > 0 && int64(len(buf)) < size+1 {
				grow = int(min(int64(grow), size+1-int64(len(buf))))
			}
			grow = max(grow, 512)
			if !mem.Grow(int64(len(buf) + grow)) {
				mem.Shrink(int64(cap(buf)))
				return nil, errMemoryFull
			}
			next := make([]byte, len(buf), len(buf)+grow)
			copy(next, buf)
			mem.Shrink(int64(cap(buf)))
			buf = next
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			mem.Shrink(int64(cap(buf)))
			return nil, err
		}
	}
}

// decodeJSONBody decodes body into v strictly: one JSON value, no unknown
// fields, nothing after it. Errors wrap ErrInvalidRequest and name the
// offending field where the decoder knows it.
func decodeJSONBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return invalidf("request body is empty; want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, "")
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidf("malformed JSON: data after the JSON object")
	}
	return nil
}

// jsonError turns an encoding/json error into one wrapping
// ErrInvalidRequest, naming the offending field (after prefix) where the
// decoder knows it.
func jsonError(err error, prefix string) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.Is(err, ingest.ErrInvalidRequest):
		return err // from a field's own UnmarshalJSON
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return invalidf("field %s%s: JSON %s is not a valid %s", prefix, typeErr.Field, typeErr.Value, jsonTypeName(typeErr.Type.Kind().String()))
	case errors.As(err, &typeErr) && prefix != "":
		return invalidf("%s: JSON %s; want an object", strings.TrimSuffix(prefix, "."), typeErr.Value)
	case errors.As(err, &typeErr):
		return invalidf("request body is a JSON %s; want an object", typeErr.Value)
	case errors.As(err, &syntaxErr):
		return invalidf("malformed JSON at byte %d: %v", syntaxErr.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalidf("malformed JSON: unexpected end of body")
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if prefix != "" {
		msg = strings.TrimSuffix(prefix, ".") + ": " + msg
	}
	return invalidf("malformed JSON: %v", msg)
}

// jsonTypeName names a Go kind the way a JSON API user thinks of it.
func jsonTypeName(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "integer"
	case kind == "map", kind == "struct":
		return "object"
	case kind == "slice":
		return "array"
	}
	return kind
}

// bodyPool recycles the buffers of binary produce request bodies, which
// are the bulk of what a node allocates, and of binary fetch responses:
// without it every request costs a fresh, zeroed buffer of its size and
// the garbage collector a matching sweep.
//
// Ownership: a buffer taken from the pool belongs to one request. Its
// decoded records alias it, so it goes back (release) only once nothing
// reads those records any more: when the service calls the produce
// request's Release (after the records have been copied into their chunk,
// or at once when it refuses them), never when the HTTP handler returns,
// which under ack=buffered happens before that. A buffer that is never
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
// size (the announced length, when positive) fits a class. Whether the
// pool is empty or not, the buffer holds at most bodyPrealloc (its class)
// before bytes arrive, and then grows through the pooled classes,
// doubling, as bytes arrive, up to the announced size's class: a body
// that stalls holds about twice what it sent, never its announced size.
// Each outgrown buffer goes back to the pool. Each buffer's capacity is
// reserved in mem before it is taken, and the outgrown one's given back
// after, so mem holds the returned buffer's capacity. The caller owns the
// buffer and may release it.
func (p *bodyPool) read(rd io.Reader, size int64, mem *membudget.Reservation) ([]byte, error) {
	c := -1
	if size > 0 && size < 1<<40 {
		c = bodyClassFor(int(size) + 1) // one more byte lets Read report EOF
	}
	if c < 0 {
		return readAllHint(rd, size, mem)
	}
	full := bodyClassSize(c)
	first := min(full, bodyPrealloc)
	if !mem.Grow(int64(bodyClassSize(bodyClassFor(first)))) {
		return nil, errMemoryFull
	}
	buf := p.get(first)
	fail := func(err error) ([]byte, error) {
		mem.Shrink(int64(cap(buf)))
		p.release(buf)
		return nil, err
	}
	for {
		if len(buf) == cap(buf) {
			want := 2 * cap(buf)
			if cap(buf) < full {
				want = bodyClassSize(bodyClassFor(min(full, want)))
			}
			if !mem.Grow(int64(want)) {
				return fail(errMemoryFull)
			}
			var next []byte
			if cap(buf) < full {
				next = p.get(want)
			} else {
				// Longer than announced: net/http does not let this
				// happen, but be correct anyway.
				next = make([]byte, 0, want)
			}
			next = append(next, buf...)
			mem.Shrink(int64(cap(buf)))
			p.release(buf)
			buf = next
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return fail(err)
		}
	}
}
