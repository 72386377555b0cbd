package wire

import "net/http"

// HeaderSessionKey carries a group member's session key, as its join
// answered it, on its heartbeats, its leave and its offset commits.
const HeaderSessionKey = "Mamba-Session-Key"

// Error codes: the "code" field of every error body of the HTTP API. Each
// comes with one HTTP status (Codes). The server's error table maps its
// errors to them and the Go SDK maps them to its sentinels, both from
// these constants; docs/api.md lists them and a test keeps it equal.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeOffsetOutOfRange     = "offset_out_of_range"
	CodeUnauthenticated      = "unauthenticated"
	CodeForbidden            = "forbidden"
	CodeNotFound             = "not_found"
	CodeTokenNotFound        = "token_not_found"
	CodeTopicNotFound        = "topic_not_found"
	CodePartitionNotFound    = "partition_not_found"
	CodeGroupNotFound        = "group_not_found"
	CodeMemberNotFound       = "member_not_found"
	CodeLeaseLost            = "lease_lost"
	CodeSessionInvalid       = "session_invalid"
	CodeGroupNotEmpty        = "group_not_empty"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeRequestTimeout       = "request_timeout"
	CodeTopicExists          = "topic_exists"
	CodePayloadTooLarge      = "payload_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeOverloaded           = "overloaded"
	CodeQuotaExceeded        = "quota_exceeded"
	CodeInternal             = "internal"
	CodeUnavailable          = "unavailable"
)

// ErrorCode describes one error code of the API.
type ErrorCode struct {
	// Code is the value of the "code" field of the error body.
	Code string
	// Status is the HTTP status that always comes with Code.
	Status int
	// Meaning says when the code is returned, as docs/api.md words it.
	Meaning string
}

// Codes returns every error code the API answers with, in order of
// status. Each code always comes with the same status.
func Codes() []ErrorCode {
	return []ErrorCode{
		{CodeInvalidRequest, http.StatusBadRequest, "The request is malformed or a parameter is invalid; the message names it. Do not retry unchanged."},
		{CodeOffsetOutOfRange, http.StatusBadRequest, "The fetch offset is below the partition's log start offset or above its high watermark."},
		{CodeUnauthenticated, http.StatusUnauthorized, "Authentication is on and the request has no bearer token, or its token is malformed, unknown or revoked. The answer carries WWW-Authenticate: Bearer."},
		{CodeForbidden, http.StatusForbidden, "The bearer token is valid but lacks the scope the request needs; the message names it."},
		{CodeSessionInvalid, http.StatusForbidden, "A heartbeat, leave or offset commit presented a session key (Mamba-Session-Key) that is not the member's; nothing changed."},
		{CodeNotFound, http.StatusNotFound, "No route has this path (or, for /v1/auth/tokens, authentication is off on the node)."},
		{CodeTokenNotFound, http.StatusNotFound, "No API token has this id (it was revoked, or never existed)."},
		{CodeTopicNotFound, http.StatusNotFound, "The topic does not exist."},
		{CodePartitionNotFound, http.StatusNotFound, "The topic has no such partition (fetch)."},
		{CodeGroupNotFound, http.StatusNotFound, "The consumer group never had a member, or was deleted (by the API or by expiry)."},
		{CodeMemberNotFound, http.StatusNotFound, "The group member left, or missed heartbeats for its session timeout; join again."},
		{CodeMethodNotAllowed, http.StatusMethodNotAllowed, "The path exists but not with this method; the Allow header lists those it has."},
		{CodeRequestTimeout, http.StatusRequestTimeout, "The request body stopped arriving: no byte came for the node's body read timeout. Retry."},
		{CodeTopicExists, http.StatusConflict, "A topic with this name already exists."},
		{CodeLeaseLost, http.StatusConflict, "An offset commit named a lease that is no longer the partition's current lease; nothing was committed."},
		{CodeGroupNotEmpty, http.StatusConflict, "The consumer group has live members (their sessions have not expired); it is deleted, or its offsets reset without force, only once they left."},
		{CodePayloadTooLarge, http.StatusRequestEntityTooLarge, "The request body, a record or the record count is over a limit."},
		{CodeUnsupportedMediaType, http.StatusUnsupportedMediaType, "The produce body is neither application/json nor application/vnd.mamba.v1+binary."},
		{CodeOverloaded, http.StatusTooManyRequests, "The node's buffer or its memory budget is full; retry after the Retry-After header's seconds."},
		{CodeQuotaExceeded, http.StatusTooManyRequests, "The request's token is over one of its quotas on this node; the error's quota field names which. Other tokens are not affected; retry after the Retry-After header's seconds."},
		{CodeInternal, http.StatusInternalServerError, "An unexpected server error; it is logged on the node."},
		{CodeUnavailable, http.StatusServiceUnavailable, "The bucket or Redis could not be reached in time, or the node is shutting down; retry, with the same Idempotency-Key for a produce."},
	}
}
