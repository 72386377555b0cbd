package httpapi

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/wire"
)

func TestBodyPoolClasses(t *testing.T) {
	for c := 1; c < bodyClasses; c++ {
		if bodyClassSize(c) <= bodyClassSize(c-1) {
			t.Fatalf("class %d size %d is not above class %d size %d", c, bodyClassSize(c), c-1, bodyClassSize(c-1))
		}
	}
	if largest := int64(bodyClassSize(bodyClasses - 1)); largest < DefaultMaxRequestBytes+1 {
		t.Fatalf("largest class %d cannot hold a body of the default limit %d", largest, DefaultMaxRequestBytes)
	}
	for _, n := range []int{minPooledBody / 4 * 3, minPooledBody, minPooledBody + 1, 1 << 20, 1<<20 + 1, 16<<20 + 1} {
		c := bodyClassFor(n)
		if c < 0 || bodyClassSize(c) < n || c > 0 && bodyClassSize(c-1) >= n {
			t.Errorf("bodyClassFor(%d) = %d: not the smallest class that holds it", n, c)
		}
	}
	for _, n := range []int{0, 1, 1000, minPooledBody/4*3 - 1, 1 << 30} {
		if c := bodyClassFor(n); c != -1 {
			t.Errorf("bodyClassFor(%d) = %d, want -1 (not pooled)", n, c)
		}
	}

	var p bodyPool
	p.release(make([]byte, 0, minPooledBody+1)) // not a class size: dropped
	if b := p.take(bodyClassFor(minPooledBody + 1)); b != nil {
		t.Errorf("a buffer of a size outside the classes was pooled (cap %d)", cap(b))
	}
}

// TestBodyPoolRead checks that pooled reads return exactly the body,
// whatever its size, the announced length and the buffer reused.
func TestBodyPoolRead(t *testing.T) {
	var p bodyPool
	for _, n := range []int{0, 1, 1000, minPooledBody - 1, minPooledBody, bodyPrealloc - 1, bodyPrealloc, bodyPrealloc + 17, 3*bodyPrealloc + 5} {
		data := bytes.Repeat([]byte{byte(n)}, n)
		for _, hint := range []int64{-1, 0, int64(n)} {
			for range 2 { // the second round reuses the released buffer
				got, err := p.read(iotestHalfReader{bytes.NewReader(data)}, hint, nil)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("n=%d hint=%d: got %d bytes, err %v", n, hint, len(got), err)
				}
				p.release(got)
			}
		}
	}
}

// TestPooledBodiesKeptUntilEncoded produces with ack=buffered, so that
// each handler returns while its records still alias its request body,
// and checks that the bodies of later requests (of the same size, so that
// a recycled buffer would be reused at once) did not overwrite them
// before they were copied into their chunk.
func TestPooledBodiesKeptUntilEncoded(t *testing.T) {
	n := startNode(t, ingest.Config{FlushInterval: 500 * time.Millisecond})
	if _, err := n.CreateTopic(t.Context(), ingest.TopicConfig{Name: "pool", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(n, Options{}, nil, nil, nil))
	defer srv.Close()

	const requests, perRequest = 40, 100
	value := func(req, i int) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("%03d-%03d|", req, i)), 100)
	}
	for r := range requests + 1 {
		recs := make([]wire.ProduceRecord, perRequest)
		for i := range recs {
			recs[i] = wire.ProduceRecord{Partition: int32(r % 2), Value: value(r, i)}
		}
		target := srv.URL + "/v1/topics/pool/records?ack=buffered"
		want := 202
		if r == requests {
			// The last one waits for its chunk, and so for every chunk
			// before it.
			target, want = srv.URL+"/v1/topics/pool/records", 200
		}
		resp, err := srv.Client().Post(target, wire.ContentType, bytes.NewReader(wire.AppendProduceRequest(nil, recs)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d", r, resp.StatusCode, want)
		}
	}

	read := readAll(t, n, "pool")
	seen := 0
	for p, recs := range read {
		for i, rec := range recs {
			// Records of one partition are in request order.
			r, k := 2*(i/perRequest)+int(p), i%perRequest
			if !bytes.Equal(rec.Value, value(r, k)) {
				t.Fatalf("partition %d offset %d: value %.20q..., want %.20q...", p, rec.Offset, rec.Value, value(r, k))
			}
			seen++
		}
	}
	if seen != (requests+1)*perRequest {
		t.Fatalf("read %d records, want %d", seen, (requests+1)*perRequest)
	}
}

