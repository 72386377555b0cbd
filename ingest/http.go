package ingest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/wire"
	"github.com/mambamq/mamba/metadata"
)

// This file is the HTTP API: routing, request parsing and validation,
// response encoding, the error table and the HTTP metrics. The contract is
// docs/api.md (and docs/openapi.yaml); every behaviour here is described
// there.

// Defaults for HTTPOptions and for fetch parameters a request leaves out.
const (
	// DefaultHTTPMaxRequestBytes bounds a request body: 16 MiB.
	DefaultHTTPMaxRequestBytes int64 = 16 << 20
	// DefaultHTTPMaxWait caps a fetch's wait_ms: 30 s.
	DefaultHTTPMaxWait = 30 * time.Second
	// DefaultHTTPFetchMaxRecords is a fetch's max_records when absent.
	DefaultHTTPFetchMaxRecords = 1000
	// DefaultHTTPFetchMaxBytes is a fetch's max_bytes when absent: 1 MiB.
	DefaultHTTPFetchMaxBytes = 1 << 20
)

// Media types the API speaks. The binary one is specified in package
// internal/wire.
const (
	mediaJSON   = "application/json"
	mediaBinary = wire.ContentType
)

// Error codes: the "code" field of every error body. ErrorCodes lists them
// with their statuses; the Go SDK mirrors them one to one.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeOffsetOutOfRange     = "offset_out_of_range"
	CodeNotFound             = "not_found"
	CodeTopicNotFound        = "topic_not_found"
	CodePartitionNotFound    = "partition_not_found"
	CodeGroupNotFound        = "group_not_found"
	CodeMemberNotFound       = "member_not_found"
	CodeLeaseLost            = "lease_lost"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeTopicExists          = "topic_exists"
	CodePayloadTooLarge      = "payload_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeOverloaded           = "overloaded"
	CodeInternal             = "internal"
	CodeUnavailable          = "unavailable"
)

// ErrorCode describes one error code of the API.
type ErrorCode struct {
	// Code is the value of the "code" field of the error body.
	Code string
	// Status is the HTTP status that always comes with Code.
	Status int
	// Meaning says when the code is returned.
	Meaning string
}

// ErrorCodes returns every error code the API answers with, in order of
// status. Each code always comes with the same status.
func ErrorCodes() []ErrorCode {
	return []ErrorCode{
		{CodeInvalidRequest, http.StatusBadRequest, "The request is malformed or a parameter is invalid; the message names it. Do not retry unchanged."},
		{CodeOffsetOutOfRange, http.StatusBadRequest, "The fetch offset is below the partition's log start offset or above its high watermark."},
		{CodeNotFound, http.StatusNotFound, "No route has this path."},
		{CodeTopicNotFound, http.StatusNotFound, "The topic does not exist."},
		{CodePartitionNotFound, http.StatusNotFound, "The topic has no such partition (fetch)."},
		{CodeGroupNotFound, http.StatusNotFound, "The consumer group never had a member."},
		{CodeMemberNotFound, http.StatusNotFound, "The group member left, or missed heartbeats for its session timeout; join again."},
		{CodeMethodNotAllowed, http.StatusMethodNotAllowed, "The path exists but not with this method; the Allow header lists those it has."},
		{CodeTopicExists, http.StatusConflict, "A topic with this name already exists."},
		{CodeLeaseLost, http.StatusConflict, "An offset commit named a lease that is no longer the partition's current lease; nothing was committed."},
		{CodePayloadTooLarge, http.StatusRequestEntityTooLarge, "The request body, a record or the record count is over a limit."},
		{CodeUnsupportedMediaType, http.StatusUnsupportedMediaType, "The produce body is neither application/json nor application/vnd.mamba.v1+binary."},
		{CodeOverloaded, http.StatusTooManyRequests, "The node's buffer is full; retry after the Retry-After header's seconds."},
		{CodeInternal, http.StatusInternalServerError, "An unexpected server error; it is logged on the node."},
		{CodeUnavailable, http.StatusServiceUnavailable, "The bucket or Redis could not be reached in time, or the node is shutting down; retry, with the same Idempotency-Key for a produce."},
	}
}

// Errors only the HTTP layer returns. They are in errorTable with the
// node's errors.
var (
	errRouteNotFound        = errors.New("not found")
	errMethodNotAllowed     = errors.New("method not allowed")
	errUnsupportedMediaType = errors.New("unsupported media type")
)

