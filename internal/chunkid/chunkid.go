// Package chunkid makes and parses chunk ids. An id is a ULID followed by
// "-" and the id of the node that wrote the chunk:
//
//	01JD3V8Q3E5Z4W9K2M7N6P0R1S-node-a
//
// The ULID's 48-bit millisecond timestamp comes first, and its Crockford
// base32 text sorts like its bytes, so ids (and the object keys
// chunks/<id>) sort by creation time and a bucket listing replays chunks in
// the order they were written. Within one generator ids strictly increase,
// even when the wall clock steps backwards or many ids share a millisecond,
// which is what lets a node apply its commits in creation order.
package chunkid

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// MaxNodeLen is the longest node id.
const MaxNodeLen = 64

var nodeRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidateNode reports whether node can be part of a chunk id.
func ValidateNode(node string) error {
	if !nodeRE.MatchString(node) {
		return fmt.Errorf("node id %q must be 1 to %d characters of A-Z, a-z, 0-9, '.', '_' and '-'", node, MaxNodeLen)
	}
	return nil
}

// ID identifies one chunk.
type ID struct {
	ULID ulid.ULID
	Node string
}

// String returns the id's text form, which is also its object key suffix.
func (id ID) String() string { return id.ULID.String() + "-" + id.Node }

// Time returns when the chunk was created, to the millisecond.
func (id ID) Time() time.Time { return ulid.Time(id.ULID.Time()) }

// Compare orders ids by creation time, then by the rest of the ULID, then
// by node; it agrees with comparing their strings.
func (id ID) Compare(other ID) int {
	if c := id.ULID.Compare(other.ULID); c != 0 {
		return c
	}
	switch {
	case id.Node < other.Node:
		return -1
	case id.Node > other.Node:
		return 1
	}
	return 0
}

// Parse parses the text form made by String.
func Parse(s string) (ID, error) {
	if len(s) < ulid.EncodedSize+2 || s[ulid.EncodedSize] != '-' {
		return ID{}, fmt.Errorf("chunk id %q: want a 26-character ULID, '-', and a node id", s)
	}
	u, err := ulid.ParseStrict(s[:ulid.EncodedSize])
	if err != nil {
		return ID{}, fmt.Errorf("chunk id %q: %w", s, err)
	}
	node := s[ulid.EncodedSize+1:]
	if err := ValidateNode(node); err != nil {
		return ID{}, fmt.Errorf("chunk id %q: %w", s, err)
	}
	// Crockford decoding accepts lower case; only the canonical upper-case
	// form sorts correctly, so anything else is rejected.
	if u.String() != s[:ulid.EncodedSize] {
		return ID{}, fmt.Errorf("chunk id %q: ULID is not in canonical upper case", s)
	}
	return ID{ULID: u, Node: node}, nil
}

// Generator makes strictly increasing ids for one node. It is safe for
// concurrent use.
type Generator struct {
	node string
	now  func() time.Time

	mu      sync.Mutex
	entropy *ulid.MonotonicEntropy
	lastMS  uint64
}

// NewGenerator returns a generator for node. now is the clock; nil means
// time.Now.
func NewGenerator(node string, now func() time.Time) (*Generator, error) {
	if err := ValidateNode(node); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Generator{node: node, now: now, entropy: ulid.Monotonic(rand.Reader, 0)}, nil
}

// New returns an id greater than every id this generator returned before.
func (g *Generator) New() (ID, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	// A clock that steps back must not reorder ids: keep using the last
	// millisecond, where monotonic entropy keeps increasing.
	ms := max(ulid.Timestamp(g.now()), g.lastMS)
	u, err := ulid.New(ms, g.entropy)
	if err != nil {
		// The 80-bit random part overflowed within one millisecond (2^80
		// ids): move to the next millisecond.
		ms++
		if u, err = ulid.New(ms, g.entropy); err != nil {
			return ID{}, fmt.Errorf("new chunk id: %w", err)
		}
	}
	g.lastMS = ms
	return ID{ULID: u, Node: g.node}, nil
}
