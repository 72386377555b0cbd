package client_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func isProduce(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/records")
}

func reverseProxy(t *testing.T, target string) *httputil.ReverseProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	return httputil.NewSingleHostReverseProxy(u)
}

// gateProxy forwards to a node, except that while it is closed it holds
// produce requests until it opens again (or the client goes away): a node
// made slow at will.
type gateProxy struct {
	*httptest.Server
	mu      sync.Mutex
	gate    chan struct{} // nil while open
	blocked int
	changed chan struct{}
}

func newGateProxy(t *testing.T, target string) *gateProxy {
	g := &gateProxy{changed: make(chan struct{})}
	rp := reverseProxy(t, target)
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		gate := g.gate
		if gate != nil && isProduce(r) {
			g.blocked++
			close(g.changed)
			g.changed = make(chan struct{})
			g.mu.Unlock()
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		} else {
			g.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		g.open()
		g.Server.Close()
	})
	return g
}

func (g *gateProxy) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate == nil {
		g.gate = make(chan struct{})
	}
}

func (g *gateProxy) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

// waitBlocked waits until n produce requests have been held.
func (g *gateProxy) waitBlocked(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		g.mu.Lock()
		blocked, changed := g.blocked, g.changed
		g.mu.Unlock()
		if blocked >= n {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%d produce requests held after 30s, want %d", blocked, n)
		}
	}
}

// fault is what the fault proxy does with one request.
type fault int

const (
	forward       fault = iota // pass it on
	unavailable                // answer 503 unavailable without passing it on
	overloaded                 // answer 429 overloaded with Retry-After, without passing it on
	dropAfterNode              // pass it on, then close the connection instead of answering
)

func (f fault) String() string {
	return [...]string{"forward", "unavailable", "overloaded", "drop-after-node"}[f]
}

// faultProxy forwards to a node and injects faults into produce
// requests, following schedule in turn (and into describe and fetch
// requests, from describeSchedule and fetchSchedule, once each).
type faultProxy struct {
	*httptest.Server
	mu               sync.Mutex
	schedule         []fault
	describeSchedule []fault
	fetchSchedule    []fault
	n                int
	counts           map[fault]int
}

func newFaultProxy(t *testing.T, target string, schedule, describeSchedule, fetchSchedule []fault) *faultProxy {
	fp := &faultProxy{schedule: schedule, describeSchedule: describeSchedule, fetchSchedule: fetchSchedule, counts: map[fault]int{}}
	rp := reverseProxy(t, target)
	fp.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := fp.next(r)
		switch f {
		case unavailable:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":{"code":"unavailable","message":"injected by the test proxy"}}`))
		case overloaded:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error":{"code":"overloaded","message":"injected by the test proxy"}}`))
		case dropAfterNode:
			// The node handles the request in full (and commits the
			// records); the client never hears of it.
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				t.Errorf("node answered %d to a request the proxy dropped", rec.Code)
			}
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			conn.Close()
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(fp.Server.Close)
	return fp
}

func (fp *faultProxy) next(r *http.Request) fault {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	f := forward
	switch {
	case isProduce(r):
		f = fp.schedule[fp.n%len(fp.schedule)]
		fp.n++
	case r.Method == http.MethodGet && strings.Count(r.URL.Path, "/") == 3 && len(fp.describeSchedule) > 0:
		f = fp.describeSchedule[0]
		fp.describeSchedule = fp.describeSchedule[1:]
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/records") && len(fp.fetchSchedule) > 0:
		f = fp.fetchSchedule[0]
		fp.fetchSchedule = fp.fetchSchedule[1:]
	}
	fp.counts[f]++
	return f
}

func (fp *faultProxy) count(f fault) int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.counts[f]
}
