package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/mambatest"
)

// hookRecorder keeps every event the client reports.
type hookRecorder struct {
	mu       sync.Mutex
	requests []client.RequestInfo
	batches  []client.ProduceBatchInfo
	fetches  []client.FetchInfo
}

func (h *hookRecorder) OnRequest(i client.RequestInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests = append(h.requests, i)
}

func (h *hookRecorder) OnProduceBatch(i client.ProduceBatchInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.batches = append(h.batches, i)
}

func (h *hookRecorder) OnFetch(i client.FetchInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fetches = append(h.fetches, i)
}

// Hooks see every request, produce batch and fetch, with the values of
// what happened: counts and bytes of the records sent and read back,
// routes, statuses and errors.
func TestHooksReportWhatHappened(t *testing.T) {
	h := &hookRecorder{}
	srv := mambatest.Start(t, mambatest.WithTopic("hooked", 2), mambatest.WithClientOptions(client.WithHooks(h)))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	p, err := srv.Client.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wantBytes int64
	futures := make([]*client.Future, n)
	for i := range n {
		rec := client.Record{Topic: "hooked", Key: fmt.Appendf(nil, "key-%d", i), Value: fmt.Appendf(nil, "value-%03d", i),
			Headers: []client.Header{{Name: "h", Value: []byte("xy")}}, Partition: new(int32(0))}
		wantBytes += int64(len(rec.Key) + len(rec.Value) + 1 + 2)
		futures[i] = p.ProduceAsync(rec)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range futures {
		if err := f.Err(); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := srv.Client.NewPartitionConsumer("hooked", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := pc.Fetch(ctx)
	if err != nil || len(recs) != n {
		t.Fatalf("fetch: %d records, %v; want %d", len(recs), err, n)
	}
	_, err = srv.Client.DescribeTopic(ctx, "missing")
	if !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("describe missing: %v", err)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	var batchRecords int
	var batchBytes int64
	for _, b := range h.batches {
		if b.Topic != "hooked" || b.Err != nil || b.Attempts != 1 || b.Duration <= 0 {
			t.Errorf("produce batch %+v: want topic hooked, no error, 1 attempt, a duration", b)
		}
		batchRecords += b.Records
		batchBytes += b.Bytes
	}
	if batchRecords != n || batchBytes != wantBytes {
		t.Errorf("produce batches carried %d records of %d bytes, want %d of %d", batchRecords, batchBytes, n, wantBytes)
	}
	if len(h.fetches) != 1 {
		t.Fatalf("%d fetches reported, want 1: %+v", len(h.fetches), h.fetches)
	}
	if f := h.fetches[0]; f.Topic != "hooked" || f.Partition != 0 || f.Offset != 0 || f.Records != n || f.Bytes != wantBytes || f.Err != nil {
		t.Errorf("fetch reported %+v, want hooked/0 at 0 with %d records of %d bytes", f, n, wantBytes)
	}
	routes := map[string]int{}
	for _, r := range h.requests {
		routes[fmt.Sprintf("%s %s %d", r.Method, r.Route, r.Status)]++
		if r.Duration <= 0 {
			t.Errorf("request %s %s has no duration", r.Method, r.Path)
		}
		if len(r.RequestID) != 16 {
			t.Errorf("request %s %s (%d) has request id %q, want the node's", r.Method, r.Path, r.Status, r.RequestID)
		}
	}
	for _, want := range []string{
		"POST /v1/topics/{topic}/records 200",
		"GET /v1/topics/{topic}/partitions/{partition}/records 200",
		"GET /v1/topics/{topic} 404",
	} {
		if routes[want] == 0 {
			t.Errorf("no request %q reported; got %v", want, routes)
		}
	}
	last := h.requests[len(h.requests)-1]
	if last.Path != "/v1/topics/missing" || !errors.Is(last.Err, client.ErrTopicNotFound) || last.Method != http.MethodGet {
		t.Errorf("last request %+v, want GET /v1/topics/missing failing with topic_not_found", last)
	}
}

// A request that gets no answer (nothing listens on the port) is reported
// with status 0 and its error, once per attempt.
func TestRequestHookSeesConnectionFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := &hookRecorder{}
	c, err := client.New("http://"+addr, client.WithHooks(h), client.WithRetries(2, time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListTopics(t.Context()); err == nil {
		t.Fatal("list topics with nothing listening succeeded")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.requests) != 2 {
		t.Fatalf("%d attempts reported, want 2: %+v", len(h.requests), h.requests)
	}
	for _, r := range h.requests {
		if r.Status != 0 || !client.IsRetryable(r.Err) || r.Route != "/v1/topics" {
			t.Errorf("attempt reported %+v, want status 0 and a retryable error on /v1/topics", r)
		}
	}
}

func TestWithHooksRefusesANonHook(t *testing.T) {
	_, err := client.New("http://127.0.0.1:1", client.WithHooks(struct{}{}))
	if err == nil {
		t.Fatal("New accepted a hook that implements nothing")
	}
}
