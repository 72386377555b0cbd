package httpapi

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mambamq/mamba/internal/wire"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

// newTestQuotaTable is a table on a fake clock, counting refusals.
func newTestQuotaTable(defaults Quotas, window time.Duration) (*quotaTable, *fakeClock, map[quotaKind]int) {
	clock := newFakeClock()
	refused := map[quotaKind]int{}
	qt := &quotaTable{defaults: defaults.limits(), window: window, now: clock.now, refused: func(k quotaKind) { refused[k]++ }}
	return qt, clock, refused
}

// wantRefused fails unless err is a refusal by kind with a retry after
// exactly wait.
func wantRefused(t *testing.T, err error, kind quotaKind, wait time.Duration) {
	t.Helper()
	qe, ok := errors.AsType[*quotaError](err)
	if !ok {
		t.Fatalf("err = %v, want a %s refusal", err, quotaNames[kind])
	}
	if qe.kind != kind || qe.retryAfter != wait {
		t.Fatalf("refused by %s after %v, want %s after %v", quotaNames[qe.kind], qe.retryAfter, quotaNames[kind], wait)
	}
	if !errors.Is(err, errQuotaExceeded) {
		t.Fatal("a quotaError does not match errQuotaExceeded")
	}
}

func TestBucket(t *testing.T) {
	c := newFakeClock()
	var b bucket
	if b.wait(1, c.now()) != 0 || !b.full(c.now()) {
		t.Fatal("an unlimited bucket refuses")
	}
	b.charge(1<<40, c.now())
	if b.wait(0, c.now()) != 0 {
		t.Fatal("an unlimited bucket went into debt")
	}
	b.set(100, 100, c.now())
	if !b.full(c.now()) || b.wait(100, c.now()) != 0 || b.wait(101, c.now()) != 10*time.Millisecond {
		t.Fatal("a new bucket is not full")
	}
	// 300 from 100 in hand: 200 of debt, two seconds at 100/s.
	b.charge(300, c.now())
	if w := b.wait(0, c.now()); w != 2*time.Second {
		t.Fatalf("wait after 200 of debt at 100/s = %v, want 2s", w)
	}
	c.add(1500 * time.Millisecond)
	if w := b.wait(0, c.now()); w != 500*time.Millisecond {
		t.Fatalf("wait 1.5s later = %v, want 500ms", w)
	}
	c.add(500 * time.Millisecond)
	if w := b.wait(0, c.now()); w != 0 || b.full(c.now()) {
		t.Fatalf("debt paid: wait %v, full %v; want 0 and not full", w, b.full(c.now()))
	}
	// It refills to its burst and no more; a refund does not pass it.
	c.add(time.Hour)
	b.refund(50, c.now())
	if !b.full(c.now()) || b.tokens != 100 {
		t.Fatalf("after an hour and a refund: tokens %v, want 100", b.tokens)
	}
	b.charge(30, c.now())
	b.refund(20, c.now())
	if b.tokens != 90 {
		t.Fatalf("tokens after charging 30 and refunding 20 = %v, want 90", b.tokens)
	}
	// A lower burst keeps the bucket within it; a higher one keeps what
	// it holds; lifting the limit forgets the debt.
	b.set(10, 10, c.now())
	if b.tokens != 10 {
		t.Fatalf("tokens after lowering the burst to 10 = %v", b.tokens)
	}
	b.set(1000, 1000, c.now())
	if b.tokens != 10 || b.full(c.now()) {
		t.Fatalf("tokens after raising the burst to 1000 = %v", b.tokens)
	}
	b.charge(5000, c.now())
	b.set(0, 0, c.now())
	if b.wait(1, c.now()) != 0 {
		t.Fatal("a lifted limit still refuses")
	}
}