// errorTable maps every error a handler returns to its status and code.
// The first row whose err matches (errors.Is) wins; an error that matches
// no row is 500 internal. Every handler answers errors through it, via
// writeError.
var errorTable = []struct {
	err    error
	status int
	code   string
}{
	{ErrTopicNotFound, http.StatusNotFound, CodeTopicNotFound},
	{ErrTopicExists, http.StatusConflict, CodeTopicExists},
	{ErrPartitionNotFound, http.StatusNotFound, CodePartitionNotFound},
	{ErrGroupNotFound, http.StatusNotFound, CodeGroupNotFound},
	{ErrMemberNotFound, http.StatusNotFound, CodeMemberNotFound},
	{ErrLeaseLost, http.StatusConflict, CodeLeaseLost},
	{ErrOffsetOutOfRange, http.StatusBadRequest, CodeOffsetOutOfRange},
	{ErrInvalidRequest, http.StatusBadRequest, CodeInvalidRequest},
	{ErrTooLarge, http.StatusRequestEntityTooLarge, CodePayloadTooLarge},
	{ErrOverloaded, http.StatusTooManyRequests, CodeOverloaded},
	{ErrUnavailable, http.StatusServiceUnavailable, CodeUnavailable},
	{ErrShuttingDown, http.StatusServiceUnavailable, CodeUnavailable},
	{metadata.ErrUnavailable, http.StatusServiceUnavailable, CodeUnavailable},
	// A deadline passed, or the request's context was canceled (then the
	// client has gone and the answer is only counted, never read).
	{context.DeadlineExceeded, http.StatusServiceUnavailable, CodeUnavailable},
	{context.Canceled, http.StatusServiceUnavailable, CodeUnavailable},
	{errRouteNotFound, http.StatusNotFound, CodeNotFound},
	{errMethodNotAllowed, http.StatusMethodNotAllowed, CodeMethodNotAllowed},
	{errUnsupportedMediaType, http.StatusUnsupportedMediaType, CodeUnsupportedMediaType},
}

// HTTPOptions configures the handler NewHandler returns. Zero fields take
// their defaults.
type HTTPOptions struct {
	// MaxRequestBytes bounds a request body; a larger one is answered 413
	// payload_too_large without being read. DefaultHTTPMaxRequestBytes
	// when zero.
	MaxRequestBytes int64
	// MaxWait caps the wait_ms of a fetch. DefaultHTTPMaxWait when zero.
	MaxWait time.Duration
}

// Validate reports every bad field at once.
func (o HTTPOptions) Validate() error {
	var errs []error
	if o.MaxRequestBytes < 0 {
		errs = append(errs, fmt.Errorf("http max request bytes %d is negative", o.MaxRequestBytes))
	}
	if o.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("http max wait %v is negative", o.MaxWait))
	}
	return errors.Join(errs...)
}

// withDefaults replaces zero (and, since NewHandler cannot fail, negative)
// fields by their defaults.
func (o HTTPOptions) withDefaults() HTTPOptions {
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultHTTPMaxRequestBytes
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultHTTPMaxWait
	}
	return o
}

// apiRoute is one endpoint: a net/http ServeMux pattern and its handler.
type apiRoute struct {
	method, path string
	serve        func(*apiHandler, http.ResponseWriter, *http.Request) error
}

// apiRoutes are all the endpoints, as docs/openapi.yaml lists them (a test
// keeps the two equal).
var apiRoutes = []apiRoute{
	{http.MethodPost, "/v1/topics", (*apiHandler).createTopic},
	{http.MethodGet, "/v1/topics", (*apiHandler).listTopics},
	{http.MethodGet, "/v1/topics/{topic}", (*apiHandler).describeTopic},
	{http.MethodDelete, "/v1/topics/{topic}", (*apiHandler).deleteTopic},
	{http.MethodPost, "/v1/topics/{topic}/records", (*apiHandler).produce},
	{http.MethodGet, "/v1/topics/{topic}/partitions/{partition}/records", (*apiHandler).fetch},
	{http.MethodGet, "/v1/groups", (*apiHandler).listGroups},
	{http.MethodGet, "/v1/groups/{group}", (*apiHandler).describeGroup},
	{http.MethodPost, "/v1/groups/{group}/members", (*apiHandler).joinGroup},
	{http.MethodPost, "/v1/groups/{group}/members/{member}/heartbeat", (*apiHandler).heartbeat},
	{http.MethodDelete, "/v1/groups/{group}/members/{member}", (*apiHandler).leaveGroup},
	{http.MethodPost, "/v1/groups/{group}/offsets", (*apiHandler).commitOffsets},
	{http.MethodGet, "/healthz", (*apiHandler).healthz},
	{http.MethodGet, "/readyz", (*apiHandler).readyz},
	{http.MethodGet, "/metrics", (*apiHandler).metricsPage},
}

// unmatchedRoute is the route label of requests no route matches.
const unmatchedRoute = "unmatched"

// apiHandler serves the HTTP API of one Service.
type apiHandler struct {
	svc     Service
	opts    HTTPOptions
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *apiMetrics
	// routeOf maps a registered pattern ("GET /v1/topics") to the route
	// label of its metrics ("/v1/topics").
	routeOf map[string]string
	// promHandler serves /metrics; nil when there is no gatherer.
	promHandler http.Handler
	// bodies recycles binary produce bodies and fetch responses; see
	// bodyPool.
	bodies bodyPool
}

