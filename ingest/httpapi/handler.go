// Package httpapi owns Mamba's HTTP API: the routing table, request
// parsing, response encoding (JSON and the binary format of package
// internal/wire), the one table that maps errors to a status and an error
// code (wire.Codes), the request body pool and the mamba_http_* metrics.
// It serves any ingest.Service, normally an *ingest.Node, and validates
// nothing the service validates: handlers parse, call the service and
// encode its answer.
//
// The contract is docs/api.md and docs/openapi.yaml: every route and
// behaviour here is described there, and tests keep the routes and error
// codes equal to them.
//
// Use NewHandler(node, Options{}, reg, reg, log) as an http.Server's
// Handler.
package httpapi

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/membudget"
	"github.com/mambamq/mamba/internal/wire"
	"github.com/mambamq/mamba/metadata"
)

// Defaults for Options and for fetch parameters a request leaves out. A
// fetch's wait_ms is capped by the service's MaxWait (the node's
// --max-wait, ingest.DefaultMaxWait by default).
const (
	// DefaultMaxRequestBytes bounds a request body: 16 MiB.
	DefaultMaxRequestBytes int64 = 16 << 20
	// DefaultFetchMaxRecords is a fetch's max_records when absent.
	DefaultFetchMaxRecords = 1000
	// DefaultFetchMaxBytes is a fetch's max_bytes when absent: 1 MiB.
	DefaultFetchMaxBytes = 1 << 20
)

// Media types the API speaks. The binary one is specified in package
// internal/wire.
const (
	mediaJSON   = "application/json"
	mediaBinary = wire.ContentType
)

// Options configures the handler NewHandler returns. Zero fields take
// their defaults.
type Options struct {
	// MaxRequestBytes bounds a request body; a larger one is answered 413
	// payload_too_large without being read. DefaultMaxRequestBytes when
	// zero.
	MaxRequestBytes int64
	// BodyReadTimeout is the longest a request body may go without a
	// byte arriving; then the request is answered 408 request_timeout
	// and its buffer let go. DefaultBodyReadTimeout when zero.
	BodyReadTimeout time.Duration
	// Budget is the node's memory budget (ingest.Node.Budget): request
	// bodies, decoded records and fetch responses reserve from it before
	// they are allocated, and a request it refuses is answered 429
	// overloaded (see memory.go). Nil reserves nothing.
	Budget *membudget.Budget
	// MaxBodyTime bounds the time a whole request body may take to
	// arrive, however it trickles in: the server's ReadTimeout, which
	// BodyReadTimeout's per-read deadlines would otherwise replace.
	// DefaultMaxBodyTime when zero.
	MaxBodyTime time.Duration
	// Tokens, when set, turns authentication on: every route but
	// /healthz and /readyz needs a bearer token with the scope
	// routeAccess names, and /v1/auth/tokens administers tokens. Nil
	// (the default) leaves the API open to anyone who reaches it.
	Tokens TokenStore
	// TokenCacheTTL is how long a verified token is trusted without
	// asking Tokens again, so how long a token revoked on another node
	// keeps working here: MaxTokenCacheTTL when zero, at most
	// MaxTokenCacheTTL, no caching when negative.
	TokenCacheTTL time.Duration
	// Quotas are the per-token quotas of a token that has none of its
	// own (docs/security.md, "Quotas"); they apply only with Tokens.
	// Unlike the other fields, zero is not a default but unlimited: the
	// --quota-* flags default to the DefaultQuota constants.
	Quotas Quotas
	// DedupWindow is how long the node remembers an Idempotency-Key
	// (its --dedup-window), the period of Quotas.IdempotencyKeys.
	// metadata.DefaultDedupWindow when zero.
	DedupWindow time.Duration
}

const (
	// DefaultBodyReadTimeout is Options.BodyReadTimeout's default.
	DefaultBodyReadTimeout = 10 * time.Second
	// DefaultMaxBodyTime is Options.MaxBodyTime's default.
	DefaultMaxBodyTime = 2 * time.Minute
)

// Validate reports every bad field at once.
func (o Options) Validate() error {
	var errs []error
	if o.MaxRequestBytes < 0 {
		errs = append(errs, fmt.Errorf("http max request bytes %d is negative", o.MaxRequestBytes))
	}
	if o.BodyReadTimeout < 0 || o.MaxBodyTime < 0 {
		errs = append(errs, fmt.Errorf("http body timeouts %s and %s: none may be negative", o.BodyReadTimeout, o.MaxBodyTime))
	}
	if o.TokenCacheTTL > MaxTokenCacheTTL {
		errs = append(errs, fmt.Errorf("token cache ttl %s is over %s", o.TokenCacheTTL, MaxTokenCacheTTL))
	}
	if o.DedupWindow < 0 {
		errs = append(errs, fmt.Errorf("dedup window %s is negative", o.DedupWindow))
	}
	errs = append(errs, o.Quotas.validate())
	return errors.Join(errs...)
}

