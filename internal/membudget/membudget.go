// Package membudget is a node's one memory budget: everything that holds
// memory on behalf of a request (a body being read, records being
// decoded, records buffered until acknowledged, a fetch response until it
// is written, a long-poll waiting) and the caches reserve their bytes from
// one Budget before they allocate them, and give them back when the
// memory is let go. A reservation that does not fit is refused at once,
// never waited for: the caller answers 429 (or, for a fetch, fewer
// bytes), so no client can make another wait for memory.
//
// Headroom: bulk reservations (those that take a reservation past
// SmallBytes in total) may fill the budget only up to Limit minus the
// headroom; a reservation that stays within SmallBytes may use the whole
// budget. Clients stalling large bodies, or a full cache, therefore
// cannot keep small requests out: those still fit in the headroom.
//
// A nil *Budget admits everything and counts nothing, and so does a nil
// *Reservation, so that code paths without a budget (tests, embedded use)
// need no checks.
package membudget

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mambamq/mamba/internal/metrics"
)

// Kind is what a reservation holds memory for; metrics are by kind.
type Kind int

const (
	// Body is a request body being read, and a produce body until its
	// request is handed to the node.
	Body Kind = iota
	// Decode is what decoding a request allocates: the decoded records'
	// structures (and, for JSON, their bytes).
	Decode
	// Buffered is a produce request accepted and not yet acknowledged.
	Buffered
	// Fetch is a fetch's batches read from the bucket, decoded, and its
	// response until written.
	Fetch
	// LongPoll is a fetch waiting at the high watermark.
	LongPoll
	// Cache is the batch cache and the catch-up cache.
	Cache
	numKinds
)

var kindNames = [numKinds]string{"body", "decode", "buffered", "fetch", "long_poll", "cache"}

// String is the kind's metric label.
func (k Kind) String() string { return kindNames[k] }

// SmallBytes is the largest reservation that may use the headroom.
const SmallBytes = 64 << 10

// Budget is a node's memory budget. Its methods are safe for concurrent
// use.
type Budget struct {
	limit    int64
	headroom int64

	mu     sync.Mutex
	used   int64
	byKind [numKinds]int64

	inUse    prometheus.Gauge
	inUseBy  [numKinds]prometheus.Gauge
	refusals [numKinds]prometheus.Counter
}

// New returns a budget of limit bytes, with limit/32 of headroom kept
// for small reservations, and registers its metrics on reg (nil:
// nowhere): mamba_memory_budget_bytes, mamba_memory_in_use_bytes,
// mamba_memory_in_use_by_kind_bytes{kind} and
// mamba_memory_refusals_total{kind}.
func New(limit int64, reg prometheus.Registerer) *Budget {
	b := &Budget{limit: limit, headroom: limit / 32}
	metrics.RegisterAll(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mamba_memory_budget_bytes", Help: "The node's memory budget (--memory-budget).",
	}, func() float64 { return float64(limit) }))
	b.inUse = metrics.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mamba_memory_in_use_bytes", Help: "Bytes of the memory budget reserved, all kinds together.",
	}))
	inUseBy := metrics.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mamba_memory_in_use_by_kind_bytes", Help: "Bytes of the memory budget reserved, by kind (body, decode, buffered, fetch, long_poll, cache).",
	}, []string{"kind"}))
	refusals := metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mamba_memory_refusals_total", Help: "Reservations the memory budget refused, by kind: each is a request answered 429 (or a fetch answered with fewer bytes, a long-poll not parked, a batch not cached).",
	}, []string{"kind"}))
	for k := range numKinds {
		b.inUseBy[k] = inUseBy.WithLabelValues(k.String())
		b.refusals[k] = refusals.WithLabelValues(k.String())
	}
	return b
}