// TestOverloadedBeforeReadingBody checks that a produce request whose
// announced body would overflow the node's buffer gets 429 with
// Retry-After, that its body is drained so the connection stays usable,
// and that nothing of it is stored.
func TestOverloadedBeforeReadingBody(t *testing.T) {
	n := startNode(t, ingest.Config{FlushBytes: 32 << 10, MaxBufferedBytes: 64 << 10, FlushInterval: time.Hour})
	if _, err := n.CreateTopic(t.Context(), ingest.TopicConfig{Name: "full", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(n, Options{}, nil, nil, nil))
	defer srv.Close()
	body := func(size int) []byte {
		return wire.AppendProduceRequest(nil, []wire.ProduceRecord{{Partition: 0, Value: bytes.Repeat([]byte("v"), size)}})
	}
	post := func(b []byte) *http.Response {
		t.Helper()
		resp, err := srv.Client().Post(srv.URL+"/v1/topics/full/records?ack=buffered", wire.ContentType, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	// 20 KiB stays buffered (under the 32 KiB flush size, with no flush
	// before an hour); another 50 KiB would pass the 64 KiB bound.
	if resp := post(body(20 << 10)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first request: status %d, want 202", resp.StatusCode)
	}
	resp := post(body(50 << 10))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("request over the buffer: status %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp.Close {
		t.Error("the 429 closed the connection; the body should have been drained")
	}
	if resp := post(body(10 << 10)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("request that fits after a 429: status %d, want 202", resp.StatusCode)
	}
	if err := n.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	desc, err := n.DescribeTopic(t.Context(), "full")
	if err != nil {
		t.Fatal(err)
	}
	if hw := desc.PartitionStats[0].HighWatermark; hw != 2 {
		t.Fatalf("high watermark %d after two accepted records, want 2", hw)
	}
}

func TestReadAllHint(t *testing.T) {
	for _, n := range []int{0, 1, 511, 512, 513, 4096, bodyPrealloc - 1, bodyPrealloc, bodyPrealloc + 1, 3*bodyPrealloc + 17} {
		data := bytes.Repeat([]byte{'x'}, n)
		for _, hint := range []int64{-1, 0, int64(n), int64(n) + 100} {
			got, err := readAllHint(iotestHalfReader{bytes.NewReader(data)}, hint, nil)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("n=%d hint=%d: got %d bytes, err %v", n, hint, len(got), err)
			}
			if hint == int64(n) && n > 0 && n < bodyPrealloc && cap(got) != n+1 {
				t.Errorf("n=%d: announced body read into capacity %d, want %d", n, cap(got), n+1)
			}
		}
	}
}

// iotestHalfReader reads at most half of what is asked (at least one
// byte), to exercise short reads.
type iotestHalfReader struct{ r io.Reader }

func (h iotestHalfReader) Read(p []byte) (int, error) {
	return h.r.Read(p[:max(1, len(p)/2)])
}

// TestBodyBufferGrowsWithArrivingBytes checks that a body announcing 16
// MiB and bringing 3 MiB is read into a buffer that doubled from
// bodyPrealloc as bytes arrived (4 MiB), not one of the announced size.
func TestBodyBufferGrowsWithArrivingBytes(t *testing.T) {
	for _, warm := range []bool{false, true} {
		var p bodyPool
		if warm {
			// A pooled buffer of the announced size's class must not be
			// handed out before the bytes arrive.
			c := bodyClassFor(16<<20 + 1)
			p.release(make([]byte, 0, bodyClassSize(c)))
		}
		data := bytes.Repeat([]byte{'x'}, 3<<20)
		got, err := p.read(bytes.NewReader(data), 16<<20, nil)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("warm %v: got %d bytes, err %v", warm, len(got), err)
		}
		if limit := 4<<20 + 4<<20/classesPerPow; cap(got) > limit {
			t.Errorf("warm pool %v: buffer of %d bytes for a 3 MiB body announced as 16 MiB; want at most %d", warm, cap(got), limit)
		}
	}
}

// rawProduce opens a connection to a server of at's handler, sends the
// headers of a JSON produce announcing contentLength bytes, runs send
// (which writes what it likes of the body until answered is closed), and
// returns the node's answer and the time from the headers to it.
func rawProduce(t *testing.T, at *apiTest, contentLength int, send func(conn net.Conn, answered <-chan struct{})) (*http.Response, []byte, time.Duration) {
	t.Helper()
	srv := httptest.NewServer(at.handler)
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	start := time.Now()
	fmt.Fprintf(conn, "POST /v1/topics/orders/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", contentLength)
	answered := make(chan struct{})
	go send(conn, answered)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	close(answered)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	elapsed := time.Since(start)
	body, _ := io.ReadAll(resp.Body)
	return resp, body, elapsed
}

// TestStalledBodyTimesOut sends the headers of a 16 MiB produce and 64
// KiB of its body, then nothing: the node must answer 408
// request_timeout after its body read timeout, not wait for the server's
// whole-request timeout.
func TestStalledBodyTimesOut(t *testing.T) {
	at := newAPITest(t, Options{BodyReadTimeout: 300 * time.Millisecond})
	resp, body, elapsed := rawProduce(t, at, 16<<20-1, func(conn net.Conn, _ <-chan struct{}) {
		_, _ = conn.Write(bytes.Repeat([]byte{' '}, 64<<10))
	})
	if resp.StatusCode != http.StatusRequestTimeout || !bytes.Contains(body, []byte(`"request_timeout"`)) {
		t.Fatalf("answer %d %s, want 408 request_timeout", resp.StatusCode, body)
	}
	if elapsed < 300*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("answered after %s, want just after the 300ms body read timeout", elapsed)
	}
	if len(at.svc.produced) != 0 {
		t.Errorf("a request with a stalled body reached the service")
	}
}

// TestTricklingBodyTimesOut sends a byte of the body every 50ms: each
// read is within the body read timeout, but the whole body must arrive
// within MaxBodyTime, or the node answers 408.
func TestTricklingBodyTimesOut(t *testing.T) {
	at := newAPITest(t, Options{BodyReadTimeout: 300 * time.Millisecond, MaxBodyTime: 700 * time.Millisecond})
	resp, _, elapsed := rawProduce(t, at, 100000, func(conn net.Conn, answered <-chan struct{}) {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-answered:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte{' '}); err != nil {
					return
				}
			}
		}
	})
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("answer %d, want 408", resp.StatusCode)
	}
	if elapsed < 700*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("answered after %s, want just after the 700ms MaxBodyTime", elapsed)
	}
}
