package membudget

import (
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBulkStopsAtHeadroomSmallUsesIt(t *testing.T) {
	const limit = 32 << 20 // headroom 1 MiB
	b := New(limit, nil)
	bulk := b.Start(Body)
	if !bulk.Grow(limit - 1<<20) {
		t.Fatal("bulk reservation of limit minus headroom refused")
	}
	if bulk.Grow(1) {
		t.Fatal("bulk reservation took the headroom")
	}
	small := b.Start(Body)
	for range 16 {
		if !small.Grow(SmallBytes / 16) {
			t.Fatalf("small reservation refused at %d bytes with the headroom free", small.Size())
		}
	}
	if small.Grow(1) {
		t.Fatal("a reservation past SmallBytes took the headroom")
	}
	if all, ofKind := b.InUse(Body); all != limit-1<<20+SmallBytes || ofKind != all {
		t.Fatalf("in use %d (body %d), want %d", all, ofKind, limit-1<<20+SmallBytes)
	}
	bulk.Release()
	small.Release()
	if all, _ := b.InUse(Body); all != 0 || bulk.Size() != 0 {
		t.Fatalf("after release: in use %d, bulk holds %d", all, bulk.Size())
	}
}

func TestWholeLimitNeverExceeded(t *testing.T) {
	b := New(1<<20, nil) // headroom 32 KiB
	var rs []*Reservation
	for {
		r := b.Start(Fetch)
		if !r.Grow(SmallBytes / 2) {
			break
		}
		rs = append(rs, r)
	}
	if all, _ := b.InUse(Fetch); all > 1<<20 || all < 1<<20-SmallBytes/2 {
		t.Fatalf("small reservations filled %d of %d", all, 1<<20)
	}
	for _, r := range rs {
		r.Release()
	}
}

func TestMoveAbsorbShrink(t *testing.T) {
	b := New(64<<20, nil)
	body, _ := b.Reserve(Body, 1000)
	dec, _ := b.Reserve(Decode, 300)
	body.Absorb(dec)
	if _, d := b.InUse(Decode); d != 0 || dec.Size() != 0 || body.Size() != 1300 {
		t.Fatalf("after absorb: decode kind %d, decode holds %d, body holds %d", d, dec.Size(), body.Size())
	}
	body.Move(Buffered)
	if all, buf := b.InUse(Buffered); all != 1300 || buf != 1300 {
		t.Fatalf("after move: in use %d, buffered %d; want 1300, 1300", all, buf)
	}
	if _, bd := b.InUse(Body); bd != 0 {
		t.Fatalf("body kind still holds %d after the move", bd)
	}
	body.Shrink(5000) // more than held: gives back what there is
	if all, _ := b.InUse(Buffered); all != 0 || body.Size() != 0 {
		t.Fatalf("after shrink: in use %d, reservation %d", all, body.Size())
	}
}

func TestRefusalsCountedByKind(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := New(1<<20, reg)
	if _, ok := b.Reserve(Fetch, 2<<20); ok {
		t.Fatal("a reservation over the limit was granted")
	}
	r := b.Start(Cache)
	if r.TryGrow(2 << 20) {
		t.Fatal("TryGrow over the limit succeeded")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "mamba_memory_refusals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if got["fetch"] != 1 || got["cache"] != 0 {
		t.Fatalf("refusals %v; want fetch 1 (Grow) and cache 0 (TryGrow does not count)", got)
	}
	r.Refused()
	if n := testutil.ToFloat64(b.refusals[Cache]); n != 1 {
		t.Fatalf("cache refusals %v after Refused, want 1", n)
	}
	ok, _ := b.Reserve(LongPoll, 4096)
	if v := testutil.ToFloat64(b.inUseBy[LongPoll]); v != 4096 {
		t.Fatalf("long_poll gauge %v, want 4096", v)
	}
	ok.Release()
}

func TestNilBudgetAdmitsEverything(t *testing.T) {
	var b *Budget
	r, ok := b.Reserve(Body, 1<<40)
	if !ok || r != nil || !r.Grow(1<<40) || r.Size() != 0 || b.Free() <= 0 {
		t.Fatal("a nil budget refused or counted")
	}
	r.Move(Buffered)
	r.Absorb(nil)
	r.Release()
}

func TestConcurrentReservationsBalance(t *testing.T) {
	b := New(8<<20, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				r := b.Start(Body)
				if r.Grow(4096) {
					r.Grow(100 << 10)
					r.Move(Buffered)
					r.Release()
				}
			}
		})
	}
	wg.Wait()
	if all, _ := b.InUse(Buffered); all != 0 {
		t.Fatalf("%d bytes still reserved after every reservation was released", all)
	}
}
