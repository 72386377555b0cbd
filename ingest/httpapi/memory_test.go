package httpapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/membudget"
	"github.com/mambamq/mamba/internal/wire"
)

// stallReader is a request body that delivers data, then, at the next
// Read, announces on stalled that the handler waits for more (every
// buffer it read into was reserved before that Read) and blocks until
// release is closed, when it fails as a dropped connection would.
type stallReader struct {
	data    []byte
	stalled chan<- struct{}
	release <-chan struct{}
	told    bool
}

func (s *stallReader) Read(p []byte) (int, error) {
	if len(s.data) > 0 {
		n := copy(p, s.data)
		s.data = s.data[n:]
		return n, nil
	}
	if !s.told {
		s.told = true
		s.stalled <- struct{}{}
	}
	<-s.release
	return 0, io.ErrUnexpectedEOF
}

func (s *stallReader) Close() error { return nil }

// TestStalledBodiesLeaveRoomForSmallRequests fills the memory budget
// with one client's produce bodies that announce 16 MiB each and stall
// after 1 MiB: each holds a 2 MiB buffer, reserved before it was read
// into. A large produce from another client is then refused with 429
// (its body could not grow), but a small produce and a small fetch
// still go through, on the headroom kept for small requests; and once
// the stalled requests end, their memory is back.
func TestStalledBodiesLeaveRoomForSmallRequests(t *testing.T) {
	reg := prometheus.NewRegistry()
	budget := membudget.New(8<<20, reg) // 256 KiB of headroom
	at := newAPITest(t, Options{Budget: budget})
	stalled, release := make(chan struct{}), make(chan struct{})
	answers := make(chan int, 3)
	for range 3 {
		req := httptest.NewRequest(http.MethodPost, "/v1/topics/orders/records", nil)
		req.Body = &stallReader{data: make([]byte, 1<<20), stalled: stalled, release: release}
		req.ContentLength = 16<<20 - 1
		req.Header.Set("Content-Type", mediaBinary)
		go func() {
			rec := httptest.NewRecorder()
			at.handler.ServeHTTP(rec, req)
			answers <- rec.Code
		}()
		<-stalled
	}
	if all, body := budget.InUse(membudget.Body); all != 6<<20 || body != 6<<20 {
		t.Fatalf("stalled bodies hold %d bytes of the budget (%d as body), want 6 MiB", all, body)
	}

	big := make([]byte, 3<<19) // 1.5 MiB: its buffer cannot grow past 1 MiB
	rec := at.do(http.MethodPost, "/v1/topics/orders/records", bytes.NewReader(big), "Content-Type", mediaBinary)
	if rec.Code != http.StatusTooManyRequests || errorOf(t, rec).Code != "overloaded" || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("large produce with the budget full: %d %s, want 429 overloaded with Retry-After", rec.Code, rec.Body)
	}
	if n := refusals(t, reg, "body"); n != 1 {
		t.Errorf("%v body refusals counted, want 1", n)
	}

	small := wire.AppendProduceRequest(nil, []wire.ProduceRecord{{Partition: -1, Value: []byte("small")}})
	rec = at.do(http.MethodPost, "/v1/topics/orders/records", bytes.NewReader(small), "Content-Type", mediaBinary)
	if rec.Code != http.StatusOK {
		t.Fatalf("small produce with the budget full of stalled bodies: %d %s, want 200", rec.Code, rec.Body)
	}
	if got := at.svc.lastProduce(t); len(got.records) != 1 || string(got.records[0].Value) != "small" {
		t.Fatalf("the service got %+v, want the small record", got.records)
	}
	at.svc.fetchRes = ingest.FetchResult{Records: []ingest.FetchedRecord{{Offset: 0, Record: chunk.Record{Value: []byte("r")}}}, NextOffset: 1}
	if rec := at.do(http.MethodGet, "/v1/topics/orders/partitions/0/records?offset=0", nil); rec.Code != http.StatusOK {
		t.Fatalf("small fetch with the budget full of stalled bodies: %d %s, want 200", rec.Code, rec.Body)
	}
	if all, _ := budget.InUse(membudget.Body); all != 6<<20 {
		t.Errorf("%d bytes reserved after the other requests were answered, want the stalled 6 MiB", all)
	}

	close(release)
	for range 3 {
		if code := <-answers; code != http.StatusBadRequest {
			t.Errorf("a stalled request whose connection failed was answered %d, want 400", code)
		}
	}
	if all, _ := budget.InUse(membudget.Body); all != 0 {
		t.Errorf("%d bytes still reserved after every request ended", all)
	}
}

// refusals returns mamba_memory_refusals_total{kind} from reg.
func refusals(t *testing.T, reg *prometheus.Registry, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "mamba_memory_refusals_total" && matchLabels(m, map[string]string{"kind": kind}) {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no mamba_memory_refusals_total{kind=%q}", kind)
	return 0
}

// TestFetchResponseReservesItsSize answers fetches of eight 256 KiB
// records while other holders take more and more of the budget: the
// response reserves its size before it is built and is released once
// written; with too little room it carries the records that fit (and a
// next offset after them), and with room for none it is 429.
func TestFetchResponseReservesItsSize(t *testing.T) {
	budget := membudget.New(4<<20, nil) // bulk up to 3.875 MiB
	at := newAPITest(t, Options{Budget: budget})
	var recs []ingest.FetchedRecord
	for i := range 8 {
		recs = append(recs, ingest.FetchedRecord{Offset: int64(i), Record: chunk.Record{Value: bytes.Repeat([]byte{byte(i)}, 256<<10)}})
	}
	at.svc.fetchFn = func(context.Context, ingest.FetchRequest) (ingest.FetchResult, error) {
		return ingest.FetchResult{Records: recs, NextOffset: 8, HighWatermark: 8}, nil
	}
	fetch := func() *httptest.ResponseRecorder {
		return at.do(http.MethodGet, "/v1/topics/orders/partitions/0/records?offset=0", nil, "Accept", mediaBinary)
	}
	for _, tc := range []struct {
		held        int64 // reserved by others
		wantRecords int
	}{
		{0, 8},
		{2 << 20, 4}, // 1.875 MiB left: half the records
		{3 << 20, 2}, // 896 KiB left
		{3<<20 + 512<<10, 1},
		{3<<20 + 800<<10, 0}, // not even one: 429
	} {
		other, ok := budget.Reserve(membudget.Buffered, tc.held)
		if !ok {
			t.Fatalf("could not reserve %d", tc.held)
		}
		rec := fetch()
		name := "held " + strconv.FormatInt(tc.held>>10, 10) + " KiB"
		if tc.wantRecords == 0 {
			if rec.Code != http.StatusTooManyRequests || errorOf(t, rec).Code != "overloaded" {
				t.Fatalf("%s: %d %s, want 429 overloaded", name, rec.Code, rec.Body)
			}
		} else {
			if rec.Code != http.StatusOK {
				t.Fatalf("%s: %d %s", name, rec.Code, rec.Body)
			}
			res, err := wire.DecodeFetchResponse(rec.Body.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Records) != tc.wantRecords || res.NextOffset != int64(tc.wantRecords) {
				t.Fatalf("%s: %d records, next offset %d; want %d and %d", name, len(res.Records), res.NextOffset, tc.wantRecords, tc.wantRecords)
			}
		}
		if all, _ := budget.InUse(membudget.Fetch); all != tc.held {
			t.Fatalf("%s: %d bytes reserved after the fetch was answered, want only the other holder's %d", name, all, tc.held)
		}
		other.Release()
	}
}
