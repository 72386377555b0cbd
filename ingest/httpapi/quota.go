package httpapi

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

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
	// key is a Redis record of about 200 bytes for the window, so a
	// token costs Redis at most about 120 MB (twice the quota: a full
	// burst, then a window's refill).
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

// debtBucket is a token bucket of bytes that may go into debt: a request
// is let in while the bucket is not in debt, then charged what it cost,
// however much, and the next one waits until the debt is paid. So the
// rate holds on average whatever the request sizes, and fetches are
// charged the bytes they answered, known only afterwards. (x/time/rate
// refuses a charge over its burst, so it cannot do this.) Its burst is
// one second of rate. The zero value is unlimited.
type debtBucket struct {
	rate   float64 // per second; 0 is unlimited
	tokens float64 // at most rate (one second's worth); below 0 is debt
	at     time.Time
}

func (b *debtBucket) advance(now time.Time) {
	if now.After(b.at) {
		b.tokens = min(b.rate, b.tokens+b.rate*now.Sub(b.at).Seconds())
		b.at = now
	}
}

// setRate changes the rate, keeping the tokens (up to the new burst);
// from unlimited the bucket starts full.
func (b *debtBucket) setRate(r int64, now time.Time) {
	if b.rate == 0 {
		*b = debtBucket{rate: float64(r), tokens: float64(r), at: now}
		return
	}
	b.advance(now)
	b.rate = float64(r)
	b.tokens = min(b.tokens, b.rate)
}

// wait is zero when a request may go, else how long until the debt is
// paid.
func (b *debtBucket) wait(now time.Time) time.Duration {
	if b.rate == 0 {
		return 0
	}
	b.advance(now)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(math.Ceil(-b.tokens / b.rate * float64(time.Second)))
}

func (b *debtBucket) charge(n int64, now time.Time) {
	if b.rate == 0 || n <= 0 {
		return
	}
	b.advance(now)
	b.tokens -= float64(n)
}

func (b *debtBucket) full(now time.Time) bool {
	if b.rate == 0 {
		return true
	}
	b.advance(now)
	return b.tokens >= b.rate
}

// tokenQuota is one token's limiter state on this node. Guarded by the
// quotaTable's mutex.
type tokenQuota struct {
	limits                   quotaLimits
	produceBytes, fetchBytes debtBucket
	// requests and keys are nil when unlimited.
	requests, keys *rate.Limiter
	longPolls      int64
	used           time.Time
}

// configure brings the limiters to limits, keeping what they hold.
func (t *tokenQuota) configure(l quotaLimits, window time.Duration, now time.Time) {
	if t.limits == l && !t.used.IsZero() {
		return
	}
	t.limits = l
	t.produceBytes.setRate(l[quotaProduceBytes], now)
	t.fetchBytes.setRate(l[quotaFetchBytes], now)
	t.requests = setLimiter(t.requests, float64(l[quotaProduceRequests]), l[quotaProduceRequests], now)
	t.keys = setLimiter(t.keys, float64(l[quotaIdempotencyKeys])/window.Seconds(), l[quotaIdempotencyKeys], now)
}

// setLimiter returns lim set to r per second with the given burst, a new
// (full) limiter if lim is nil, or nil when burst is 0 (unlimited).
func setLimiter(lim *rate.Limiter, r float64, burst int64, now time.Time) *rate.Limiter {
	if burst <= 0 {
		return nil
	}
	b := int(min(max(burst, 1), math.MaxInt32))
	if lim == nil {
		return rate.NewLimiter(rate.Limit(r), b)
	}
	lim.SetLimitAt(now, rate.Limit(r))
	lim.SetBurstAt(now, b)
	return lim
}

// idle reports whether a new state would behave the same as t: no long
// poll holds it and every limiter is full.
func (t *tokenQuota) idle(now time.Time) bool {
	full := func(lim *rate.Limiter) bool { return lim == nil || lim.TokensAt(now) >= float64(lim.Burst()) }
	return t.longPolls == 0 && t.produceBytes.full(now) && t.fetchBytes.full(now) && full(t.requests) && full(t.keys)
}

// takeOne takes one event from lim, or returns the wait before one is
// there (and takes nothing). The limiter's burst is at least 1, so one
// event always fits.
func takeOne(lim *rate.Limiter, now time.Time) time.Duration {
	if lim == nil {
		return 0
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 || !r.OK() {
		r.CancelAt(now)
		return d
	}
	return 0
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
	id    string
	key   *rate.Reservation // the idempotency key's, nil when none
	bytes bool              // the body's bytes are charged already
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
	if d := t.produceBytes.wait(now); d > 0 {
		return nil, qt.refuse(quotaProduceBytes, l[quotaProduceBytes], d)
	}
	var key *rate.Reservation
	if hasKey && t.keys != nil {
		if key = t.keys.ReserveN(now, 1); !key.OK() || key.DelayFrom(now) > 0 {
			d := key.DelayFrom(now)
			key.CancelAt(now)
			return nil, qt.refuse(quotaIdempotencyKeys, l[quotaIdempotencyKeys], d)
		}
	}
	if d := takeOne(t.requests, now); d > 0 {
		if key != nil {
			key.CancelAt(now)
		}
		return nil, qt.refuse(quotaProduceRequests, l[quotaProduceRequests], d)
	}
	a := &produceAdmission{qt: qt, id: id, key: key}
	if bodyBytes >= 0 {
		t.produceBytes.charge(bodyBytes, now)
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
	a.qt.charge(a.id, quotaProduceBytes, int64(n))
}

// refundKey gives the idempotency key back: the request created none.
func (a *produceAdmission) refundKey() {
	if a == nil || a.key == nil {
		return
	}
	now := a.qt.now()
	a.qt.mu.Lock()
	defer a.qt.mu.Unlock()
	a.key.CancelAt(now)
	a.key = nil
}

// charge takes n bytes from a byte quota of token id, if it still has
// state.
func (qt *quotaTable) charge(id string, k quotaKind, n int64) {
	now := qt.now()
	qt.mu.Lock()
	defer qt.mu.Unlock()
	t, ok := qt.m[id]
	if !ok {
		return
	}
	switch k {
	case quotaProduceBytes:
		t.produceBytes.charge(n, now)
	case quotaFetchBytes:
		t.fetchBytes.charge(n, now)
	}
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
	if d := t.fetchBytes.wait(now); d > 0 {
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
		t.fetchBytes.charge(answered, now)
	}, nil
}

// states is how many tokens' state the table holds.
func (qt *quotaTable) states() int {
	qt.mu.Lock()
	defer qt.mu.Unlock()
	return len(qt.m)
}