// NewHandler returns the HTTP API of svc (see docs/api.md). Its metrics
// (mamba_http_*) are registered on reg; /metrics serves what gatherer
// gathers, typically the same *prometheus.Registry passed as both. A nil
// reg registers nothing, a nil gatherer makes /metrics answer 404
// not_found, and a nil log discards log records.
func NewHandler(svc Service, opts HTTPOptions, reg prometheus.Registerer, gatherer prometheus.Gatherer, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &apiHandler{
		svc:     svc,
		opts:    opts.withDefaults(),
		log:     log,
		mux:     http.NewServeMux(),
		metrics: newAPIMetrics(reg),
		routeOf: make(map[string]string, len(apiRoutes)),
	}
	if gatherer != nil {
		h.promHandler = promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
		})
	}
	for _, rt := range apiRoutes {
		pattern := rt.method + " " + rt.path
		h.routeOf[pattern] = rt.path
		serve := rt.serve
		h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := serve(h, w, r); err != nil {
				h.writeError(w, r, err)
			}
		})
	}
	return h
}

// ServeHTTP routes r, answers unknown routes and wrong methods with JSON
// errors, turns a handler panic into 500 internal, and records metrics for
// every request.
func (h *apiHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	aw := &apiWriter{ResponseWriter: w}
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
			h.log.Error("http handler panic", "method", r.Method, "route", route, "panic", p, "stack", string(debug.Stack()))
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
func (h *apiHandler) noRoute(w *apiWriter, r *http.Request, mh http.Handler) {
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

// writeError answers err as {"error":{"code","message"}} with the status
// and code errorTable gives it. The message is err's text, except for 500
// internal, whose cause is logged and not sent. A 429 carries Retry-After.
func (h *apiHandler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := http.StatusInternalServerError, CodeInternal
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			status, code = row.status, row.code
			break
		}
	}
	msg := err.Error()
	switch {
	case status == http.StatusInternalServerError:
		h.log.Error("http request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal server error"
	case status == http.StatusServiceUnavailable && r.Context().Err() != nil:
		h.log.Debug("http client went away", "method", r.Method, "path", r.URL.Path, "err", err)
	case status == http.StatusServiceUnavailable:
		h.log.Warn("http request unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
	case status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(err), 10))
	}
	if aw, ok := w.(*apiWriter); ok {
		aw.code = code
	}
	h.writeJSON(w, status, apiErrorBody{Error: apiErrorDetail{Code: code, Message: msg}})
}

// retryAfterSeconds is the Retry-After of an overload: the OverloadedError's
// RetryAfter rounded up to whole seconds, at least 1.
func retryAfterSeconds(err error) int64 {
	var oe *OverloadedError
	if !errors.As(err, &oe) || oe.RetryAfter <= time.Second {
		return 1
	}
	return int64((oe.RetryAfter + time.Second - 1) / time.Second)
}

type apiErrorBody struct {
	Error apiErrorDetail `json:"error"`
}

type apiErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeJSON answers v as JSON with the given status.
func (h *apiHandler) writeJSON(w http.ResponseWriter, status int, v any) {
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

func (h *apiHandler) writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// readBody reads the whole request body, refusing one over
// MaxRequestBytes: at once when Content-Length says so, otherwise once
// that many bytes have been read.
//
// The returned buffer is never reused: decoded records alias it, and
// under ack=buffered the node keeps them after the request ends.
func (h *apiHandler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return h.readBodyFrom(w, r, nil)
}

// readBodyFrom is readBody that takes the buffer from pool, when not nil;
// the caller then owns it and may release it to pool.
func (h *apiHandler) readBodyFrom(w http.ResponseWriter, r *http.Request, pool *bodyPool) ([]byte, error) {
	limit := h.opts.MaxRequestBytes
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: request body of %d bytes is over the limit of %d", ErrTooLarge, r.ContentLength, limit)
	}
	if r.Body == nil {
		return nil, nil
	}
	read := readAllHint
	if pool != nil {
		read = pool.read
	}
	body, err := read(http.MaxBytesReader(w, r.Body, limit), r.ContentLength)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, fmt.Errorf("%w: request body is over the limit of %d bytes", ErrTooLarge, limit)
		}
		return nil, fmt.Errorf("%w: read request body: %v", ErrInvalidRequest, err)
	}
	return body, nil
}

// bodyPrealloc bounds what readAllHint allocates before bytes arrive, so
// that requests announcing large bodies and sending nothing cost little.
const bodyPrealloc = 1 << 20

