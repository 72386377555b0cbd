package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mambamq/mamba/internal/wire"
)

// Errors of the API, one per error code of docs/api.md. Every error a
// request returns for an HTTP error answer is an *APIError, which matches
// the sentinel of its code: errors.Is(err, client.ErrTopicNotFound).
var (
	ErrInvalidRequest       = errors.New("invalid request")        // 400 invalid_request
	ErrOffsetOutOfRange     = errors.New("offset out of range")    // 400 offset_out_of_range
	ErrUnauthenticated      = errors.New("unauthenticated")        // 401 unauthenticated: no, or no valid, bearer token
	ErrForbidden            = errors.New("forbidden")              // 403 forbidden: the token lacks the scope needed
	ErrNotFound             = errors.New("not found")              // 404 not_found: no such route
	ErrTokenNotFound        = errors.New("token not found")        // 404 token_not_found
	ErrTopicNotFound        = errors.New("topic not found")        // 404 topic_not_found
	ErrPartitionNotFound    = errors.New("partition not found")    // 404 partition_not_found
	ErrGroupNotFound        = errors.New("group not found")        // 404 group_not_found
	ErrMemberNotFound       = errors.New("member not found")       // 404 member_not_found
	ErrMethodNotAllowed     = errors.New("method not allowed")     // 405 method_not_allowed
	ErrRequestTimeout       = errors.New("request timeout")        // 408 request_timeout
	ErrTopicExists          = errors.New("topic exists")           // 409 topic_exists
	ErrLeaseLost            = errors.New("lease lost")             // 409 lease_lost
	ErrSessionInvalid       = errors.New("session key invalid")    // 403 session_invalid
	ErrGroupNotEmpty        = errors.New("group not empty")        // 409 group_not_empty
	ErrPayloadTooLarge      = errors.New("payload too large")      // 413 payload_too_large
	ErrUnsupportedMediaType = errors.New("unsupported media type") // 415 unsupported_media_type
	ErrOverloaded           = errors.New("overloaded")             // 429 overloaded
	ErrQuotaExceeded        = errors.New("quota exceeded")         // 429 quota_exceeded: the token is over a quota (APIError.Quota)
	ErrInternal             = errors.New("internal server error")  // 500 internal
	ErrUnavailable          = errors.New("unavailable")            // 503 unavailable
)

// Errors of the SDK itself.
var (
	// ErrClosed is returned by a producer or consumer after Close.
	ErrClosed = errors.New("closed")
	// ErrBufferFull is returned by Producer.TryProduce when the record
	// does not fit in the producer's buffer.
	ErrBufferFull = errors.New("producer buffer full")
	// ErrDeliveryTimeout is wrapped, with the last error, by the error of
	// a record the producer could not deliver within its delivery
	// timeout.
	ErrDeliveryTimeout = errors.New("delivery timeout")
)

// codeErrors maps every error code of the API (wire.Codes) to its
// sentinel.
var codeErrors = map[string]error{
	wire.CodeInvalidRequest:       ErrInvalidRequest,
	wire.CodeOffsetOutOfRange:     ErrOffsetOutOfRange,
	wire.CodeUnauthenticated:      ErrUnauthenticated,
	wire.CodeForbidden:            ErrForbidden,
	wire.CodeNotFound:             ErrNotFound,
	wire.CodeTokenNotFound:        ErrTokenNotFound,
	wire.CodeTopicNotFound:        ErrTopicNotFound,
	wire.CodePartitionNotFound:    ErrPartitionNotFound,
	wire.CodeGroupNotFound:        ErrGroupNotFound,
	wire.CodeMemberNotFound:       ErrMemberNotFound,
	wire.CodeMethodNotAllowed:     ErrMethodNotAllowed,
	wire.CodeRequestTimeout:       ErrRequestTimeout,
	wire.CodeTopicExists:          ErrTopicExists,
	wire.CodeLeaseLost:            ErrLeaseLost,
	wire.CodeSessionInvalid:       ErrSessionInvalid,
	wire.CodeGroupNotEmpty:        ErrGroupNotEmpty,
	wire.CodePayloadTooLarge:      ErrPayloadTooLarge,
	wire.CodeUnsupportedMediaType: ErrUnsupportedMediaType,
	wire.CodeOverloaded:           ErrOverloaded,
	wire.CodeQuotaExceeded:        ErrQuotaExceeded,
	wire.CodeInternal:             ErrInternal,
	wire.CodeUnavailable:          ErrUnavailable,
}

// APIError is an error answer of a Mamba node (or of something between
// the client and the node, such as a load balancer). Its Is method
// matches the sentinel of Code, so callers branch with errors.Is and
// reach the fields with errors.As. A code the SDK does not know, or an
// answer without a Mamba error body (Code is then empty), still gives an
// *APIError that matches no sentinel.
type APIError struct {
	// Status is the HTTP status.
	Status int
	// Code is the API error code, such as "topic_not_found".
	Code string
	// Message is for people and may change between versions.
	Message string
	// RetryAfter is the Retry-After header of the answer (429), zero
	// when there was none.
	RetryAfter time.Duration
	// Quota names the quota of a quota_exceeded answer: one of
	// "produce_bytes", "produce_requests", "fetch_bytes", "long_polls"
	// and "idempotency_keys". Empty otherwise.
	Quota string
	// RequestID is the id the node gave the request (its X-Request-Id
	// header), which the node's log lines about it carry: quote it when
	// reporting a 5xx. Empty when the answer did not come from a node.
	RequestID string
}

// Error is the node's message, which names what it is about, followed by
// the status and code: "topic orders: topic not found (404
// topic_not_found)". A 5xx also gives the request id, under which the
// node logged the cause.
func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	if e.Status >= 500 && e.RequestID != "" {
		code += ", request " + e.RequestID
	}
	if e.Message == "" {
		return fmt.Sprintf("%d %s", e.Status, code)
	}
	return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, code)
}

// withOp wraps err with the operation that failed, unless err is an
// *APIError: the node's message names the topic or group already, and
// saying it twice helps nobody.
func withOp(op string, err error) error {
	if _, ok := err.(*APIError); ok {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Is reports whether target is the sentinel of e's code.
func (e *APIError) Is(target error) bool {
	s, ok := codeErrors[e.Code]
	return ok && s == target
}

// IsRetryable reports whether err is worth retrying unchanged: a 408,
// 429, 502, 503 or 504 answer, or a network failure (connection refused or
// reset, an answer cut short, a request timeout). The producer, the
// consumers' iterators and idempotent requests retry these themselves;
// the function is for callers writing their own loops. A canceled
// context is not retryable, nor is an error the SDK stopped retrying
// after its retry or connect timeout (WithRetryTimeout,
// WithConnectTimeout). Nor is a TLS handshake that failed: an untrusted
// certificate either way, or TLS spoken to plain HTTP.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || tlsRefused(err) {
		return false
	}
	if _, ok := errors.AsType[*retriesExhausted](err); ok {
		return false // the SDK retried it already, for as long as it was told to
	}
	if ae, ok := errors.AsType[*APIError](err); ok {
		switch ae.Status {
		case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	_, ok := errors.AsType[*transportError](err)
	return ok
}

// transportError is a request that got no complete answer: the
// connection failed, was closed, or the attempt timed out. Whether the
// node acted on the request is unknown.
type transportError struct {
	op  string
	err error
}

func (e *transportError) Error() string { return e.op + ": " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }
