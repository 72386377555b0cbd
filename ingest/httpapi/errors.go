package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/wire"
	"github.com/mambamq/mamba/metadata"
)

// Errors only the HTTP layer returns. They are in errorTable with the
// service's errors.
var (
	errRouteNotFound        = errors.New("not found")
	errMethodNotAllowed     = errors.New("method not allowed")
	errUnsupportedMediaType = errors.New("unsupported media type")
	errBodyTimeout          = errors.New("request body timed out")
)

// errorTable maps every error a handler returns to its code, and through
// wire.Codes to its status. The first row whose err matches (errors.Is)
// wins; an error that matches no row is 500 internal. Every handler
// answers errors through it, via writeError.
var errorTable = []struct {
	err  error
	code string
}{
	{ingest.ErrTopicNotFound, wire.CodeTopicNotFound},
	{ingest.ErrTopicExists, wire.CodeTopicExists},
	{ingest.ErrPartitionNotFound, wire.CodePartitionNotFound},
	{ingest.ErrGroupNotFound, wire.CodeGroupNotFound},
	{ingest.ErrMemberNotFound, wire.CodeMemberNotFound},
	{ingest.ErrLeaseLost, wire.CodeLeaseLost},
	{ingest.ErrSessionInvalid, wire.CodeSessionInvalid},
	{ingest.ErrGroupNotEmpty, wire.CodeGroupNotEmpty},
	{ingest.ErrOffsetOutOfRange, wire.CodeOffsetOutOfRange},
	{ingest.ErrInvalidRequest, wire.CodeInvalidRequest},
	{ingest.ErrTooLarge, wire.CodePayloadTooLarge},
	{ingest.ErrOverloaded, wire.CodeOverloaded},
	{errQuotaExceeded, wire.CodeQuotaExceeded},
	{ingest.ErrUnavailable, wire.CodeUnavailable},
	{ingest.ErrShuttingDown, wire.CodeUnavailable},
	{metadata.ErrUnavailable, wire.CodeUnavailable},
	// A deadline passed, or the request's context was canceled (then the
	// client has gone and the answer is only counted, never read).
	{context.DeadlineExceeded, wire.CodeUnavailable},
	{context.Canceled, wire.CodeUnavailable},
	{errUnauthenticated, wire.CodeUnauthenticated},
	{errForbidden, wire.CodeForbidden},
	{metadata.ErrBadScope, wire.CodeInvalidRequest},
	{metadata.ErrTokenNotFound, wire.CodeTokenNotFound},
	{errRouteNotFound, wire.CodeNotFound},
	{errMethodNotAllowed, wire.CodeMethodNotAllowed},
	{errUnsupportedMediaType, wire.CodeUnsupportedMediaType},
	{errBodyTimeout, wire.CodeRequestTimeout},
}

// statusOf is the status of every code of wire.Codes.
var statusOf = func() map[string]int {
	m := make(map[string]int)
	for _, c := range wire.Codes() {
		m[c.Code] = c.Status
	}
	return m
}()

// classify returns the status and code errorTable gives err.
func classify(err error) (status int, code string) {
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			return statusOf[row.code], row.code
		}
	}
	return http.StatusInternalServerError, wire.CodeInternal
}

// writeError answers err as {"error":{"code","message","request_id"}}
// with the status and code errorTable gives it. A 4xx message is err's
// text, which speaks of the caller's own input. A 5xx message is a fixed
// text: the cause may name object keys, Redis errors or addresses, so it
// goes to the log with the request id the answer carries (and its
// X-Request-Id header). A 429 carries Retry-After, a 401
// WWW-Authenticate: Bearer.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	msg := err.Error()
	var id string
	if aw, ok := w.(*apiWriter); ok {
		aw.code = code
		id = aw.requestID
	}
	switch {
	case status == http.StatusInternalServerError:
		h.log.Error("http request failed", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
		msg = "internal server error"
	case status == http.StatusServiceUnavailable && r.Context().Err() != nil:
		h.log.Debug("http client went away", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
		msg = unavailableMessage(err)
	case status == http.StatusServiceUnavailable:
		h.log.Warn("http request unavailable", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
		msg = unavailableMessage(err)
	case status == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="mamba"`)
	case status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(err), 10))
	}
	h.writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg, RequestID: id, Quota: quotaOf(err)}})
}

// unavailableMessage is the fixed text a 503 answers with.
func unavailableMessage(err error) string {
	if errors.Is(err, ingest.ErrShuttingDown) {
		return "the node is shutting down; retry, on another node if there is one"
	}
	return "the bucket or the metadata store did not answer in time; retry"
}

// retryAfterSeconds is the Retry-After of a 429: the RetryAfter of the
// OverloadedError or the quotaError, rounded up to whole seconds, at
// least 1.
func retryAfterSeconds(err error) int64 {
	var d time.Duration
	if oe, ok := errors.AsType[*ingest.OverloadedError](err); ok {
		d = oe.RetryAfter
	} else if qe, ok := errors.AsType[*quotaError](err); ok {
		d = qe.retryAfter
	}
	if d <= time.Second {
		return 1
	}
	return int64((d + time.Second - 1) / time.Second)
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// RequestID matches the answer's X-Request-Id header and the node's
	// log lines about the request.
	RequestID string `json:"request_id,omitempty"`
	// Quota names the quota of a 429 quota_exceeded (wire.QuotaNames).
	Quota string `json:"quota,omitempty"`
}
