package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The SDK must stay free of server code and storage libraries: it may
// depend on the standard library and the two internal packages it
// shares with the server, nothing else.
func TestImportGraph(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", "github.com/mambamq/mamba/client").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/mambamq/mamba/client":            true,
		"github.com/mambamq/mamba/internal/wire":     true,
		"github.com/mambamq/mamba/internal/certfile": true, // standard library only: the TLS files of WithCAFile, WithClientCertificate
	}
	forbidden := []string{
		"github.com/mambamq/mamba/ingest", "github.com/mambamq/mamba/metadata",
		"github.com/mambamq/mamba/chunk", "github.com/mambamq/mamba/objectstore",
		"github.com/mambamq/mamba/cmd", "github.com/redis/", "github.com/minio/", "github.com/aws/",
	}
	deps := 0
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		path, std, _ := strings.Cut(strings.TrimSpace(line), " ")
		deps++
		for _, f := range forbidden {
			if strings.HasPrefix(path, f) {
				t.Errorf("client depends on %s", path)
			}
		}
		if std != "true" && !allowed[path] {
			t.Errorf("client depends on %s, which is neither the standard library nor internal/wire", path)
		}
	}
	if deps < 10 {
		t.Fatalf("go list -deps listed only %d packages:\n%s", deps, out)
	}
}

func TestAPIErrorMatchesItsCodeOnly(t *testing.T) {
	for code, sentinel := range codeErrors {
		e := &APIError{Status: 400, Code: code}
		if !errors.Is(e, sentinel) {
			t.Errorf("%s does not match its sentinel", code)
		}
		wrapped := fmt.Errorf("do something: %w", e)
		if !errors.Is(wrapped, sentinel) {
			t.Errorf("wrapped %s does not match its sentinel", code)
		}
		for other, s := range codeErrors {
			if other != code && errors.Is(e, s) {
				t.Errorf("%s matches the sentinel of %s", code, other)
			}
		}
	}
	unknown := &APIError{Status: 418, Code: "teapot"}
	for code, s := range codeErrors {
		if errors.Is(unknown, s) {
			t.Errorf("an unknown code matches %s", code)
		}
	}
}

func TestParseAPIError(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		want       APIError
		retryable  bool
		wantTarget error
	}{
		{"mamba error", 404, nil, `{"error":{"code":"topic_not_found","message":"lookup x: topic not found"}}`,
			APIError{Status: 404, Code: "topic_not_found", Message: "lookup x: topic not found"}, false, ErrTopicNotFound},
		{"overloaded with Retry-After", 429, http.Header{"Retry-After": {"3"}}, `{"error":{"code":"overloaded","message":"full"}}`,
			APIError{Status: 429, Code: "overloaded", Message: "full", RetryAfter: 3 * time.Second}, true, ErrOverloaded},
		{"quota exceeded", 429, http.Header{"Retry-After": {"4"}}, `{"error":{"code":"quota_exceeded","message":"over","quota":"fetch_bytes"}}`,
			APIError{Status: 429, Code: "quota_exceeded", Message: "over", Quota: "fetch_bytes", RetryAfter: 4 * time.Second}, true, ErrQuotaExceeded},
		{"lease lost", 409, nil, `{"error":{"code":"lease_lost","message":"orders/1"}}`,
			APIError{Status: 409, Code: "lease_lost", Message: "orders/1"}, false, ErrLeaseLost},
		{"proxy page", 502, nil, "<html>bad gateway</html>",
			APIError{Status: 502, Message: "<html>bad gateway</html>"}, true, nil},
		{"unknown code", 400, nil, `{"error":{"code":"brand_new","message":"m"}}`,
			APIError{Status: 400, Code: "brand_new", Message: "m"}, false, nil},
		{"unavailable", 503, http.Header{"X-Request-Id": {"9f2c4e1a0b7d3e55"}}, `{"error":{"code":"unavailable","message":"retry","request_id":"9f2c4e1a0b7d3e55"}}`,
			APIError{Status: 503, Code: "unavailable", Message: "retry", RequestID: "9f2c4e1a0b7d3e55"}, true, ErrUnavailable},
		{"request timeout", 408, nil, `{"error":{"code":"request_timeout","message":"no byte"}}`,
			APIError{Status: 408, Code: "request_timeout", Message: "no byte"}, true, ErrRequestTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			got := parseAPIError(&http.Response{StatusCode: tt.status, Header: h}, []byte(tt.body))
			if *got != tt.want {
				t.Fatalf("got %+v, want %+v", *got, tt.want)
			}
			if IsRetryable(got) != tt.retryable {
				t.Fatalf("IsRetryable = %v", !tt.retryable)
			}
			if tt.wantTarget != nil && !errors.Is(got, tt.wantTarget) {
				t.Fatalf("does not match %v", tt.wantTarget)
			}
			if !strings.Contains(got.Error(), fmt.Sprint(tt.status)) {
				t.Fatalf("message %q lacks the status", got.Error())
			}
			if got.RequestID != "" && !strings.Contains(got.Error(), "request "+got.RequestID) {
				t.Fatalf("message %q of a %d lacks the request id", got.Error(), got.Status)
			}
		})
	}
	if IsRetryable(context.Canceled) || IsRetryable(errors.New("x")) || IsRetryable(nil) {
		t.Fatal("plain errors are retryable")
	}
	if !IsRetryable(fmt.Errorf("wrapped: %w", &transportError{op: "GET /", err: io.ErrUnexpectedEOF})) {
		t.Fatal("a transport error is not retryable")
	}
}

func TestParseRetryAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"": 0, "0": 0, "-1": 0, "1": time.Second, "30": 30 * time.Second, "99999": time.Hour, "soon": 0,
	} {
		if got := parseRetryAfter(in); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
	date := time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat)
	if got := parseRetryAfter(date); got < 8*time.Second || got > 10*time.Second {
		t.Errorf("parseRetryAfter(%q) = %v", date, got)
	}
}

func TestBackoff(t *testing.T) {
	p := retryPolicy{maxAttempts: 5, base: 100 * time.Millisecond, max: 2 * time.Second}
	for attempt := 1; attempt < 100; attempt++ {
		full := min(p.max, p.base<<min(attempt-1, 20))
		for range 20 {
			d := p.backoff(attempt)
			if d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, full/2, full)
			}
		}
	}
	ra := &APIError{Status: 429, Code: "overloaded", RetryAfter: 2 * time.Second}
	if d := p.delay(1, ra); d < 2*time.Second || d > 2200*time.Millisecond {
		t.Fatalf("delay after Retry-After 2s: %v", d)
	}
	quota := &APIError{Status: 429, Code: "quota_exceeded", Quota: "long_polls", RetryAfter: 5 * time.Second}
	if d := p.delay(1, fmt.Errorf("fetch: %w", quota)); d < 5*time.Second || d > 5500*time.Millisecond {
		t.Fatalf("delay after a quota_exceeded with Retry-After 5s: %v", d)
	}
}

func TestNewValidates(t *testing.T) {
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://host", "http://", "http://host?x=1", "http://host#f", "http://host:99999", "://x"} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
	}
	c, err := New("https://mamba.example.com/prefix/")
	if err != nil {
		t.Fatal(err)
	}
	if c.base != "https://mamba.example.com/prefix" {
		t.Fatalf("base %q", c.base)
	}
	_, err = New("http://h", WithTimeout(0), WithRetries(0, 0, 0), WithHTTPClient(http.DefaultClient), WithTLSConfig(nil), WithHeader("", "v"))
	for _, want := range []string{"WithTimeout", "WithRetries", "WithTLSConfig", "WithHeader"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New with a bad %s: %v", want, err)
		}
	}
	if _, err := c.NewProducer(WithLinger(-1), WithMaxBatchBytes(0), WithMaxInFlight(0), WithMaxBufferedBytes(10)); err == nil {
		t.Error("NewProducer accepted bad options")
	}
	if _, err := c.NewGroupConsumer("bad group", nil, WithHeartbeatInterval(time.Minute)); err == nil {
		t.Error("NewGroupConsumer accepted a bad name, no topics and a heartbeat above the session timeout")
	}
	if _, err := c.NewPartitionConsumer("t", -1, -3); err == nil {
		t.Error("NewPartitionConsumer accepted a negative partition and offset")
	}
}

// Idempotent requests are retried on 503 and network failures, with the
// configured headers and hooks on every attempt; others are not.
func TestRetriesIdempotentRequests(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		// The transport may resend a request whose connection closed by
		// itself, so attempts and hook calls need not match one to one.
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer t") || r.Header.Get("X-Static") != "s" {
			t.Errorf("attempt %d: headers %v", n, r.Header)
		}
		switch n {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":"unavailable","message":"try again"}}`)
		case 2:
			// Close the connection without an answer.
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		default:
			io.WriteString(w, `{"topics":[{"name":"a","partitions":2,"retention_ms":1000}]}`)
		}
	}))
	defer srv.Close()
	var hookCalls atomic.Int32
	c, err := New(srv.URL, WithRetries(3, time.Millisecond, 2*time.Millisecond), WithHeader("X-Static", "s"),
		WithRequestHook(func(r *http.Request) error {
			r.Header.Set("Authorization", fmt.Sprintf("Bearer t%d", hookCalls.Add(1)))
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	topics, err := c.ListTopics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) != 1 || topics[0] != (Topic{Name: "a", Partitions: 2, Retention: time.Second}) || calls.Load() < 3 || hookCalls.Load() < 2 {
		t.Fatalf("got %+v after %d calls", topics, calls.Load())
	}

	// CreateTopic is not retried: a retry could not tell its own topic
	// from another's.
	calls.Store(0)
	hookCalls.Store(0)
	_, err = c.CreateTopic(t.Context(), "a", 1)
	if !errors.Is(err, ErrUnavailable) || calls.Load() != 1 {
		t.Fatalf("create: %v after %d calls", err, calls.Load())
	}

	// A hook error fails the request without sending it.
	c2, _ := New(srv.URL, WithRequestHook(func(*http.Request) error { return errors.New("no token") }))
	calls.Store(0)
	if _, err := c2.ListTopics(t.Context()); err == nil || !strings.Contains(err.Error(), "no token") || calls.Load() != 0 {
		t.Fatalf("hook error: %v, %d calls", err, calls.Load())
	}
}

// The SDK has one sentinel per error code of the API reference, and no
// other.
func TestErrorCodesMatchAPIReference(t *testing.T) {
	doc, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| ([0-9]{3}) \\| `([a-z_]+)` \\|")
	documented := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		documented[m[2]] = true
		if _, ok := codeErrors[m[2]]; !ok {
			t.Errorf("docs/api.md lists error code %s (%s), which has no SDK sentinel", m[2], m[1])
		}
	}
	if len(documented) < 10 {
		t.Fatalf("found only %d error codes in docs/api.md", len(documented))
	}
	for code := range codeErrors {
		if !documented[code] {
			t.Errorf("the SDK maps error code %s, which docs/api.md does not list", code)
		}
	}
}