// withDefaults replaces zero (and, since NewHandler cannot fail, negative)
// fields by their defaults.
func (o Options) withDefaults() Options {
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.BodyReadTimeout <= 0 {
		o.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if o.MaxBodyTime <= 0 {
		o.MaxBodyTime = DefaultMaxBodyTime
	}
	if o.TokenCacheTTL == 0 || o.TokenCacheTTL > MaxTokenCacheTTL {
		o.TokenCacheTTL = MaxTokenCacheTTL
	}
	if o.DedupWindow <= 0 {
		o.DedupWindow = metadata.DefaultDedupWindow
	}
	o.Quotas = o.Quotas.nonNegative()
	return o
}

// route is one endpoint: a net/http ServeMux pattern and its handler.
type route struct {
	method, path string
	serve        func(*handler, http.ResponseWriter, *http.Request) error
}

// routes are all the endpoints, as docs/openapi.yaml lists them (a test
// keeps the two equal). The scope each needs is in routeAccess (auth.go).
var routes = []route{
	{http.MethodPost, "/v1/topics", (*handler).createTopic},
	{http.MethodGet, "/v1/topics", (*handler).listTopics},
	{http.MethodGet, "/v1/topics/{topic}", (*handler).describeTopic},
	{http.MethodPatch, "/v1/topics/{topic}", (*handler).updateTopic},
	{http.MethodDelete, "/v1/topics/{topic}", (*handler).deleteTopic},
	{http.MethodPost, "/v1/topics/{topic}/records", (*handler).produce},
	{http.MethodGet, "/v1/topics/{topic}/partitions/{partition}/records", (*handler).fetch},
	{http.MethodGet, "/v1/groups", (*handler).listGroups},
	{http.MethodGet, "/v1/groups/{group}", (*handler).describeGroup},
	{http.MethodDelete, "/v1/groups/{group}", (*handler).deleteGroup},
	{http.MethodPost, "/v1/groups/{group}/members", (*handler).joinGroup},
	{http.MethodPost, "/v1/groups/{group}/members/{member}/heartbeat", (*handler).heartbeat},
	{http.MethodDelete, "/v1/groups/{group}/members/{member}", (*handler).leaveGroup},
	{http.MethodPost, "/v1/groups/{group}/offsets", (*handler).commitOffsets},
	{http.MethodPost, "/v1/groups/{group}/offsets/reset", (*handler).resetOffsets},
	{http.MethodPost, "/v1/auth/tokens", (*handler).createToken},
	{http.MethodGet, "/v1/auth/tokens", (*handler).listTokens},
	{http.MethodDelete, "/v1/auth/tokens/{id}", (*handler).revokeToken},
	{http.MethodPatch, "/v1/auth/tokens/{id}", (*handler).updateToken},
	{http.MethodGet, "/healthz", (*handler).healthz},
	{http.MethodGet, "/readyz", (*handler).readyz},
	{http.MethodGet, "/metrics", (*handler).metricsPage},
}

// unmatchedRoute is the route label of requests no route matches.
const unmatchedRoute = "unmatched"

// handler serves the HTTP API of one Service.
type handler struct {
	svc     ingest.Service
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *httpMetrics
	// routeOf maps a registered pattern ("GET /v1/topics") to the route
	// label of its metrics ("/v1/topics").
	routeOf map[string]string
	// promHandler serves /metrics; nil when there is no gatherer.
	promHandler http.Handler
	// bodies recycles binary produce bodies and fetch responses; see
	// bodyPool.
	bodies bodyPool
	// tokens caches verified tokens (Options.TokenCacheTTL).
	tokens tokenCache
	// quotas holds the tokens' limiters; nil when authentication is off.
	quotas *quotaTable
}

// NewHandler returns the HTTP API of svc (see docs/api.md). Its metrics
// (mamba_http_*) are registered on reg; /metrics serves what gatherer
// gathers, typically the same *prometheus.Registry passed as both. A nil
// reg registers nothing, a nil gatherer makes /metrics answer 404
// not_found, and a nil log discards log records.
func NewHandler(svc ingest.Service, opts Options, reg prometheus.Registerer, gatherer prometheus.Gatherer, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{
		svc:     svc,
		opts:    opts.withDefaults(),
		log:     log,
		mux:     http.NewServeMux(),
		metrics: newHTTPMetrics(reg),
		routeOf: make(map[string]string, len(routes)),
	}
	h.tokens.ttl = h.opts.TokenCacheTTL
	h.quotas = newQuotaTable(h.opts, h.metrics)
	if gatherer != nil {
		h.promHandler = promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
		})
	}
	for _, rt := range routes {
		pattern := rt.method + " " + rt.path
		h.routeOf[pattern] = rt.path
		serve := rt.serve
		need := routeAccess[pattern]
		if need == accessUnset {
			panic("httpapi: route " + pattern + " has no entry in routeAccess")
		}
		h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			ctx, err := h.authorize(r, need)
			if err == nil {
				err = h.serveWithMemory(serve, w, r.WithContext(ctx))
			}
			if err != nil {
				h.writeError(w, r, err)
			}
		})
	}
	return h
}

