package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults of the client options.
const (
	// DefaultTimeout bounds one HTTP attempt. A fetch's long-poll wait is
	// added to it.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxAttempts is how many times an idempotent request (reads,
	// heartbeats, offset commits) is tried before its error is returned.
	// Produce requests are bounded by the producer's delivery timeout
	// instead.
	DefaultMaxAttempts = 5
	// DefaultBackoffBase is the first retry's backoff; each retry doubles
	// it, up to DefaultBackoffMax, with jitter.
	DefaultBackoffBase = 100 * time.Millisecond
	// DefaultBackoffMax caps the backoff between two attempts.
	DefaultBackoffMax = 5 * time.Second
)

// maxResponseBytes bounds the body of an answer the client reads: well
// above the largest fetch a node sends (32 MiB of records).
const maxResponseBytes = 256 << 20

const userAgent = "mamba-go"

// Client talks to the HTTP API of a Mamba cluster: one node or a load
// balancer in front of several. It is safe for concurrent use, and
// producers and consumers made from it share its connections.
type Client struct {
	base    string // scheme://host[:port][/prefix], without a trailing slash
	hc      *http.Client
	timeout time.Duration
	retry   retryPolicy
	header  http.Header
	hooks   []func(*http.Request) error
	log     *slog.Logger
	observe observers // WithHooks
	// connectTimeout and retryTimeout bound retrying; see reach.go.
	connectTimeout, retryTimeout time.Duration
	// reached is set once any answer came from the server.
	reached atomic.Bool
}

// Opt configures a Client.
type Opt func(*clientConfig)

type clientConfig struct {
	hc      *http.Client
	tls     *tls.Config
	timeout time.Duration
	retry   retryPolicy
	header  http.Header
	hooks   []func(*http.Request) error
	log     *slog.Logger
	observe observers
	errs    []error
	// tlsFiles are read into tls by New (tls.go).
	tlsFiles tlsFiles

	connectTimeout, retryTimeout time.Duration
}

// WithHTTPClient makes the client send its requests with hc (for a
// custom transport, proxy or instrumentation). The default is a client
// of its own with a transport that keeps enough idle connections per host
// for several batches and long-polls in flight. hc's Timeout, if set,
// bounds every request including long-polls; prefer WithTimeout.
func WithHTTPClient(hc *http.Client) Opt {
	return func(c *clientConfig) {
		if hc == nil {
			c.errs = append(c.errs, errors.New("WithHTTPClient: nil client"))
		}
		c.hc = hc
	}
}

// WithTimeout bounds each HTTP attempt (a fetch gets its long-poll wait
// on top). Default DefaultTimeout.
func WithTimeout(d time.Duration) Opt {
	return func(c *clientConfig) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithTimeout: %v is not positive", d))
		}
		c.timeout = d
	}
}

// WithRetries sets how requests are retried: maxAttempts tries in all
// for idempotent requests (reads, heartbeats, offset commits; 1 disables
// retries), with an exponential backoff from base doubling up to max,
// with jitter. A 429 waits for its Retry-After instead. The producer
// uses base and max too, but retries until its delivery timeout rather
// than a number of attempts. Defaults DefaultMaxAttempts,
// DefaultBackoffBase, DefaultBackoffMax.
func WithRetries(maxAttempts int, base, max time.Duration) Opt {
	return func(c *clientConfig) {
		if maxAttempts < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithRetries: max attempts %d is below 1", maxAttempts))
		}
		if base <= 0 || max < base {
			c.errs = append(c.errs, fmt.Errorf("WithRetries: backoff base %v and max %v: want 0 < base <= max", base, max))
		}
		c.retry = retryPolicy{maxAttempts: maxAttempts, base: base, max: max}
	}
}

// WithTLSConfig sets the TLS configuration of the client's own transport
// (for a private CA or client certificates). It cannot be combined with
// WithHTTPClient: configure that client's transport instead.
func WithTLSConfig(cfg *tls.Config) Opt {
	return func(c *clientConfig) {
		if cfg == nil {
			c.errs = append(c.errs, errors.New("WithTLSConfig: nil config"))
		}
		c.tls = cfg
	}
}

// WithHeader adds a header to every request, such as a static
// Authorization header. It may be given several times.
func WithHeader(name, value string) Opt {
	return func(c *clientConfig) {
		if name == "" || strings.ContainsAny(name, " \t\r\n:") {
			c.errs = append(c.errs, fmt.Errorf("WithHeader: invalid header name %q", name))
			return
		}
		c.header.Add(name, value)
	}
}

// WithRequestHook calls hook on every HTTP attempt, retries included,
// just before it is sent: the place to set an Authorization header from
// a token that may be refreshed. An error from hook fails the request
// without sending it. Hooks run in the order given and may be called
// from several goroutines at once.
func WithRequestHook(hook func(*http.Request) error) Opt {
	return func(c *clientConfig) {
		if hook == nil {
			c.errs = append(c.errs, errors.New("WithRequestHook: nil hook"))
			return
		}
		c.hooks = append(c.hooks, hook)
	}
}