// Limit is the budget's size in bytes; 0 for a nil budget.
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// InUse returns the bytes reserved, in all and of kind k.
func (b *Budget) InUse(k Kind) (all, ofKind int64) {
	if b == nil {
		return 0, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.byKind[k]
}

// Free is how many bytes a bulk reservation could take now (a small one
// may take up to the headroom more); a nil budget has no bound and
// returns the largest int64.
func (b *Budget) Free() int64 {
	if b == nil {
		return 1<<63 - 1
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(0, b.limit-b.headroom-b.used)
}

// Start returns an empty reservation of kind k; nil for a nil budget.
func (b *Budget) Start(k Kind) *Reservation {
	if b == nil {
		return nil
	}
	return &Reservation{b: b, kind: k}
}

// Reserve returns a reservation of n bytes of kind k, or nil and false
// when they do not fit (counted as a refusal). A nil budget returns nil
// and true.
func (b *Budget) Reserve(k Kind, n int64) (*Reservation, bool) {
	r := b.Start(k)
	if !r.Grow(n) {
		return nil, false
	}
	return r, true
}

// add moves the counts by n (negative to give back) for kind k, if the
// result stays within ceiling (ignored when n <= 0).
func (b *Budget) add(k Kind, n, ceiling int64) bool {
	b.mu.Lock()
	if n > 0 && b.used+n > ceiling {
		b.mu.Unlock()
		return false
	}
	b.used += n
	b.byKind[k] += n
	// Set under the lock, so that two changes cannot leave the gauges
	// showing the older count (a Set is an atomic store).
	b.inUse.Set(float64(b.used))
	b.inUseBy[k].Set(float64(b.byKind[k]))
	b.mu.Unlock()
	return true
}

// Reservation is memory reserved from a Budget for one holder. It is not
// safe for concurrent use: one goroutine owns it at a time (a hand-over,
// such as a produce request's to the node, must happen-before the new
// owner's use). Every method is a no-op on nil, and Grow then succeeds.
type Reservation struct {
	b    *Budget
	kind Kind
	n    int64
}

// Size is the bytes reserved.
func (r *Reservation) Size() int64 {
	if r == nil {
		return 0
	}
	return r.n
}

// Grow reserves n more bytes, or reserves nothing and returns false when
// they do not fit: above SmallBytes in total a reservation may not use
// the headroom. A refusal is counted.
func (r *Reservation) Grow(n int64) bool {
	if r.TryGrow(n) {
		return true
	}
	r.b.refusals[r.kind].Inc()
	return false
}

// TryGrow is Grow without counting a refusal, for a holder that tries a
// smaller amount next or makes room itself.
func (r *Reservation) TryGrow(n int64) bool {
	if r == nil || n <= 0 {
		return true
	}
	ceiling := r.b.limit - r.b.headroom
	if r.n+n <= SmallBytes {
		ceiling = r.b.limit
	}
	if !r.b.add(r.kind, n, ceiling) {
		return false
	}
	r.n += n
	return true
}

// Refused counts a refusal of the reservation's kind that its holder
// decided on after TryGrow failed.
func (r *Reservation) Refused() {
	if r != nil {
		r.b.refusals[r.kind].Inc()
	}
}

// Shrink gives back n bytes (at most what is reserved).
func (r *Reservation) Shrink(n int64) {
	if r == nil {
		return
	}
	n = min(n, r.n)
	if n <= 0 {
		return
	}
	r.b.add(r.kind, -n, 0)
	r.n -= n
}

// Release gives back everything; the reservation stays usable, empty.
func (r *Reservation) Release() { r.Shrink(r.Size()) }

// Move counts the reserved bytes as kind k from now on.
func (r *Reservation) Move(k Kind) {
	if r == nil || r.kind == k {
		return
	}
	n := r.n
	r.b.add(r.kind, -n, 0)
	r.b.add(k, n, 1<<63-1)
	r.kind = k
}

// Absorb takes other's bytes into r (counted as r's kind) and leaves
// other empty. Both must come from the same budget.
func (r *Reservation) Absorb(other *Reservation) {
	if r == nil || other == nil {
		return
	}
	n := other.n
	other.b.add(other.kind, -n, 0)
	other.n = 0
	r.b.add(r.kind, n, 1<<63-1)
	r.n += n
}
