package faultsuite

import (
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"
)

// Fault is what the proxy does to one request.
type Fault int

const (
	Pass        Fault = iota // forward unchanged
	Delay                    // forward after a pause
	Status503                // answer 503 SlowDown without forwarding
	ResetBefore              // reset the connection without forwarding
	ResetAfter               // forward, then reset instead of answering
	numFaults
)

func (f Fault) String() string {
	return [...]string{"pass", "delay", "503", "reset-before", "reset-after"}[f]
}

// StoreProxy is an HTTP proxy in front of an S3 endpoint that, while
// faulty, slows requests down, answers 503 and resets connections,
// before or after the object store has seen the request. It keeps the
// Host header, so requests signed for the proxy's address verify at the
// store.
type StoreProxy struct {
	URL    string
	srv    *httptest.Server
	target *url.URL
	tr     *http.Transport

	mu     sync.Mutex
	faulty bool
	rng    *rand.Rand
	counts [numFaults]int
}

// NewStoreProxy starts a proxy to target (an http:// URL); Close stops it.
func NewStoreProxy(target string, seed uint64) (*StoreProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &StoreProxy{target: u, tr: &http.Transport{}, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	return p, nil
}

// Close stops the proxy.
func (p *StoreProxy) Close() {
	p.srv.CloseClientConnections()
	p.srv.Close()
	p.tr.CloseIdleConnections()
}

// SetFaulty turns fault injection on or off.
func (p *StoreProxy) SetFaulty(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faulty = on
}

// Counts returns how many requests met each fault.
func (p *StoreProxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := map[string]int{}
	for f, n := range p.counts {
		m[Fault(f).String()] = n
	}
	return m
}

// pick chooses a fault: while faulty, a quarter of requests are delayed
// and a quarter fail one of three ways.
func (p *StoreProxy) pick() (Fault, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, d := Pass, time.Duration(0)
	if p.faulty {
		switch x := p.rng.IntN(100); {
		case x < 25:
			f, d = Delay, time.Duration(50+p.rng.IntN(750))*time.Millisecond
		case x < 33:
			f = Status503
		case x < 42:
			f = ResetBefore
		case x < 50:
			f = ResetAfter
		}
	}
	p.counts[f]++
	return f, d
}

func (p *StoreProxy) serve(w http.ResponseWriter, r *http.Request) {
	f, d := p.pick()
	switch f {
	case Delay:
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	case Status503:
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected by the fault proxy</Message></Error>`)
		return
	case ResetBefore:
		reset(w)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	out.Host = r.Host
	out.Body = r.Body
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		reset(w)
		return
	}
	defer resp.Body.Close()
	if f == ResetAfter {
		// The store has acted on the request; its answer never arrives.
		_, _ = io.Copy(io.Discard, resp.Body)
		reset(w)
		return
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// reset closes the client's connection with a TCP RST.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("fault proxy: connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