// readAllHint reads rd to the end. size, when positive, is the expected
// length: the buffer starts at that size (up to bodyPrealloc) and doubles
// without passing it, so a body of the announced length is read with a
// few allocations and no final doubling.
func readAllHint(rd io.Reader, size int64) ([]byte, error) {
	initial := int64(512)
	if size > 0 {
		// One byte more than announced lets Read report EOF without a
		// reallocation.
		initial = min(size+1, bodyPrealloc)
	}
	buf := make([]byte, 0, initial)
	for {
		if len(buf) == cap(buf) {
			grow := cap(buf)
			if size > 0 && int64(len(buf)) < size+1 {
				grow = int(min(int64(grow), size+1-int64(len(buf))))
			}
			buf = slices.Grow(buf, max(grow, 512))
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// decodeJSONBody decodes body into v strictly: one JSON value, no unknown
// fields, nothing after it. Errors wrap ErrInvalidRequest and name the
// offending field where the decoder knows it.
func decodeJSONBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return invalidf("request body is empty; want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return invalidf("field %s: JSON %s is not a valid %s", typeErr.Field, typeErr.Value, jsonTypeName(typeErr.Type.Kind().String()))
		case errors.As(err, &typeErr):
			return invalidf("request body is a JSON %s; want an object", typeErr.Value)
		case errors.As(err, &syntaxErr):
			return invalidf("malformed JSON at byte %d: %v", syntaxErr.Offset, err)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return invalidf("malformed JSON: unexpected end of body")
		}
		return invalidf("malformed JSON: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidf("malformed JSON: data after the JSON object")
	}
	return nil
}

// jsonTypeName names a Go kind the way a JSON API user thinks of it.
func jsonTypeName(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "integer"
	case kind == "map", kind == "struct":
		return "object"
	case kind == "slice":
		return "array"
	}
	return kind
}

// pathTopic returns the {topic} path value. A name no topic can have is
// not found.
func pathTopic(r *http.Request) (string, error) {
	name := r.PathValue("topic")
	if chunk.ValidateTopic(name) != nil {
		return "", fmt.Errorf("%w: %q is not a valid topic name", ErrTopicNotFound, shorten(name))
	}
	return name, nil
}

// shorten cuts s for echoing in an error message.
func shorten(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// query parses the query string, refusing a malformed one.
func query(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalidf("malformed query string: %v", err)
	}
	return q, nil
}

// queryChoice returns the value of the query parameter name, which must be
// one of choices; def when it is absent. An empty value is refused like
// any other value not in choices.
func queryChoice(q url.Values, name, def string, choices ...string) (string, error) {
	vs, ok := q[name]
	if !ok {
		return def, nil
	}
	if !slices.Contains(choices, vs[0]) {
		return "", invalidf("%s %q: want %s", name, shorten(vs[0]), strings.Join(choices, " or "))
	}
	return vs[0], nil
}

// base64Format reports whether q asks for format=base64; format=text is
// the default.
func base64Format(q url.Values) (bool, error) {
	f, err := queryChoice(q, "format", "text", "text", "base64")
	return f == "base64", err
}

// acceptsBinary reports whether the Accept header names the binary media
// type (with a q-value above zero).
func acceptsBinary(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != mediaBinary {
				continue
			}
			if q, ok := params["q"]; ok {
				if v, err := strconv.ParseFloat(q, 64); err != nil || v <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// Topics.

type apiTopic struct {
	Name        string `json:"name"`
	Partitions  int    `json:"partitions"`
	RetentionMS int64  `json:"retention_ms"`
}

func topicToAPI(t TopicConfig) apiTopic {
	return apiTopic{Name: t.Name, Partitions: t.Partitions, RetentionMS: t.RetentionMS}
}

type apiTopicList struct {
	Topics []apiTopic `json:"topics"`
}

type apiPartitionStats struct {
	Partition      int32 `json:"partition"`
	LogStartOffset int64 `json:"log_start_offset"`
	HighWatermark  int64 `json:"high_watermark"`
}

type apiTopicDescription struct {
	apiTopic
	PartitionStats []apiPartitionStats `json:"partition_stats"`
}

// validateNewTopic checks a topic to create, naming the first bad field.
func validateNewTopic(t apiTopic) error {
	if chunk.ValidateTopic(t.Name) != nil {
		return invalidf("name %q: want 1 to %d characters of A-Z, a-z, 0-9, '.', '_' and '-'", shorten(t.Name), chunk.MaxTopicLen)
	}
	if t.Partitions < 1 || t.Partitions > metadata.MaxPartitions {
		return invalidf("partitions %d: want 1 to %d", t.Partitions, metadata.MaxPartitions)
	}
	if t.RetentionMS < 0 {
		return invalidf("retention_ms %d: want 0 (keep forever) or more", t.RetentionMS)
	}
	return nil
}

func (h *apiHandler) createTopic(w http.ResponseWriter, r *http.Request) error {
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	var req apiTopic
	if err := decodeJSONBody(body, &req); err != nil {
		return err
	}
	if err := validateNewTopic(req); err != nil {
		return err
	}
	t, err := h.svc.CreateTopic(r.Context(), TopicConfig{Name: req.Name, Partitions: req.Partitions, RetentionMS: req.RetentionMS})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/topics/"+url.PathEscape(t.Name))
	h.writeJSON(w, http.StatusCreated, topicToAPI(t))
	return nil
}

func (h *apiHandler) listTopics(w http.ResponseWriter, r *http.Request) error {
	topics, err := h.svc.ListTopics(r.Context())
	if err != nil {
		return err
	}
	out := apiTopicList{Topics: make([]apiTopic, 0, len(topics))}
	for _, t := range topics {
		out.Topics = append(out.Topics, topicToAPI(t))
	}
	h.writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *apiHandler) describeTopic(w http.ResponseWriter, r *http.Request) error {
	name, err := pathTopic(r)
	if err != nil {
		return err
	}
	d, err := h.svc.DescribeTopic(r.Context(), name)
	if err != nil {
		return err
	}
	out := apiTopicDescription{apiTopic: topicToAPI(d.TopicConfig), PartitionStats: make([]apiPartitionStats, 0, len(d.PartitionStats))}
	for _, s := range d.PartitionStats {
		out.PartitionStats = append(out.PartitionStats, apiPartitionStats{Partition: s.Partition, LogStartOffset: s.LogStartOffset, HighWatermark: s.HighWatermark})
	}
	h.writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *apiHandler) deleteTopic(w http.ResponseWriter, r *http.Request) error {
	name, err := pathTopic(r)
	if err != nil {
		return err
	}
	if err := h.svc.DeleteTopic(r.Context(), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Produce.

type apiProduceRequest struct {
	Records []apiProduceRecord `json:"records"`
}

type apiProduceRecord struct {
	// Key is nil when absent or null: a record without a key.
	Key     *string           `json:"key"`
	Value   string            `json:"value"`
	Headers map[string]string `json:"headers"`
	// Partition is nil when absent or null: any partition.
	Partition *int64 `json:"partition"`
	Timestamp int64  `json:"timestamp"`
}

type apiProduceResponse struct {
	Records []apiRecordResult `json:"records"`
}

type apiRecordResult struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// produceOptions reads the ack query parameter and the Idempotency-Key
// header.
func produceOptions(r *http.Request, q url.Values) (ProduceOptions, error) {
	var opts ProduceOptions
	ack, err := queryChoice(q, "ack", "durable", "durable", "buffered")
	if err != nil {
		return opts, err
	}
	if ack == "buffered" {
		opts.Ack = AckBuffered
	}
	if keys, ok := r.Header["Idempotency-Key"]; ok {
		if len(keys) != 1 {
			return opts, invalidf("Idempotency-Key: want one header, not %d", len(keys))
		}
		if err := metadata.ValidateIdempotencyKey(keys[0]); err != nil {
			return opts, invalidf("Idempotency-Key: %v", err)
		}
		opts.IdempotencyKey = keys[0]
	}
	return opts, nil
}

func (h *apiHandler) produce(w http.ResponseWriter, r *http.Request) error {
	topic, err := pathTopic(r)
	if err != nil {
		return err
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != mediaJSON && mt != mediaBinary) {
		return fmt.Errorf("%w: Content-Type %q; send %s or %s", errUnsupportedMediaType, shorten(ct), mediaJSON, mediaBinary)
	}
	q, err := query(r)
	if err != nil {
		return err
	}
	b64, err := base64Format(q)
	if err != nil {
		return err
	}
	opts, err := produceOptions(r, q)
	if err != nil {
		return err
	}
	if a, ok := h.svc.(admitter); ok && r.ContentLength > 0 && r.ContentLength <= h.opts.MaxRequestBytes {
		if err := a.admitProduce(r.ContentLength); err != nil {
			// Refuse before the body takes memory, but read it (through
			// a small buffer) so that the client, still sending, gets
			// the answer on a connection that stays usable.
			_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, h.opts.MaxRequestBytes))
			return err
		}
	}
	var pool *bodyPool
	if mt == mediaBinary {
		// The records alias a binary body; the node releases it once
		// they are in a chunk. (JSON records are copies.)
		pool = &h.bodies
	}
	body, err := h.readBodyFrom(w, r, pool)
	if err != nil {
		return err
	}
	var records []ProduceRecord
	if mt == mediaBinary {
		records, err = decodeBinaryRecords(body)
		opts.body = &pooledBody{pool: pool, buf: body}
	} else {
		records, err = decodeJSONRecords(body, b64)
	}
	if err != nil {
		pool.release(body)
		return err
	}
	if len(records) == 0 {
		return invalidf("records: want at least one record")
	}

	results, err := h.svc.Produce(r.Context(), topic, records, opts)
	if err != nil {
		if errors.Is(err, ErrPartitionNotFound) {
			// A partition the topic lacks is the producer's mistake in
			// this request, not a missing resource.
			return fmt.Errorf("%w: %v", ErrInvalidRequest, err)
		}
		return err
	}
	if len(results) != len(records) {
		return fmt.Errorf("produce to %s returned %d results for %d records", topic, len(results), len(records))
	}
	status := http.StatusOK
	if opts.Ack == AckBuffered {
		status = http.StatusAccepted
	}
	if acceptsBinary(r) {
		out := make([]wire.ProduceResult, len(results))
		for i, res := range results {
			out[i] = wire.ProduceResult{Partition: res.Partition, Offset: res.Offset}
		}
		h.writeBody(w, status, mediaBinary, wire.AppendProduceResponse(make([]byte, 0, 4+len(out)*8), out))
		return nil
	}
	out := apiProduceResponse{Records: make([]apiRecordResult, len(results))}
	for i, res := range results {
		out.Records[i] = apiRecordResult{Partition: res.Partition, Offset: res.Offset}
	}
	h.writeJSON(w, status, out)
	return nil
}

// admitter is a Service that can refuse a produce request from its
// announced size alone, before its body is read: under overload a node
// would otherwise hold the bodies of every request it is about to refuse.
type admitter interface {
	admitProduce(bodyBytes int64) error
}

// decodeBinaryRecords decodes a produce body in the binary format. The
// records alias body.
func decodeBinaryRecords(body []byte) ([]ProduceRecord, error) {
	in, err := wire.DecodeProduceRequest(body)
	if err != nil {
		if errors.Is(err, wire.ErrLimit) {
			return nil, fmt.Errorf("%w: %v", ErrTooLarge, err)
		}
		return nil, invalidf("%v", err)
	}
	records := make([]ProduceRecord, len(in))
	for i, rec := range in {
		var hs []chunk.Header
		if len(rec.Headers) > 0 {
			hs = make([]chunk.Header, len(rec.Headers))
			for j, hdr := range rec.Headers {
				hs[j] = chunk.Header{Name: hdr.Name, Value: hdr.Value}
			}
		}
		records[i] = ProduceRecord{Key: rec.Key, Value: rec.Value, Headers: hs, Timestamp: rec.Timestamp, Partition: rec.Partition}
	}
	return records, nil
}

// decodeJSONRecords decodes a JSON produce body; with b64, keys, values
// and header values are standard base64.
func decodeJSONRecords(body []byte, b64 bool) ([]ProduceRecord, error) {
	var req apiProduceRequest
	if err := decodeJSONBody(body, &req); err != nil {
		return nil, err
	}
	if len(req.Records) > wire.MaxRecords {
		return nil, fmt.Errorf("%w: %d records, over the limit of %d per request", ErrTooLarge, len(req.Records), wire.MaxRecords)
	}
	decode := func(s string, field string, i int) ([]byte, error) {
		if !b64 {
			return []byte(s), nil
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, invalidf("records[%d].%s: not standard base64: %v", i, field, err)
		}
		return b, nil
	}
	records := make([]ProduceRecord, len(req.Records))
	for i, in := range req.Records {
		rec := ProduceRecord{Partition: AnyPartition, Timestamp: in.Timestamp}
		if in.Partition != nil {
			p := *in.Partition
			if p < 0 || p > math.MaxInt32 {
				return nil, invalidf("records[%d].partition %d: want 0 to %d, or leave it out to let the node choose", i, p, math.MaxInt32)
			}
			rec.Partition = int32(p)
		}
		var err error
		if in.Key != nil {
			if rec.Key, err = decode(*in.Key, "key", i); err != nil {
				return nil, err
			}
		}
		if rec.Value, err = decode(in.Value, "value", i); err != nil {
			return nil, err
		}
		if len(in.Headers) > 0 {
			rec.Headers = make([]chunk.Header, 0, len(in.Headers))
			for name, v := range in.Headers {
				value, err := decode(v, "headers."+name, i)
				if err != nil {
					return nil, err
				}
				rec.Headers = append(rec.Headers, chunk.Header{Name: name, Value: value})
			}
			// JSON objects have no order; sorting makes the stored order
			// the same for equal requests.
			slices.SortFunc(rec.Headers, func(a, b chunk.Header) int { return strings.Compare(a.Name, b.Name) })
		}
		records[i] = rec
	}
	return records, nil
}

// Fetch.

type apiFetchResponse struct {
	Records        []apiFetchedRecord `json:"records"`
	NextOffset     int64              `json:"next_offset"`
	HighWatermark  int64              `json:"high_watermark"`
	LogStartOffset int64              `json:"log_start_offset"`
}

type apiFetchedRecord struct {
	Offset    int64 `json:"offset"`
	Timestamp int64 `json:"timestamp"`
	// Key is null for a record without a key.
	Key     *string    `json:"key"`
	Value   string     `json:"value"`
	Headers apiHeaders `json:"headers"`
	// Encoding is "base64" when key, value and header values are base64.
	Encoding string `json:"encoding,omitempty"`
}

// apiHeaders encodes as a JSON object whose members keep the headers'
// order. A name that repeats (possible only for records produced in the
// binary format) repeats in the object.
type apiHeaders []apiHeader

type apiHeader struct{ name, value string }

func (hs apiHeaders) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, hdr := range hs {
		if i > 0 {
			b = append(b, ',')
		}
		name, err := json.Marshal(hdr.name)
		if err != nil {
			return nil, err
		}
		value, err := json.Marshal(hdr.value)
		if err != nil {
			return nil, err
		}
		b = append(b, name...)
		b = append(b, ':')
		b = append(b, value...)
	}
	return append(b, '}'), nil
}

// fetchParams parses the fetch query parameters.
func (h *apiHandler) fetchParams(q url.Values, req *FetchRequest) error {
	offset, ok, err := queryInt(q, "offset", 0, math.MaxInt64)
	if err != nil {
		return err
	}
	if !ok {
		return invalidf("offset: required")
	}
	req.Offset = offset
	maxRecords, ok, err := queryInt(q, "max_records", 1, math.MaxInt32)
	if err != nil {
		return err
	}
	req.MaxRecords = DefaultHTTPFetchMaxRecords
	if ok {
		req.MaxRecords = int(maxRecords)
	}
	maxBytes, ok, err := queryInt(q, "max_bytes", 1, math.MaxInt32)
	if err != nil {
		return err
	}
	req.MaxBytes = DefaultHTTPFetchMaxBytes
	if ok {
		req.MaxBytes = int(maxBytes)
	}
	waitMS, _, err := queryInt(q, "wait_ms", 0, math.MaxInt64)
	if err != nil {
		return err
	}
	req.Wait = h.opts.MaxWait
	if waitMS < h.opts.MaxWait.Milliseconds() {
		req.Wait = time.Duration(waitMS) * time.Millisecond
	}
	return nil
}

// queryInt parses the integer query parameter name, which must lie in
// [lo, hi]; ok is false when it is absent.
func queryInt(q url.Values, name string, lo, hi int64) (v int64, ok bool, err error) {
	s, ok := q[name]
	if !ok {
		return 0, false, nil
	}
	v, err = strconv.ParseInt(s[0], 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, false, invalidf("%s %q: want an integer from %d to %d", name, shorten(s[0]), lo, hi)
	}
	return v, true, nil
}

func (h *apiHandler) fetch(w http.ResponseWriter, r *http.Request) error {
	topic, err := pathTopic(r)
	if err != nil {
		return err
	}
	ps := r.PathValue("partition")
	p, err := strconv.ParseInt(ps, 10, 32)
	if err != nil || p < 0 {
		return fmt.Errorf("%w: %q is not a partition number", ErrPartitionNotFound, shorten(ps))
	}
	q, err := query(r)
	if err != nil {
		return err
	}
	b64, err := base64Format(q)
	if err != nil {
		return err
	}
	req := FetchRequest{Topic: topic, Partition: int32(p)}
	if err := h.fetchParams(q, &req); err != nil {
		return err
	}
	// The request's context ends when the client goes away, which ends a
	// long-poll early.
	res, err := h.svc.Fetch(r.Context(), req)
	if err != nil {
		return err
	}
	if acceptsBinary(r) {
		// Write copies the body out before it returns, so its buffer
		// serves the next fetch.
		body := appendBinaryFetch(res, &h.bodies)
		h.writeBody(w, http.StatusOK, mediaBinary, body)
		h.bodies.release(body)
		return nil
	}
	out := apiFetchResponse{
		Records:        make([]apiFetchedRecord, len(res.Records)),
		NextOffset:     res.NextOffset,
		HighWatermark:  res.HighWatermark,
		LogStartOffset: res.LogStartOffset,
	}
	for i, rec := range res.Records {
		out.Records[i] = fetchedToAPI(rec, b64)
	}
	h.writeJSON(w, http.StatusOK, out)
	return nil
}

// fetchedToAPI converts a record for JSON. Its key, value and header
// values are base64 when b64 is set or when any of them is not valid
// UTF-8, since JSON strings can only carry text; Encoding says so.
func fetchedToAPI(rec FetchedRecord, b64 bool) apiFetchedRecord {
	if !b64 {
		b64 = !utf8.Valid(rec.Key) || !utf8.Valid(rec.Value)
		for _, hdr := range rec.Headers {
			b64 = b64 || !utf8.Valid(hdr.Value)
		}
	}
	text := func(b []byte) string { return string(b) }
	out := apiFetchedRecord{Offset: rec.Offset, Timestamp: rec.Timestamp}
	if b64 {
		text = base64.StdEncoding.EncodeToString
		out.Encoding = "base64"
	}
	if rec.Key != nil {
		k := text(rec.Key)
		out.Key = &k
	}
	out.Value = text(rec.Value)
	out.Headers = make(apiHeaders, len(rec.Headers))
	for i, hdr := range rec.Headers {
		out.Headers[i] = apiHeader{name: hdr.Name, value: text(hdr.Value)}
	}
	return out
}

// appendBinaryFetch encodes a fetch result in the binary format.
func appendBinaryFetch(res FetchResult, pool *bodyPool) []byte {
	size := 32
	for i := range res.Records {
		rec := &res.Records[i]
		size += 24 + len(rec.Key) + len(rec.Value)
		for _, hdr := range rec.Headers {
			size += 4 + len(hdr.Name) + len(hdr.Value)
		}
	}
	out := wire.FetchResponse{NextOffset: res.NextOffset, HighWatermark: res.HighWatermark, LogStartOffset: res.LogStartOffset}
	b := pool.get(size)
	b = wire.AppendFetchResponseStart(b, out, len(res.Records))
	var hs []wire.Header // reused: AppendFetchRecord copies
	for i := range res.Records {
		rec := &res.Records[i]
		r := wire.FetchRecord{Offset: rec.Offset, Timestamp: rec.Timestamp, Key: rec.Key, Value: rec.Value}
		if len(rec.Headers) > 0 {
			hs = hs[:0]
			for _, hdr := range rec.Headers {
				hs = append(hs, wire.Header{Name: hdr.Name, Value: hdr.Value})
			}
			r.Headers = hs
		}
		b = wire.AppendFetchRecord(b, &r)
	}
	return b
}

// Health and metrics.

type apiStatus struct {
	Status string `json:"status"`
}

func (h *apiHandler) healthz(w http.ResponseWriter, r *http.Request) error {
	h.writeJSON(w, http.StatusOK, apiStatus{Status: "ok"})
	return nil
}

func (h *apiHandler) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.Ready(r.Context()); err != nil {
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return err
	}
	h.writeJSON(w, http.StatusOK, apiStatus{Status: "ok"})
	return nil
}

func (h *apiHandler) metricsPage(w http.ResponseWriter, r *http.Request) error {
	if h.promHandler == nil {
		return fmt.Errorf("%w: this server exposes no metrics", errRouteNotFound)
	}
	h.promHandler.ServeHTTP(w, r)
	return nil
}

// apiWriter records what a handler answered, for the metrics: the status,
// the error code (set by writeError) and the bytes of the body.
type apiWriter struct {
	http.ResponseWriter
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

// apiMetrics are the HTTP metrics, all named mamba_http_*. Labels: route
// is the path pattern ("/v1/topics/{topic}/records", or "unmatched"),
// method is the request method (or "other"), status the HTTP status and
// code the error code (empty on success).
type apiMetrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	requestBytes  *prometheus.CounterVec
	responseBytes *prometheus.CounterVec
}

func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	m := &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamba_http_requests_total",
			Help: "HTTP requests by route pattern, method, status and error code (empty on success).",
		}, []string{"route", "method", "status", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mamba_http_request_duration_seconds",
			Help: "Time from receiving an HTTP request to answering it, by route pattern; fetches include their long-poll wait.",
			// From a cached fetch to a long-poll at the 30 s default cap.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"}),
		requestBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamba_http_request_bytes_total",
			Help: "HTTP request body bytes read, by route pattern.",
		}, []string{"route"}),
		responseBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamba_http_response_bytes_total",
			Help: "HTTP response body bytes written, by route pattern.",
		}, []string{"route"}),
	}
	if reg != nil {
		m.requests = registerOrExisting(reg, m.requests)
		m.duration = registerOrExisting(reg, m.duration)
		m.requestBytes = registerOrExisting(reg, m.requestBytes)
		m.responseBytes = registerOrExisting(reg, m.responseBytes)
	}
	return m
}

// registerOrExisting registers c on reg, or returns the equal collector
// already there, so that several handlers can share one registry. It
// panics, as MustRegister does, on any other registration error: that is
// a bug (two metrics with one name and different labels).
func registerOrExisting[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("register http metrics: %v", err))
	}
	return c
}

func (m *apiMetrics) observe(route, method string, status int, code string, d time.Duration, in, out int64) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
	default:
		method = "other"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status), code).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
	m.requestBytes.WithLabelValues(route).Add(float64(in))
	m.responseBytes.WithLabelValues(route).Add(float64(out))
}