// WithLogger sets where the client, its producers and its consumers log
// retries and background events. By default nothing is logged.
func WithLogger(l *slog.Logger) Opt {
	return func(c *clientConfig) {
		if l == nil {
			c.errs = append(c.errs, errors.New("WithLogger: nil logger"))
		}
		c.log = l
	}
}

// New returns a client of the Mamba cluster at rawURL, such as
// "http://127.0.0.1:8080" or "https://mamba.example.com/prefix". New
// sends no request.
func New(rawURL string, opts ...Opt) (*Client, error) {
	cfg := clientConfig{
		timeout: DefaultTimeout,
		retry:   retryPolicy{maxAttempts: DefaultMaxAttempts, base: DefaultBackoffBase, max: DefaultBackoffMax},
		header:  make(http.Header),
		log:     slog.New(slog.DiscardHandler),

		connectTimeout: DefaultConnectTimeout,
		retryTimeout:   DefaultRetryTimeout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.applyTLSFiles(); err != nil {
		cfg.errs = append(cfg.errs, err)
	}
	base, err := parseBaseURL(rawURL)
	if err != nil {
		cfg.errs = append([]error{err}, cfg.errs...)
	}
	if cfg.hc != nil && cfg.tls != nil {
		cfg.errs = append(cfg.errs, errors.New("WithTLSConfig cannot be combined with WithHTTPClient; set the TLS configuration on that client's transport"))
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, fmt.Errorf("mamba client: %w", err)
	}
	c := &Client{
		base:    base,
		hc:      cfg.hc,
		timeout: cfg.timeout,
		retry:   cfg.retry,
		header:  cfg.header,
		hooks:   cfg.hooks,
		log:     cfg.log,
		observe: cfg.observe,

		connectTimeout: cfg.connectTimeout,
		retryTimeout:   cfg.retryTimeout,
	}
	if c.hc == nil {
		t := newTransport(cfg.connectTimeout)
		if cfg.tls != nil {
			t.TLSClientConfig = cfg.tls.Clone()
		}
		c.hc = &http.Client{Transport: t}
	}
	return c, nil
}

// parseBaseURL checks that rawURL names an HTTP server and returns it
// without a trailing slash.
func parseBaseURL(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("url %q: %w", rawURL, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("url %q: scheme must be http or https", rawURL)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("url %q: no host", rawURL)
	case u.RawQuery != "" || u.ForceQuery:
		return "", fmt.Errorf("url %q: must not have a query", rawURL)
	case u.Fragment != "":
		return "", fmt.Errorf("url %q: must not have a fragment", rawURL)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("url %q: bad port %q", rawURL, p)
		}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// CloseIdleConnections closes the idle connections of the client's
// transport. Call it when the client is no longer used, after closing its
// producers and consumers.
func (c *Client) CloseIdleConnections() {
	c.hc.CloseIdleConnections()
}

// retryPolicy is how requests are retried; see WithRetries.
type retryPolicy struct {
	maxAttempts int
	base, max   time.Duration
}

// backoff is the wait before retry number attempt (1 for the first
// retry): exponential from base, capped at max, with "equal jitter" (the
// upper half of the interval at random), so that clients that failed
// together do not retry together.
func (p retryPolicy) backoff(attempt int) time.Duration {
	d := p.max
	if attempt < 30 {
		d = min(p.max, p.base<<(attempt-1))
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// delay is the wait before retry number attempt after err: the
// Retry-After of a 429 (plus up to a tenth more of jitter) when the
// answer had one, else the backoff.
func (p retryPolicy) delay(attempt int, err error) time.Duration {
	if ae, ok := errors.AsType[*APIError](err); ok && ae.RetryAfter > 0 {
		return ae.RetryAfter + rand.N(ae.RetryAfter/10+1)
	}
	return p.backoff(attempt)
}

// sleep waits for d or until ctx ends, returning ctx's error then.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// request is one API call, which do may send several times.
type request struct {
	method string
	// path is escaped, from the root of the API: "/v1/topics/orders".
	path        string
	query       url.Values
	body        []byte
	contentType string
	accept      string
	header      http.Header
	// idempotent requests are retried by do.
	idempotent bool
	// extraTimeout is added to the client's timeout for each attempt
	// (a fetch's long-poll wait).
	extraTimeout time.Duration
}

// response is a successful (status < 400) answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// apiPath joins escaped path segments: apiPath("v1", "topics", name).
func apiPath(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

func (r *request) String() string { return r.method + " " + r.path }

// do sends r, retrying idempotent requests on retryable errors up to the
// client's max attempts (and, while the server was never reached, up to
// the connect timeout; and not past the retry timeout to wait for a
// Retry-After). Each retry is logged at warn level. Errors are
// *APIError for error answers, a *transportError when no complete answer
// came (holding an *UnreachableError when no connection could be made),
// or ctx's error.
func (c *Client) do(ctx context.Context, r *request) (*response, error) {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		resp, err := c.send(ctx, r)
		if err == nil {
			return resp, nil
		}
		if !r.idempotent || !IsRetryable(err) || attempt >= c.retry.maxAttempts {
			return nil, err
		}
		wait := c.retry.delay(attempt, err)
		if c.neverReached(err) && c.retryLeft(err, start, 0) <= wait {
			return nil, err
		}
		if ae, ok := errors.AsType[*APIError](err); ok && ae.RetryAfter > 0 && c.retryLeft(err, start, c.retryTimeout) <= wait {
			// A Retry-After past the retry timeout (a quota far
			// exceeded): waiting for it would only delay the error.
			return nil, err
		}
		c.log.Warn("mamba: retrying request", "request", r.String(), "attempt", attempt, "backoff", wait, "err", err)
		if serr := sleep(ctx, wait); serr != nil {
			return nil, fmt.Errorf("%w (retry interrupted: %w)", err, serr)
		}
	}
}

// send makes one attempt of r.
func (c *Client) send(ctx context.Context, r *request) (answer *response, failure error) {
	if len(c.observe.request) > 0 {
		defer c.observe.requested(r, time.Now(), &answer, &failure)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout+r.extraTimeout)
	defer cancel()
	target := c.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(actx, r.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	for name, vs := range c.header {
		req.Header[name] = append([]string(nil), vs...)
	}
	for name, vs := range r.header {
		req.Header[name] = vs
	}
	req.Header.Set("User-Agent", userAgent)
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	} else {
		req.Header.Set("Accept", "application/json")
	}
	for _, hook := range c.hooks {
		if err := hook(req); err != nil {
			return nil, fmt.Errorf("%s: request hook: %w", r, err)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", r, ctx.Err())
		}
		return nil, &transportError{op: r.String(), err: c.asUnreachable(err)}
	}
	c.reached.Store(true)
	defer resp.Body.Close()
	b, err := readBody(resp)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", r, ctx.Err())
		}
		return nil, &transportError{op: r.String() + ": read answer", err: err}
	}
	if resp.StatusCode >= 400 {
		return nil, parseAPIError(resp, b)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// readBody reads a whole answer, refusing one over maxResponseBytes.
func readBody(resp *http.Response) ([]byte, error) {
	if resp.ContentLength > maxResponseBytes {
		return nil, fmt.Errorf("answer of %d bytes is over the limit of %d", resp.ContentLength, maxResponseBytes)
	}
	var buf []byte
	if resp.ContentLength > 0 {
		buf = make([]byte, 0, resp.ContentLength+1)
	}
	w := bytes.NewBuffer(buf)
	n, err := w.ReadFrom(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if n > maxResponseBytes {
		return nil, fmt.Errorf("answer is over the limit of %d bytes", maxResponseBytes)
	}
	return w.Bytes(), nil
}

// parseAPIError builds the *APIError of an error answer. A body that is
// not a Mamba error (from a proxy, say) leaves Code empty and keeps the
// start of the body as the message.
func parseAPIError(resp *http.Response, body []byte) *APIError {
	e := &APIError{Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After")), RequestID: resp.Header.Get("X-Request-Id")}
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Quota   string `json:"quota"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		e.Code, e.Message, e.Quota = eb.Error.Code, eb.Error.Message, eb.Error.Quota
		return e
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	e.Message = msg
	return e
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, 3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return min(d, time.Hour)
		}
	}
	return 0
}

// getJSON sends an idempotent GET and decodes the JSON answer into out.
func (c *Client) getJSON(ctx context.Context, path string, out any) error {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: path, idempotent: true})
	if err != nil {
		return err
	}
	return decodeJSON(resp, out)
}

// sendJSON sends in as a JSON body and decodes the answer into out (when
// not nil).
func (c *Client) sendJSON(ctx context.Context, method, path string, idempotent bool, in, out any) (*response, error) {
	r := &request{method: method, path: path, idempotent: idempotent}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s: encode body: %w", r, err)
		}
		r.body, r.contentType = b, "application/json"
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := decodeJSON(resp, out); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

func decodeJSON(resp *response, out any) error {
	if err := json.Unmarshal(resp.body, out); err != nil {
		return fmt.Errorf("decode %d answer: %w", resp.status, err)
	}
	return nil
}

// validateName checks a topic or group name: 1 to 249 characters of
// A-Z, a-z, 0-9, '.', '_' and '-'. The node answers a bad name in a path
// with 404, which would hide the mistake.
func validateName(kind, name string) error {
	if len(name) == 0 || len(name) > 249 {
		return fmt.Errorf("%w: %s name %q must be 1 to 249 characters", ErrInvalidRequest, kind, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %s name %q may hold only A-Z, a-z, 0-9, '.', '_' and '-'", ErrInvalidRequest, kind, name)
		}
	}
	return nil
}
