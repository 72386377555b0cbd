package client_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/wire"
)

// A stand-in node that checks the producer's invariants: no two requests
// in flight share a partition, a retry repeats its batch's Idempotency-Key
// and body exactly, and distinct batches have distinct keys. It fails
// the first attempt of every batch with 503, answers retries the way a
// node that deduplicates would, and assigns offsets per partition.
func TestProducerInvariantsAgainstStandIn(t *testing.T) {
	var mu sync.Mutex
	inflight := map[int32]bool{}
	bodies := map[string][]byte{}
	answers := map[string][]byte{}
	next := map[int32]int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			io.WriteString(w, `{"name":"t","partitions":8,"retention_ms":0,"partition_stats":[]}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		key := r.Header.Get("Idempotency-Key")
		recs, err := wire.DecodeProduceRequest(body)
		if err != nil || key == "" {
			t.Errorf("produce request: key %q, %v", key, err)
			w.WriteHeader(400)
			return
		}
		parts := map[int32]bool{}
		for _, rec := range recs {
			parts[rec.Partition] = true
		}
		mu.Lock()
		for p := range parts {
			if inflight[p] {
				t.Errorf("two requests in flight for partition %d", p)
			}
			inflight[p] = true
		}
		first, seen := bodies[key]
		if seen && !bytes.Equal(first, body) {
			t.Errorf("retry of %s has another body", key)
		}
		bodies[key] = body
		answer := answers[key]
		mu.Unlock()
		defer func() {
			mu.Lock()
			for p := range parts {
				inflight[p] = false
			}
			mu.Unlock()
		}()
		// Some latency, so that requests overlap.
		time.Sleep(time.Millisecond)
		if !seen {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":"unavailable","message":"first attempt"}}`)
			return
		}
		if answer == nil {
			results := make([]wire.ProduceResult, len(recs))
			mu.Lock()
			for i, rec := range recs {
				results[i] = wire.ProduceResult{Partition: rec.Partition, Offset: next[rec.Partition]}
				next[rec.Partition]++
			}
			answer = wire.AppendProduceResponse(nil, results)
			answers[key] = answer
			mu.Unlock()
		}
		w.Header().Set("Content-Type", wire.ContentType)
		w.Write(answer)
	}))
	defer srv.Close()

	c := newClient(t, srv.URL, client.WithRetries(3, time.Millisecond, 5*time.Millisecond))
	p, err := c.NewProducer(client.WithMaxBatchRecords(5), client.WithMaxInFlight(8), client.WithLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	futures := make([]*client.Future, n)
	for i := range n {
		rec := client.Record{Topic: "t", Value: []byte(strconv.Itoa(i))}
		switch i % 3 {
		case 0:
			rec.Key = []byte("k" + strconv.Itoa(i%13))
		case 1:
			rec.Partition = new(int32(i % 8))
		}
		futures[i] = p.ProduceAsync(rec)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	last := map[int32]int64{}
	for i, f := range futures {
		res, err := f.Result()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if prev, ok := last[res.Partition]; ok && res.Offset <= prev {
			t.Fatalf("record %d at offset %d of partition %d, after %d", i, res.Offset, res.Partition, prev)
		}
		last[res.Partition] = res.Offset
	}
	total := int64(0)
	for _, v := range next {
		total += v
	}
	if total != n {
		t.Fatalf("the stand-in appended %d records, want %d", total, n)
	}
	if len(bodies) < n/5 {
		t.Fatalf("%d batches for %d records of at most 5 per batch", len(bodies), n)
	}
}