func TestQuotaProduceRequests(t *testing.T) {
	qt, c, refused := newTestQuotaTable(Quotas{ProduceRequests: 2}, time.Minute)
	l := qt.defaults
	for i := range 2 {
		if _, err := qt.admitProduce("a", l, 10, false); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	_, err := qt.admitProduce("a", l, 10, false)
	wantRefused(t, err, quotaProduceRequests, 500*time.Millisecond)
	// Another token has its own limiter.
	if _, err := qt.admitProduce("b", l, 10, false); err != nil {
		t.Fatalf("token b: %v", err)
	}
	c.add(500 * time.Millisecond)
	if _, err := qt.admitProduce("a", l, 10, false); err != nil {
		t.Fatalf("token a after its Retry-After: %v", err)
	}
	if refused[quotaProduceRequests] != 1 || len(refused) != 1 {
		t.Fatalf("refusals counted %v, want one produce_requests", refused)
	}
}

func TestQuotaProduceBytes(t *testing.T) {
	qt, c, _ := newTestQuotaTable(Quotas{ProduceBytes: 1000}, time.Minute)
	l := qt.defaults
	// A request larger than a second's quota goes (the bucket is not in
	// debt), then the next waits out its debt: 5000 - 1000 = 4s.
	if _, err := qt.admitProduce("a", l, 5000, false); err != nil {
		t.Fatal(err)
	}
	_, err := qt.admitProduce("a", l, 1, false)
	wantRefused(t, err, quotaProduceBytes, 4*time.Second)
	if _, err := qt.admitProduce("b", l, 1000, false); err != nil {
		t.Fatalf("token b: %v", err)
	}
	// A body of unknown size is charged once read.
	c.add(4 * time.Second)
	a, err := qt.admitProduce("a", l, -1, false)
	if err != nil {
		t.Fatal(err)
	}
	a.chargeBody(3000)
	a.chargeBody(3000) // charged once only
	_, err = qt.admitProduce("a", l, 1, false)
	wantRefused(t, err, quotaProduceBytes, 3*time.Second)
}

func TestQuotaIdempotencyKeys(t *testing.T) {
	// Three keys per 30s window: one key back every 10s.
	qt, c, _ := newTestQuotaTable(Quotas{IdempotencyKeys: 3}, 30*time.Second)
	l := qt.defaults
	var last *produceAdmission
	for i := range 3 {
		a, err := qt.admitProduce("a", l, 10, true)
		if err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		last = a
	}
	_, err := qt.admitProduce("a", l, 10, true)
	wantRefused(t, err, quotaIdempotencyKeys, 10*time.Second)
	if _, err := qt.admitProduce("a", l, 10, false); err != nil {
		t.Fatalf("a request without a key: %v", err)
	}
	// A request that created no key gives it back.
	last.refundKey()
	last.refundKey()
	if _, err := qt.admitProduce("a", l, 10, true); err != nil {
		t.Fatalf("after a refund: %v", err)
	}
	_, err = qt.admitProduce("a", l, 10, true)
	wantRefused(t, err, quotaIdempotencyKeys, 10*time.Second)
	c.add(10 * time.Second)
	if _, err := qt.admitProduce("a", l, 10, true); err != nil {
		t.Fatalf("a window's third later: %v", err)
	}
}

// TestQuotaRefusalTakesNothing checks that a request refused by one
// quota is not charged by the others.
func TestQuotaRefusalTakesNothing(t *testing.T) {
	qt, _, _ := newTestQuotaTable(Quotas{ProduceRequests: 2, IdempotencyKeys: 1}, time.Minute)
	l := qt.defaults
	if _, err := qt.admitProduce("a", l, 10, true); err != nil {
		t.Fatal(err)
	}
	// Refused for its key, it takes no request: one is left.
	_, err := qt.admitProduce("a", l, 10, true)
	wantRefused(t, err, quotaIdempotencyKeys, time.Minute)
	if _, err := qt.admitProduce("a", l, 10, false); err != nil {
		t.Fatalf("the request left: %v", err)
	}
	_, err = qt.admitProduce("a", l, 10, false)
	wantRefused(t, err, quotaProduceRequests, 500*time.Millisecond)
}

func TestQuotaFetch(t *testing.T) {
	qt, c, _ := newTestQuotaTable(Quotas{FetchBytes: 100, LongPolls: 2}, time.Minute)
	l := qt.defaults
	done1, err := qt.admitFetch("a", l, true)
	if err != nil {
		t.Fatal(err)
	}
	done2, err := qt.admitFetch("a", l, true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = qt.admitFetch("a", l, true)
	wantRefused(t, err, quotaLongPolls, quotaLongPollRetry)
	// A fetch that does not wait, and another token's, still go.
	doneShort, err := qt.admitFetch("a", l, false)
	if err != nil {
		t.Fatalf("a fetch without a wait: %v", err)
	}
	doneShort(0)
	doneB, err := qt.admitFetch("b", l, true)
	if err != nil {
		t.Fatalf("token b: %v", err)
	}
	doneB(0)
	// An answer frees its long poll and is charged its bytes: 1000
	// answered at 100/s is 9s of debt.
	done1(1000)
	_, err = qt.admitFetch("a", l, true)
	wantRefused(t, err, quotaFetchBytes, 9*time.Second)
	c.add(9 * time.Second)
	done3, err := qt.admitFetch("a", l, true)
	if err != nil {
		t.Fatalf("after the debt: %v", err)
	}
	done2(0)
	done3(0)
	if n := qt.m["a"].longPolls; n != 0 {
		t.Fatalf("long polls held after every answer: %d", n)
	}
}

// TestQuotaOverrides checks that a token's own quotas replace the
// defaults (0 lifting one), and that a change applies at once while
// keeping the debt.
func TestQuotaOverrides(t *testing.T) {
	qt, _, _ := newTestQuotaTable(Quotas{ProduceBytes: 1000, ProduceRequests: 1}, time.Minute)
	own := qt.defaults.with(map[string]int64{wire.QuotaProduceRequests: 0, wire.QuotaProduceBytes: 10, "unknown": 5})
	if own != (Quotas{ProduceBytes: 10}).limits() {
		t.Fatalf("limits with overrides = %v", own)
	}
	for i := range 3 {
		if _, err := qt.admitProduce("a", qt.defaults.with(map[string]int64{wire.QuotaProduceRequests: 0}), 0, false); err != nil {
			t.Fatalf("unlimited requests, request %d: %v", i, err)
		}
	}
	if _, err := qt.admitProduce("a", own, 110, false); err != nil {
		t.Fatal(err)
	}
	_, err := qt.admitProduce("a", own, 1, false)
	wantRefused(t, err, quotaProduceBytes, 10*time.Second)
	// Raised to 50/s: the 100 bytes of debt now take 2s.
	raised := own.with(map[string]int64{wire.QuotaProduceBytes: 50})
	_, err = qt.admitProduce("a", raised, 1, false)
	wantRefused(t, err, quotaProduceBytes, 2*time.Second)
	// Lifted: no debt holds.
	if _, err := qt.admitProduce("a", own.with(map[string]int64{wire.QuotaProduceBytes: 0}), 1, false); err != nil {
		t.Fatalf("lifted quota: %v", err)
	}
}

// TestQuotaTableBound fills the table and checks what a new token
// evicts: idle states first (which lose nothing), then the least
// recently used, never one holding a long poll.
func TestQuotaTableBound(t *testing.T) {
	qt, c, _ := newTestQuotaTable(Quotas{ProduceBytes: 100, LongPolls: 5}, time.Minute)
	l := qt.defaults
	if _, err := qt.admitFetch("polling", l, true); err != nil {
		t.Fatal(err)
	}
	if _, err := qt.admitProduce("indebt", l, 1000, false); err != nil {
		t.Fatal(err)
	}
	for i := range maxQuotaStates - 2 {
		if _, err := qt.admitProduce(fmt.Sprint("idle", i), l, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	if n := qt.states(); n != maxQuotaStates {
		t.Fatalf("states = %d, want %d", n, maxQuotaStates)
	}
	c.add(time.Microsecond)
	if _, err := qt.admitProduce("new", l, 1000, false); err != nil {
		t.Fatal(err)
	}
	if n := qt.states(); n != 3 {
		t.Fatalf("states after eviction = %d, want 3 (polling, indebt, new)", n)
	}
	for _, id := range []string{"polling", "indebt", "new"} {
		if qt.m[id] == nil {
			t.Errorf("state of %s was evicted", id)
		}
	}
	// Fill with busy states (in debt): a new token evicts the least
	// recently used one, not the long poll's.
	for i := range maxQuotaStates - 3 {
		c.add(time.Microsecond)
		if _, err := qt.admitProduce(fmt.Sprint("busy", i), l, 1000, false); err != nil {
			t.Fatal(err)
		}
	}
	c.add(time.Microsecond)
	if _, err := qt.admitProduce("newer", l, 1000, false); err != nil {
		t.Fatal(err)
	}
	if n := qt.states(); n != maxQuotaStates {
		t.Fatalf("states = %d, want %d", n, maxQuotaStates)
	}
	if qt.m["polling"] == nil || qt.m["newer"] == nil {
		t.Fatal("the long poll's or the newest state was evicted")
	}
	if qt.m["indebt"] != nil {
		t.Fatal("the least recently used state was kept")
	}
}

func TestQuotaValidate(t *testing.T) {
	if err := (Options{Quotas: Quotas{FetchBytes: -1, LongPolls: -2}}).Validate(); err == nil {
		t.Fatal("negative quotas validate")
	}
	if got := (Options{Quotas: Quotas{FetchBytes: -1, LongPolls: 3}}).withDefaults().Quotas; got != (Quotas{LongPolls: 3}) {
		t.Fatalf("withDefaults quotas = %+v", got)
	}
}

// BenchmarkQuotaAdmit measures what the quotas add to a produce and a
// fetch, for tokens spread over 1,000 states.
func BenchmarkQuotaAdmit(b *testing.B) {
	qt := &quotaTable{defaults: (Quotas{ProduceBytes: 1 << 40, ProduceRequests: 1 << 40, FetchBytes: 1 << 40, LongPolls: 1 << 20, IdempotencyKeys: 1 << 40}).limits(),
		window: time.Minute, now: time.Now}
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("%016x", i)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			id := ids[i%len(ids)]
			i++
			a, err := qt.admitProduce(id, qt.defaults, 1000, true)
			if err != nil {
				b.Fatal(err)
			}
			a.refundKey()
			done, err := qt.admitFetch(id, qt.defaults, true)
			if err != nil {
				b.Fatal(err)
			}
			done(1000)
		}
	})
}
