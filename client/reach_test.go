package client_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// logRecorder is a slog handler that keeps every record it handles.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// warnRetries returns the messages of the warn records that carry an
// attempt number.
func (h *logRecorder) warnRetries() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		if r.Level != slog.LevelWarn {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "attempt" {
				out = append(out, r.Message)
				return false
			}
			return true
		})
	}
	return out
}

// wantUnreachable checks that err reports url as unreachable, in one line
// that names the cause, and that it came within bound.
func wantUnreachable(t *testing.T, what string, err error, url string, elapsed, bound time.Duration) {
	t.Helper()
	if !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("%s: error %v, want ErrUnreachable", what, err)
	}
	ue, ok := errors.AsType[*client.UnreachableError](err)
	if !ok || ue.Error() != "cannot reach "+url+": connection refused" {
		t.Fatalf("%s: unreachable error %v", what, ue)
	}
	// The bound plus room for a loaded machine; far below the minutes a
	// silent retry loop would take.
	if elapsed > bound+2*time.Second {
		t.Fatalf("%s: error after %v, bound %v", what, elapsed, bound)
	}
}

func TestUnreachableServerFailsWithinConnectTimeout(t *testing.T) {
	url := testserver.RefusedURL(t)
	const bound = 700 * time.Millisecond
	logs := &logRecorder{}
	c, err := client.New(url, client.WithConnectTimeout(bound), client.WithLogger(slog.New(logs)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	start := time.Now()
	_, err = c.DescribeTopic(ctx, "orders")
	wantUnreachable(t, "DescribeTopic", err, url, time.Since(start), bound)

	pc, err := c.NewPartitionConsumer("orders", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	var iterErr error
	for _, err := range pc.Records(ctx) {
		iterErr = err
	}
	wantUnreachable(t, "PartitionConsumer.Records", iterErr, url, time.Since(start), bound)

	gc, err := c.NewGroupConsumer("billing", []string{"orders"})
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	iterErr = nil
	for _, err := range gc.Records(ctx) {
		iterErr = err
	}
	wantUnreachable(t, "GroupConsumer.Records", iterErr, url, time.Since(start), bound)
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = gc.Close(closeCtx) // it never joined: nothing to leave

	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = p.Produce(ctx, client.Record{Topic: "orders", Value: []byte("v")})
	wantUnreachable(t, "Produce (partition count)", err, url, time.Since(start), bound)
	start = time.Now()
	_, err = p.Produce(ctx, client.Record{Topic: "orders", Value: []byte("v"), Partition: new(int32(0))})
	wantUnreachable(t, "Produce (to a partition)", err, url, time.Since(start), bound)
	if err := p.Close(closeCtx); err != nil && !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("producer Close: %v", err)
	}

	if got := logs.warnRetries(); len(got) == 0 {
		t.Fatal("no retry was logged at warn level")
	}
}

func TestRetriesOnceReachedEndAtRetryTimeout(t *testing.T) {
	// A server that answered before and now answers only 503.
	var mu sync.Mutex
	fetches := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fetches++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"redis is down"}}`))
	}))
	defer srv.Close()
	const bound = 1500 * time.Millisecond
	logs := &logRecorder{}
	c, err := client.New(srv.URL, client.WithRetryTimeout(bound), client.WithConnectTimeout(100*time.Millisecond),
		client.WithRetries(1, 50*time.Millisecond, 200*time.Millisecond), client.WithLogger(slog.New(logs)))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := c.NewPartitionConsumer("orders", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var iterErr error
	for _, err := range pc.Records(t.Context()) {
		iterErr = err
	}
	elapsed := time.Since(start)
	if !errors.Is(iterErr, client.ErrUnavailable) || client.IsRetryable(iterErr) || !strings.Contains(iterErr.Error(), "retried for") {
		t.Fatalf("Records yielded %v, want the 503 marked as given up", iterErr)
	}
	// Retried past the connect timeout (the server had answered), and
	// gave up at the retry timeout.
	if elapsed < bound-200*time.Millisecond || elapsed > bound+2*time.Second {
		t.Fatalf("gave up after %v, retry timeout %v", elapsed, bound)
	}
	mu.Lock()
	n := fetches
	mu.Unlock()
	retries := logs.warnRetries()
	if n < 3 || len(retries) != n-1 {
		t.Fatalf("%d fetches, %d warn retries logged (%q)", n, len(retries), retries)
	}
}

func TestTimeoutOptionsMustBePositive(t *testing.T) {
	_, err := client.New("http://127.0.0.1:8080", client.WithConnectTimeout(0), client.WithRetryTimeout(-time.Second))
	if err == nil || !strings.Contains(err.Error(), "WithConnectTimeout: 0s is not positive") || !strings.Contains(err.Error(), "WithRetryTimeout: -1s is not positive") {
		t.Fatalf("New with a zero connect timeout and a negative retry timeout: %v", err)
	}
}

// A group member whose server dies mid-read retries, logging each retry
// at warn level, and its Records ends with the error at the retry
// timeout instead of waiting without end.
func TestGroupRecordsEndWhenTheServerStaysDown(t *testing.T) {
	dev := testserver.StartMambaDev(t, t.TempDir())
	logs := &logRecorder{}
	const bound = 2 * time.Second
	c, err := client.New(dev.URL, client.WithRetryTimeout(bound), client.WithLogger(slog.New(logs)),
		client.WithRetries(2, 50*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	topic := createTopic(t, c, 2)
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Produce(ctx, client.Record{Topic: topic, Value: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	gc, err := c.NewGroupConsumer("down", []string{topic}, client.WithMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var iterErr error
	var stopped time.Time
	for rec, err := range gc.Records(ctx) {
		if err != nil {
			iterErr = err
			break
		}
		if string(rec.Value) != "before" || got > 0 {
			t.Fatalf("record %q after %d", rec.Value, got)
		}
		got++
		dev.Kill()
		stopped = time.Now()
	}
	elapsed := time.Since(stopped)
	if got != 1 || !errors.Is(iterErr, client.ErrUnreachable) || client.IsRetryable(iterErr) {
		t.Fatalf("read %d records, then %v; want 1 and an unreachable error given up on", got, iterErr)
	}
	if elapsed < bound-200*time.Millisecond || elapsed > bound+3*time.Second {
		t.Fatalf("Records ended %v after the server died, retry timeout %v", elapsed, bound)
	}
	if len(logs.warnRetries()) == 0 {
		t.Fatal("no retry was logged at warn level")
	}
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = gc.Close(closeCtx) // the server is gone: leaving cannot succeed
}
