package httpapi

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/mambamq/mamba/internal/wire"
)

// Per-token quotas (docs/security.md, "Quotas"). With authentication on,
// every token has five quotas on each node: its own (stored with the
// token) or else the node's defaults (Options.Quotas). A request over one
// is answered 429 quota_exceeded with a Retry-After the limiter computes;
// only that token's requests are refused, and nothing a token does slows
// another's.
//
// Limiter state is in memory, per node and per token id: at most
// maxQuotaStates tokens' state (about 600 bytes each), besides tokens
// holding a long-poll slot. A token whose limiters are all full again
// (it has been idle long enough that a new state would be the same) is
// dropped first; past the bound, the least recently used one.

// Defaults of the node's quotas (the --quota-* flags). They stop a
// runaway client, not a busy one: a node measured at about 200 MiB/s of
// binary produce (docs/benchmarks.md) lets one token take a third of it,
// and half of its default long-poll slots (ingest.DefaultMaxLongPolls).
const (
	// DefaultQuotaProduceBytes is produce body bytes per second.
	DefaultQuotaProduceBytes = 64 << 20
	// DefaultQuotaProduceRequests is produce requests per second: an
	// SDK producer makes tens a second, so a token may run dozens.
	DefaultQuotaProduceRequests = 1000
	// DefaultQuotaFetchBytes is fetch answer bytes per second: reads
	// fan out (several groups read the same records), so twice the
	// produce quota.
	DefaultQuotaFetchBytes = 128 << 20
	// DefaultQuotaLongPolls is fetches with a wait in flight at once: a
	// consumer holds one per partition it reads.
	DefaultQuotaLongPolls = 500
	// DefaultQuotaIdempotencyKeys is produce requests with an
	// Idempotency-Key per dedup window (the SDK sends one with every
	// request): 500 a second over the default 10-minute window. Each
	// key is a Redis record of about 230 bytes (SDK keys, measured with
	// INFO memory) kept for the window, so one token on one node holds
	// at most about 140 MB of Redis in keys: twice the quota, a full
	// burst and then a window's refill.
	DefaultQuotaIdempotencyKeys = 300_000
)

// maxQuotaStates bounds the tokens whose limiter state a node keeps.
const maxQuotaStates = 10000

// quotaLongPollRetry is the Retry-After of a refused long poll: a slot
// frees when any of the token's fetches ends, which nothing predicts.
const quotaLongPollRetry = time.Second

// Quotas are per-token limits, each for one token on one node. Zero is
// unlimited. A node behind a load balancer with N nodes lets a token do
// up to N times each.
type Quotas struct {
	// ProduceBytes bounds the produce request body bytes per second.
	ProduceBytes int64
	// ProduceRequests bounds the produce requests per second.
	ProduceRequests int64
	// FetchBytes bounds the fetch answer body bytes per second.
	FetchBytes int64
	// LongPolls bounds the fetches with a wait (wait_ms > 0) in flight
	// at once.
	LongPolls int64
	// IdempotencyKeys bounds the produce requests carrying an
	// Idempotency-Key per dedup window (Options.DedupWindow).
	IdempotencyKeys int64
}

// quotaKind indexes the quotas; quotaNames[k] is the wire name of kind k.
type quotaKind int

const (
	quotaProduceBytes quotaKind = iota
	quotaProduceRequests
	quotaFetchBytes
	quotaLongPolls
	quotaIdempotencyKeys
	numQuotas
)

var quotaNames = [numQuotas]string{
	wire.QuotaProduceBytes, wire.QuotaProduceRequests, wire.QuotaFetchBytes,
	wire.QuotaLongPolls, wire.QuotaIdempotencyKeys,
}

// quotaUnits says what each quota counts, for error messages.
var quotaUnits = [numQuotas]string{"bytes/s", "requests/s", "bytes/s", "fetches waiting at once", "keys per dedup window"}

type quotaLimits [numQuotas]int64

func (q Quotas) limits() quotaLimits {
	return quotaLimits{q.ProduceBytes, q.ProduceRequests, q.FetchBytes, q.LongPolls, q.IdempotencyKeys}
}

// with returns l with a token's own quotas (by wire name) in place of
// the node's.
func (l quotaLimits) with(own map[string]int64) quotaLimits {
	for k, name := range quotaNames {
		if v, ok := own[name]; ok {
			l[k] = v
		}
	}
	return l
}

// nonNegative is q with negative quotas (which validate refuses) as 0.
func (q Quotas) nonNegative() Quotas {
	for _, v := range []*int64{&q.ProduceBytes, &q.ProduceRequests, &q.FetchBytes, &q.LongPolls, &q.IdempotencyKeys} {
		*v = max(*v, 0)
	}
	return q
}

func (q Quotas) validate() error {
	var errs []error
	for k, v := range q.limits() {
		if v < 0 {
			errs = append(errs, fmt.Errorf("quota %s %d is negative", quotaNames[k], v))
		}
	}
	return errors.Join(errs...)
}