// serveWithMemory serves r with a reservation for its body in its
// context (readBody), released once serve returns.
func (h *handler) serveWithMemory(serve func(*handler, http.ResponseWriter, *http.Request) error, w http.ResponseWriter, r *http.Request) error {
	r, mem := h.withBodyMemory(r)
	defer mem.Release()
	return serve(h, w, r)
}

// ServeHTTP routes r, answers unknown routes and wrong methods with JSON
// errors, turns a handler panic into 500 internal, and records metrics for
// every request.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	aw := &apiWriter{ResponseWriter: w, requestID: newRequestID()}
	w.Header().Set(requestIDHeader, aw.requestID)
	body := &countingBody{ReadCloser: r.Body}
	if r.Body != nil {
		r.Body = body
	}
	mh, pattern := h.mux.Handler(r)
	route, ok := h.routeOf[pattern]
	if !ok {
		route = unmatchedRoute
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.Error("http handler panic", "method", r.Method, "route", route, "request_id", aw.requestID, "panic", p, "stack", string(debug.Stack()))
			if !aw.wroteHeader {
				h.writeError(aw, r, fmt.Errorf("handler panic: %v", p))
			}
		}
		h.metrics.observe(route, r.Method, aw.statusCode(), aw.code, time.Since(start), body.n, aw.n)
	}()
	if pattern == "" {
		h.noRoute(aw, r, mh)
		return
	}
	h.mux.ServeHTTP(aw, r)
}

// noRoute answers a request no pattern matched. The mux's own handler for
// it says whether the path exists with other methods (405 with an Allow
// header) or not at all (404); both become JSON errors. Anything else it
// would do (a redirect to the cleaned path) is done as is.
func (h *handler) noRoute(w *apiWriter, r *http.Request, mh http.Handler) {
	probe := &statusProbe{header: make(http.Header)}
	mh.ServeHTTP(probe, r)
	switch probe.status {
	case http.StatusMethodNotAllowed:
		allow := probe.header.Get("Allow")
		w.Header().Set("Allow", allow)
		h.writeError(w, r, fmt.Errorf("%w: %s %s; allowed: %s", errMethodNotAllowed, shorten(r.Method), shorten(r.URL.Path), allow))
	case http.StatusNotFound:
		h.writeError(w, r, fmt.Errorf("%w: no route for %s %s", errRouteNotFound, shorten(r.Method), shorten(r.URL.Path)))
	default:
		mh.ServeHTTP(w, r)
	}
}

// writeJSON answers v as JSON with the given status.
func (h *handler) writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a bug can get here: every value passed is plain data.
		h.log.Error("http encode response", "err", err)
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"internal server error"}}` + "\n")
		status = http.StatusInternalServerError
	}
	h.writeBody(w, status, mediaJSON, buf.Bytes())
}

func (h *handler) writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// apiWriter records what a handler answered, for the metrics: the status,
// the error code (set by writeError) and the bytes of the body.
type apiWriter struct {
	http.ResponseWriter
	requestID   string
	status      int
	wroteHeader bool
	code        string
	n           int64
}

func (w *apiWriter) WriteHeader(status int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *apiWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *apiWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusCode is the status sent, or 200 when the handler wrote nothing.
func (w *apiWriter) statusCode() int {
	if !w.wroteHeader {
		return http.StatusOK
	}
	return w.status
}

// countingBody counts the request body bytes read.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// statusProbe is a ResponseWriter that only keeps the status and headers.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}
func (p *statusProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}

// requestIDHeader carries the id the node gave a request: it is in every
// answer, in error bodies as request_id, and in the node's log lines about
// the request, so that a client's report finds the log's cause.
const requestIDHeader = "X-Request-Id"

// newRequestID returns 16 random hex digits.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
