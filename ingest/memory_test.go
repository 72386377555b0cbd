package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mambamq/mamba/internal/membudget"
)

func TestMemoryBudgetSplit(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name                             string
		cfg                              Config
		budget, buffered, cache, catchUp int64
	}{
		{"defaults", Config{}, DefaultMemoryBudget, DefaultMaxBufferedBytes, DefaultCacheBytes, DefaultCatchUpCacheBytes},
		{"budget alone", Config{MemoryBudget: 1536 * mib}, 1536 * mib, 512 * mib, 512 * mib, 128 * mib},
		{"shares alone", Config{MaxBufferedBytes: 512 * mib}, (512 + 256 + 64) * mib / 3 * 4, 512 * mib, 256 * mib, 64 * mib},
		{"budget and one share", Config{MemoryBudget: 384 * mib, CacheBytes: 16 * mib}, 384 * mib, 128 * mib, 16 * mib, 32 * mib},
		{"buffer at least a chunk", Config{MemoryBudget: 24 * mib, FlushBytes: 16 * mib, CatchUpCacheBytes: 4 * mib}, 24 * mib, 16 * mib, 8 * mib, 4 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cfg.withDefaults()
			if got.MemoryBudget != tc.budget || got.MaxBufferedBytes != tc.buffered || got.CacheBytes != tc.cache || got.CatchUpCacheBytes != tc.catchUp {
				t.Errorf("budget %d, buffered %d, cache %d, catch-up %d; want %d, %d, %d, %d",
					got.MemoryBudget, got.MaxBufferedBytes, got.CacheBytes, got.CatchUpCacheBytes, tc.budget, tc.buffered, tc.cache, tc.catchUp)
			}
		})
	}
	for _, bad := range []Config{
		{NodeID: "n", MemoryBudget: 512 << 20, MaxBufferedBytes: 256 << 20, CacheBytes: 256 << 20},
		{NodeID: "n", MemoryBudget: -1},
		{NodeID: "n", MemoryBudget: 24 << 20, FlushBytes: 16 << 20, CatchUpCacheBytes: 4 << 20}, // 16 + 8 + 4 > 7/8 of 24
	} {
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "memory budget") {
			t.Errorf("%+v: %v, want an error naming the memory budget", bad, err)
		}
	}
}

// hog reserves all but free bytes of n's budget (bulk), and releases
// them when the test ends.
func hog(t *testing.T, n *Node, free int64) *membudget.Reservation {
	t.Helper()
	r, ok := n.budget.Reserve(membudget.Buffered, n.budget.Free()-free)
	if !ok {
		t.Fatal("could not reserve the budget")
	}
	t.Cleanup(r.Release)
	return r
}

// memoryConfig is a node with a 16 MiB budget (512 KiB of headroom).
func memoryConfig() Config {
	return Config{MemoryBudget: 16 << 20, FlushBytes: 1 << 20, MaxBufferedBytes: 1 << 20, CacheBytes: 1 << 20, CatchUpCacheBytes: 4 << 20}
}

// TestFetchReadsWhatTheBudgetHolds fetches four batches of about 100 KiB
// with room in the budget for one: the fetch reserves before it reads,
// so it reads and answers the first batch only; with room for none it is
// refused as overloaded. Its reservation is the caller's, until
// released.
func TestFetchReadsWhatTheBudgetHolds(t *testing.T) {
	r := newReadEnv(t, memoryConfig())
	r.addChunk([]int{100, 100, 100, 100}, 0)
	held := hog(t, r.n, 300<<10)
	res, err := r.fetch(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 100 {
		t.Fatalf("fetched %d records with room for one batch, want its 100", len(res.Records))
	}
	r.check(res, 0)
	if _, f := r.n.budget.InUse(membudget.Fetch); f == 0 || f != res.Memory.Size() || f > 300<<10 {
		t.Fatalf("fetch holds %d bytes of the budget (reservation %d), want its one batch's cost", f, res.Memory.Size())
	}
	res.Memory.Release()
	held.Release()

	hog(t, r.n, 64<<10)
	_, err = r.fetch(100, 1<<20)
	var oe *OverloadedError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "memory") {
		t.Fatalf("fetch with no room for a batch: %v, want overloaded (memory budget)", err)
	}
	if _, f := r.n.budget.InUse(membudget.Fetch); f != 0 {
		t.Errorf("a refused fetch holds %d bytes", f)
	}
}