// errQuotaExceeded is in errorTable; every refusal is a *quotaError.
var errQuotaExceeded = errors.New("quota exceeded")

// quotaError is a request refused by one of its token's quotas.
type quotaError struct {
	kind       quotaKind
	limit      int64
	retryAfter time.Duration
}

func (e *quotaError) Error() string {
	return fmt.Sprintf("quota exceeded: this token's %s quota on this node is %d %s; retry after %v",
		quotaNames[e.kind], e.limit, quotaUnits[e.kind], e.retryAfter.Round(time.Millisecond))
}

func (e *quotaError) Unwrap() error { return errQuotaExceeded }

// bucket is a token bucket that may go into debt, on which every quota
// but long polls is kept. Byte quotas let a request in while the bucket
// is not in debt, then charge it what it cost, however much, so that the
// next waits until the debt is paid: the rate holds on average whatever
// the request sizes, and fetches are charged the bytes they answered,
// known only afterwards. Count quotas let a request in when a whole token
// is there. A request that turns out to have cost nothing (an
// idempotency key never created) is refunded.
//
// golang.org/x/time/rate does neither: its Limiter refuses a charge over
// its burst, and a Reservation cancelled after its time to act restores
// nothing.
type bucket struct {
	rate   float64 // tokens a second; 0 is unlimited
	burst  float64 // most tokens held
	tokens float64 // below 0 is debt
	at     time.Time
}

func (b *bucket) advance(now time.Time) {
	if now.After(b.at) {
		b.tokens = min(b.burst, b.tokens+b.rate*now.Sub(b.at).Seconds())
		b.at = now
	}
}

// set changes the rate and burst, keeping the tokens (up to the new
// burst); from unlimited the bucket starts full. A zero rate is
// unlimited.
func (b *bucket) set(rate, burst float64, now time.Time) {
	if b.rate == 0 || rate == 0 {
		*b = bucket{rate: rate, burst: burst, tokens: burst, at: now}
		return
	}
	b.advance(now)
	b.rate, b.burst = rate, burst
	b.tokens = min(b.tokens, burst)
}

// wait is zero when the bucket holds need tokens, else how long until
// it does.
func (b *bucket) wait(need float64, now time.Time) time.Duration {
	if b.rate == 0 {
		return 0
	}
	b.advance(now)
	if b.tokens >= need {
		return 0
	}
	return time.Duration(math.Ceil((need - b.tokens) / b.rate * float64(time.Second)))
}

// charge takes n tokens, into debt if need be.
func (b *bucket) charge(n float64, now time.Time) {
	if b.rate == 0 || n <= 0 {
		return
	}
	b.advance(now)
	b.tokens -= n
}

// refund gives n tokens back, up to the burst.
func (b *bucket) refund(n float64, now time.Time) {
	if b.rate == 0 {
		return
	}
	b.advance(now)
	b.tokens = min(b.burst, b.tokens+n)
}

func (b *bucket) full(now time.Time) bool {
	if b.rate == 0 {
		return true
	}
	b.advance(now)
	return b.tokens >= b.burst
}

// tokenQuota is one token's limiter state on this node. Guarded by the
// quotaTable's mutex.
type tokenQuota struct {
	limits quotaLimits
	// buckets are indexed by quotaKind; the long polls' is unused.
	buckets   [numQuotas]bucket
	longPolls int64
	used      time.Time
}

// configure brings the buckets to limits, keeping what they hold. Byte
// and request quotas hold one second's worth (at least one request);
// idempotency keys a whole window's.
func (t *tokenQuota) configure(l quotaLimits, window time.Duration, now time.Time) {
	if t.limits == l && !t.used.IsZero() {
		return
	}
	t.limits = l
	for k, v := range l {
		n := float64(v)
		switch quotaKind(k) {
		case quotaProduceBytes, quotaFetchBytes:
			t.buckets[k].set(n, n, now)
		case quotaProduceRequests:
			t.buckets[k].set(n, max(n, 1), now)
		case quotaIdempotencyKeys:
			t.buckets[k].set(n/window.Seconds(), n, now)
		}
	}
}

// idle reports whether a new state would behave the same as t: no long
// poll holds it and every bucket is full.
func (t *tokenQuota) idle(now time.Time) bool {
	if t.longPolls > 0 {
		return false
	}
	for k := range t.buckets {
		if !t.buckets[k].full(now) {
			return false
		}
	}
	return true
}

// quotaTable is the limiter state of every token active on this node.
type quotaTable struct {
	defaults quotaLimits
	// window is the dedup window, the period of the idempotency keys
	// quota.
	window  time.Duration
	now     func() time.Time
	refused func(quotaKind)

	mu sync.Mutex
	m  map[string]*tokenQuota
}