// TestLongPollNotParkedWhenBudgetFull fills the budget, headroom
// included: a long-poll is then not parked (no slot, no wake-up) and
// answers empty after a plain short wait, as past MaxLongPolls.
func TestLongPollNotParkedWhenBudgetFull(t *testing.T) {
	r := newReadEnv(t, memoryConfig())
	hog(t, r.n, 0)
	var small []*membudget.Reservation
	for {
		s, ok := r.n.budget.Reserve(membudget.Body, membudget.SmallBytes)
		if !ok {
			break
		}
		small = append(small, s)
	}
	res, err := r.n.Fetch(t.Context(), FetchRequest{Topic: "t", Partition: 0, Offset: 0, Wait: 20 * time.Second})
	if err != nil || len(res.Records) != 0 {
		t.Fatalf("long-poll with the budget full: %d records, %v; want an empty answer", len(res.Records), err)
	}
	if got := testutil.ToFloat64(r.n.metrics.longPollsRefused); got != 1 || r.n.longPolls.Load() != 0 {
		t.Errorf("%v long-polls refused, %d parked; want 1 and 0", got, r.n.longPolls.Load())
	}
	for _, s := range small {
		s.Release()
	}
}

// TestCacheYieldsToBudget: a cache evicts its own oldest batches when the
// budget cannot hold a new one, and caches nothing when even empty it
// could not.
func TestCacheYieldsToBudget(t *testing.T) {
	b := membudget.New(1<<20, nil) // bulk up to 992 KiB
	c := newBatchCache(1<<20, b.Start(membudget.Cache))
	for _, k := range []string{"a", "b", "c", "d"} {
		c.put(k, make([]byte, 200<<10))
	}
	other, ok := b.Reserve(membudget.Fetch, 100<<10)
	if !ok {
		t.Fatal("could not reserve 100 KiB")
	}
	c.put("e", make([]byte, 200<<10)) // 800 + 100 + 200 KiB > 992 KiB: "a" goes
	for k, want := range map[string]bool{"a": false, "b": true, "c": true, "d": true, "e": true} {
		if c.has(k) != want {
			t.Errorf("cached %s: %v, want %v", k, c.has(k), want)
		}
	}
	if _, cached := b.InUse(membudget.Cache); cached != c.size() || cached != 800<<10 {
		t.Errorf("cache reserves %d, holds %d; want both 800 KiB", cached, c.size())
	}
	if !other.Grow(b.Free()) {
		t.Fatal("could not reserve the rest of the budget")
	}
	c.put("f", make([]byte, 900<<10))
	if c.has("f") || c.size() != 0 {
		t.Errorf("a batch the budget cannot hold was cached (cache holds %d)", c.size())
	}
	if _, cached := b.InUse(membudget.Cache); cached != 0 {
		t.Errorf("an empty cache reserves %d", cached)
	}
}

// TestProduceReservesBufferedMemory: a produce request holds its size in
// memory from the budget until it is acknowledged; with the budget full
// a large one is refused as overloaded while a small one still fits in
// the headroom.
func TestProduceReservesBufferedMemory(t *testing.T) {
	c := newCluster(t)
	n := c.node(memoryConfig(), nil)
	ctx := t.Context()
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	held := hog(t, n, 100<<10)
	big := []ProduceRecord{{Value: make([]byte, 200<<10), Partition: 0}}
	_, err := n.Produce(ctx, "t", big, ProduceOptions{})
	if !errors.Is(err, ErrOverloaded) || !strings.Contains(err.Error(), "memory") {
		t.Fatalf("large produce with the budget full: %v, want overloaded (memory budget)", err)
	}
	if _, err := n.Produce(ctx, "t", []ProduceRecord{{Value: []byte("small"), Partition: 0}}, ProduceOptions{}); err != nil {
		t.Fatalf("small produce with the budget full: %v", err)
	}
	held.Release()
	if _, err := n.Produce(ctx, "t", big, ProduceOptions{}); err != nil {
		t.Fatalf("large produce with room: %v", err)
	}
	if _, buffered := n.budget.InUse(membudget.Buffered); buffered != 0 {
		t.Errorf("%d bytes still reserved as buffered after every produce was acknowledged", buffered)
	}
}