// get returns the state of token id, configured to limits; the caller
// holds mu.
func (qt *quotaTable) get(id string, l quotaLimits, now time.Time) *tokenQuota {
	t, ok := qt.m[id]
	if !ok {
		if qt.m == nil {
			qt.m = make(map[string]*tokenQuota)
		}
		if len(qt.m) >= maxQuotaStates {
			qt.evict(now)
		}
		t = &tokenQuota{}
		qt.m[id] = t
	}
	t.configure(l, qt.window, now)
	t.used = now
	return t
}

// evict drops every idle state, or if none is, the least recently used
// one that holds no long poll. States held by long polls stay: each is
// held by a request in flight.
func (qt *quotaTable) evict(now time.Time) {
	var lru string
	var lruAt time.Time
	dropped := false
	for id, t := range qt.m {
		if t.idle(now) {
			delete(qt.m, id)
			dropped = true
		} else if t.longPolls == 0 && (lru == "" || t.used.Before(lruAt)) {
			lru, lruAt = id, t.used
		}
	}
	if !dropped && lru != "" {
		delete(qt.m, lru)
	}
}

func (qt *quotaTable) refuse(k quotaKind, limit int64, wait time.Duration) error {
	if qt.refused != nil {
		qt.refused(k)
	}
	return &quotaError{kind: k, limit: limit, retryAfter: wait}
}

// produceAdmission is what admitProduce took, for chargeBody and
// refundKey.
type produceAdmission struct {
	qt    *quotaTable
	t     *tokenQuota
	key   bool // an idempotency key was taken
	bytes bool // the body's bytes are charged already
}

// admitProduce admits a produce request of token id with the given
// quotas, whose body announces bodyBytes (-1 when unknown) and which
// carries an idempotency key or not. It takes one request, one key and
// the announced bytes, or nothing and returns a *quotaError.
func (qt *quotaTable) admitProduce(id string, l quotaLimits, bodyBytes int64, hasKey bool) (*produceAdmission, error) {
	now := qt.now()
	qt.mu.Lock()
	defer qt.mu.Unlock()
	t := qt.get(id, l, now)
	bytes, requests, keys := &t.buckets[quotaProduceBytes], &t.buckets[quotaProduceRequests], &t.buckets[quotaIdempotencyKeys]
	if d := bytes.wait(0, now); d > 0 {
		return nil, qt.refuse(quotaProduceBytes, l[quotaProduceBytes], d)
	}
	if d := requests.wait(1, now); d > 0 {
		return nil, qt.refuse(quotaProduceRequests, l[quotaProduceRequests], d)
	}
	if hasKey {
		if d := keys.wait(1, now); d > 0 {
			return nil, qt.refuse(quotaIdempotencyKeys, l[quotaIdempotencyKeys], d)
		}
		keys.charge(1, now)
	}
	requests.charge(1, now)
	a := &produceAdmission{qt: qt, t: t, key: hasKey}
	if bodyBytes >= 0 {
		bytes.charge(float64(bodyBytes), now)
		a.bytes = true
	}
	return a, nil
}

// chargeBody charges the bytes of a body whose size was not announced.
func (a *produceAdmission) chargeBody(n int) {
	if a == nil || a.bytes {
		return
	}
	a.bytes = true
	now := a.qt.now()
	a.qt.mu.Lock()
	defer a.qt.mu.Unlock()
	a.t.buckets[quotaProduceBytes].charge(float64(n), now)
}

// refundKey gives the idempotency key back: the request created none.
func (a *produceAdmission) refundKey() {
	if a == nil || !a.key {
		return
	}
	a.key = false
	now := a.qt.now()
	a.qt.mu.Lock()
	defer a.qt.mu.Unlock()
	a.t.buckets[quotaIdempotencyKeys].refund(1, now)
}

// admitFetch admits a fetch of token id with the given quotas: refused
// while the token's fetch bytes are in debt, or when it waits (long) and
// the token's long polls are all taken. done, called once the answer is
// written, frees the long poll and charges the bytes answered.
func (qt *quotaTable) admitFetch(id string, l quotaLimits, long bool) (done func(answered int64), err error) {
	now := qt.now()
	qt.mu.Lock()
	defer qt.mu.Unlock()
	t := qt.get(id, l, now)
	if d := t.buckets[quotaFetchBytes].wait(0, now); d > 0 {
		return nil, qt.refuse(quotaFetchBytes, l[quotaFetchBytes], d)
	}
	if long && l[quotaLongPolls] > 0 {
		if t.longPolls >= l[quotaLongPolls] {
			return nil, qt.refuse(quotaLongPolls, l[quotaLongPolls], quotaLongPollRetry)
		}
		t.longPolls++
	}
	return func(answered int64) {
		now := qt.now()
		qt.mu.Lock()
		defer qt.mu.Unlock()
		if long && l[quotaLongPolls] > 0 {
			t.longPolls--
		}
		t.buckets[quotaFetchBytes].charge(float64(answered), now)
	}, nil
}

// states is how many tokens' state the table holds.
func (qt *quotaTable) states() int {
	qt.mu.Lock()
	defer qt.mu.Unlock()
	return len(qt.m)
}
