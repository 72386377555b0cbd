package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/wire"
	"github.com/mambamq/mamba/metadata"
)

// TestAPIStatusesAndCodes covers every status and error code of the
// contract, on every route that can answer it.
func TestAPIStatusesAndCodes(t *testing.T) {
	overloaded := &ingest.OverloadedError{RetryAfter: 1500 * time.Millisecond}
	for _, tc := range []struct {
		name   string
		method string
		target string
		body   string
		header []string
		errs   map[string]error
		status int
		code   string
		// inMessage must appear in the error message.
		inMessage string
	}{
		// Topics.
		{name: "create", method: "POST", target: "/v1/topics", body: `{"name":"orders","partitions":8}`, status: 201},
		{name: "create with retention", method: "POST", target: "/v1/topics", body: `{"name":"a.b_c-9","partitions":1,"retention_ms":60000}`, status: 201},
		{name: "join", method: "POST", target: "/v1/groups/g/members", body: `{"topics":["orders"],"session_timeout_ms":10000}`, status: 201},
		{name: "join bad group", method: "POST", target: "/v1/groups/b%20d/members", body: `{"topics":["orders"]}`, status: 400, code: "invalid_request"},
		{name: "create topic .", method: "POST", target: "/v1/topics", body: `{"name":".","partitions":1}`, status: 400, code: "invalid_request", inMessage: `"."`},
		{name: "create topic ..", method: "POST", target: "/v1/topics", body: `{"name":"..","partitions":1}`, status: 400, code: "invalid_request", inMessage: `".."`},
		{name: "join topic with a brace", method: "POST", target: "/v1/groups/g/members", body: `{"topics":["orders","a}{b"]}`, status: 400, code: "invalid_request", inMessage: "topics[1]"},
		{name: "join topic ..", method: "POST", target: "/v1/groups/g/members", body: `{"topics":[".."]}`, status: 400, code: "invalid_request", inMessage: "topics[0]"},
		{name: "join unknown topic", method: "POST", target: "/v1/groups/g/members", body: `{"topics":["nope"]}`, errs: map[string]error{"JoinGroup": fmt.Errorf("topic nope: %w", ingest.ErrTopicNotFound)}, status: 404, code: "topic_not_found"},
		{name: "join negative session", method: "POST", target: "/v1/groups/g/members", body: `{"topics":["orders"],"session_timeout_ms":-1}`, status: 400, code: "invalid_request"},
		{name: "heartbeat", method: "POST", target: "/v1/groups/g/members/m1/heartbeat", status: 200},
		{name: "heartbeat expired", method: "POST", target: "/v1/groups/g/members/m1/heartbeat", errs: map[string]error{"Heartbeat": fmt.Errorf("member m1: %w", ingest.ErrMemberNotFound)}, status: 404, code: "member_not_found"},
		{name: "leave", method: "DELETE", target: "/v1/groups/g/members/m1", status: 204},
		{name: "leave unknown", method: "DELETE", target: "/v1/groups/g/members/m9", errs: map[string]error{"LeaveGroup": ingest.ErrMemberNotFound}, status: 404, code: "member_not_found"},
		{name: "commit", method: "POST", target: "/v1/groups/g/offsets", body: `{"offsets":[{"topic":"orders","partition":0,"offset":5,"lease":1}]}`, status: 200},
		{name: "commit lease lost", method: "POST", target: "/v1/groups/g/offsets", body: `{"offsets":[{"topic":"orders","partition":0,"offset":5,"lease":1}]}`, errs: map[string]error{"CommitOffsets": fmt.Errorf("orders/0: %w", ingest.ErrLeaseLost)}, status: 409, code: "lease_lost"},
		{name: "commit malformed", method: "POST", target: "/v1/groups/g/offsets", body: `{"offsets":[{"topic":"orders","partition":"x"}]}`, status: 400, code: "invalid_request"},
		{name: "describe group", method: "GET", target: "/v1/groups/g", status: 200},
		{name: "describe unknown group", method: "GET", target: "/v1/groups/g", errs: map[string]error{"DescribeGroup": ingest.ErrGroupNotFound}, status: 404, code: "group_not_found"},
		{name: "list groups", method: "GET", target: "/v1/groups", status: 200},
		{name: "join offset_reset latest", method: "POST", target: "/v1/groups/g/members", body: `{"topics":["orders"],"offset_reset":"latest"}`, status: 201},
		{name: "join bad offset_reset", method: "POST", target: "/v1/groups/g/members", body: `{"topics":["orders"],"offset_reset":"newest"}`, status: 400, code: "invalid_request", inMessage: "offset_reset"},
		{name: "delete group", method: "DELETE", target: "/v1/groups/g", status: 204},
		{name: "delete group with members", method: "DELETE", target: "/v1/groups/g", errs: map[string]error{"DeleteGroup": fmt.Errorf("group g: %w", ingest.ErrGroupNotEmpty)}, status: 409, code: "group_not_empty"},
		{name: "delete unknown group", method: "DELETE", target: "/v1/groups/g", errs: map[string]error{"DeleteGroup": ingest.ErrGroupNotFound}, status: 404, code: "group_not_found"},
		{name: "delete bad group name", method: "DELETE", target: "/v1/groups/b%20d", status: 400, code: "invalid_request", inMessage: "group name"},
		{name: "delete long group name", method: "DELETE", target: "/v1/groups/" + strings.Repeat("g", 250), status: 400, code: "invalid_request", inMessage: "group name"},
		{name: "create existing", method: "POST", target: "/v1/topics", body: `{"name":"orders","partitions":8}`, errs: map[string]error{"CreateTopic": fmt.Errorf("create orders: %w", ingest.ErrTopicExists)}, status: 409, code: "topic_exists"},
		{name: "create bad name", method: "POST", target: "/v1/topics", body: `{"name":"a/b","partitions":8}`, status: 400, code: "invalid_request", inMessage: "name"},
		{name: "create empty name", method: "POST", target: "/v1/topics", body: `{"partitions":8}`, status: 400, code: "invalid_request", inMessage: "name"},
		{name: "create long name", method: "POST", target: "/v1/topics", body: `{"name":"` + strings.Repeat("a", 250) + `","partitions":8}`, status: 400, code: "invalid_request", inMessage: "name"},
		{name: "create 249-byte name", method: "POST", target: "/v1/topics", body: `{"name":"` + strings.Repeat("a", 249) + `","partitions":8}`, status: 201},
		{name: "create zero partitions", method: "POST", target: "/v1/topics", body: `{"name":"orders"}`, status: 400, code: "invalid_request", inMessage: "partitions"},
		{name: "create too many partitions", method: "POST", target: "/v1/topics", body: `{"name":"orders","partitions":10001}`, status: 400, code: "invalid_request", inMessage: "partitions"},
		{name: "create 10000 partitions", method: "POST", target: "/v1/topics", body: `{"name":"orders","partitions":10000}`, status: 201},
		{name: "create fractional partitions", method: "POST", target: "/v1/topics", body: `{"name":"orders","partitions":1.5}`, status: 400, code: "invalid_request", inMessage: "partitions"},
		{name: "create negative retention", method: "POST", target: "/v1/topics", body: `{"name":"orders","partitions":1,"retention_ms":-1}`, status: 400, code: "invalid_request", inMessage: "retention_ms"},
		{name: "create unknown field", method: "POST", target: "/v1/topics", body: `{"name":"orders","partitions":1,"replicas":3}`, status: 400, code: "invalid_request", inMessage: "replicas"},
		{name: "create malformed", method: "POST", target: "/v1/topics", body: `{"name":`, status: 400, code: "invalid_request"},
		{name: "create trailing data", method: "POST", target: "/v1/topics", body: `{"name":"orders","partitions":1} {}`, status: 400, code: "invalid_request"},
		{name: "create array body", method: "POST", target: "/v1/topics", body: `[1]`, status: 400, code: "invalid_request", inMessage: "want an object"},
		{name: "create empty body", method: "POST", target: "/v1/topics", status: 400, code: "invalid_request", inMessage: "empty"},
		{name: "create unavailable", method: "POST", target: "/v1/topics", body: `{"name":"orders","partitions":8}`, errs: map[string]error{"CreateTopic": fmt.Errorf("create: %w", metadata.ErrUnavailable)}, status: 503, code: "unavailable"},
		{name: "list", method: "GET", target: "/v1/topics", status: 200},
		{name: "list unavailable", method: "GET", target: "/v1/topics", errs: map[string]error{"ListTopics": ingest.ErrUnavailable}, status: 503, code: "unavailable"},
		{name: "describe", method: "GET", target: "/v1/topics/orders", status: 200},
		{name: "describe unknown", method: "GET", target: "/v1/topics/nope", errs: map[string]error{"DescribeTopic": fmt.Errorf("describe nope: %w", ingest.ErrTopicNotFound)}, status: 404, code: "topic_not_found"},
		{name: "describe invalid name", method: "GET", target: "/v1/topics/a%20b", status: 404, code: "topic_not_found"},
		{name: "delete", method: "DELETE", target: "/v1/topics/orders", status: 204},
		{name: "delete unknown", method: "DELETE", target: "/v1/topics/nope", errs: map[string]error{"DeleteTopic": ingest.ErrTopicNotFound}, status: 404, code: "topic_not_found"},

		// Produce.
		{name: "produce", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, header: jsonHeader(), status: 200},
		{name: "produce charset", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, header: []string{"Content-Type", "application/json; charset=utf-8"}, status: 200},
		{name: "produce durable", method: "POST", target: "/v1/topics/orders/records?ack=durable", body: `{"records":[{"value":"v"}]}`, header: jsonHeader(), status: 200},
		{name: "produce buffered", method: "POST", target: "/v1/topics/orders/records?ack=buffered", body: `{"records":[{"value":"v"}]}`, header: jsonHeader(), status: 202},
		{name: "produce bad ack", method: "POST", target: "/v1/topics/orders/records?ack=all", body: `{"records":[{"value":"v"}]}`, header: jsonHeader(), status: 400, code: "invalid_request", inMessage: "ack"},
		{name: "produce empty ack", method: "POST", target: "/v1/topics/orders/records?ack=", body: `{"records":[{"value":"v"}]}`, header: jsonHeader(), status: 400, code: "invalid_request", inMessage: "ack"},
		{name: "produce unknown topic", method: "POST", target: "/v1/topics/nope/records", body: `{"records":[{"value":"v"}]}`, header: jsonHeader(), errs: map[string]error{"Produce": fmt.Errorf("produce: %w", ingest.ErrTopicNotFound)}, status: 404, code: "topic_not_found"},
		{name: "produce malformed", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":}]}`, header: jsonHeader(), status: 400, code: "invalid_request"},
		{name: "produce wrong type", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":5}]}`, header: jsonHeader(), status: 400, code: "invalid_request", inMessage: "records[0].value"},
		{name: "produce unknown field", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"valu":"v"}]}`, header: jsonHeader(), status: 400, code: "invalid_request", inMessage: "valu"},
		{name: "produce no records", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[]}`, header: jsonHeader(), status: 400, code: "invalid_request", inMessage: "records"},
		{name: "produce records absent", method: "POST", target: "/v1/topics/orders/records", body: `{}`, header: jsonHeader(), status: 400, code: "invalid_request", inMessage: "records"},
		{name: "produce bad base64 value", method: "POST", target: "/v1/topics/orders/records?format=base64", body: `{"records":[{"value":"dg=="},{"value":"!!"}]}`, header: jsonHeader(), status: 400, code: "invalid_request", inMessage: "records[1].value"},
		{name: "produce bad base64 key", method: "POST", target: "/v1/topics/orders/records?format=base64", body: `{"records":[{"key":"a","value":""}]}`, header: jsonHeader(), status: 400, code: "invalid_request", inMessage: "records[0].key"},
		{name: "produce bad base64 header", method: "POST", target: "/v1/topics/orders/records?format=base64", body: `{"records":[{"value":"","headers":{"h":"%"}}]}`, header: jsonHeader(), status: 400, code: "invalid_request", inMessage: "records[0].headers.h"},
		{name: "produce bad format", method: "POST", target: "/v1/topics/orders/records?format=hex", body: `{"records":[{"value":"v"}]}`, header: jsonHeader(), status: 400, code: "invalid_request", inMessage: "format"},
		{name: "produce partition out of range", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v","partition":8}]}`, header: jsonHeader(), errs: map[string]error{"Produce": fmt.Errorf("record 0: partition 8: %w", ingest.ErrPartitionNotFound)}, status: 400, code: "invalid_request", inMessage: "partition 8"},
		{name: "produce partition -1", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v","partition":-1}]}`, header: jsonHeader(), status: 400, code: "invalid_request", inMessage: "records[0].partition"},
		{name: "produce partition over int32", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v","partition":2147483648}]}`, header: jsonHeader(), status: 400, code: "invalid_request", inMessage: "records[0].partition"},
		{name: "produce too large (Content-Length)", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"` + strings.Repeat("x", 2000) + `"}]}`, header: jsonHeader(), status: 413, code: "payload_too_large"},
		{name: "produce record too large", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, header: jsonHeader(), errs: map[string]error{"Produce": fmt.Errorf("record 0 is 2 MB: %w", ingest.ErrTooLarge)}, status: 413, code: "payload_too_large"},
		{name: "produce text/plain", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, header: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported_media_type"},
		{name: "produce no content type", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, status: 415, code: "unsupported_media_type"},
		{name: "produce overloaded", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, header: jsonHeader(), errs: map[string]error{"Produce": overloaded}, status: 429, code: "overloaded"},
		{name: "produce unavailable", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, header: jsonHeader(), errs: map[string]error{"Produce": fmt.Errorf("upload chunk chunks/secret-key/0001: %w", ingest.ErrUnavailable)}, status: 503, code: "unavailable"},
		{name: "produce shutting down", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, header: jsonHeader(), errs: map[string]error{"Produce": ingest.ErrShuttingDown}, status: 503, code: "unavailable"},
		{name: "produce invalid per node", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v","headers":{"":"x"}}]}`, header: jsonHeader(), errs: map[string]error{"Produce": invalidf("record 0: empty header name")}, status: 400, code: "invalid_request", inMessage: "empty header name"},
		{name: "produce idempotency key", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, header: append(jsonHeader(), "Idempotency-Key", "order-42:attempt~1"), status: 200},
		{name: "produce idempotency key 255", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, header: append(jsonHeader(), "Idempotency-Key", strings.Repeat("k", 255)), status: 200},
		{name: "produce idempotency key empty", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, header: append(jsonHeader(), "Idempotency-Key", ""), status: 400, code: "invalid_request", inMessage: "Idempotency-Key"},
		{name: "produce idempotency key 256", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, header: append(jsonHeader(), "Idempotency-Key", strings.Repeat("k", 256)), status: 400, code: "invalid_request", inMessage: "Idempotency-Key"},
		{name: "produce idempotency key space", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, header: append(jsonHeader(), "Idempotency-Key", "a b"), status: 400, code: "invalid_request", inMessage: "Idempotency-Key"},
		{name: "produce idempotency key non-ASCII", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, header: append(jsonHeader(), "Idempotency-Key", "clé"), status: 400, code: "invalid_request", inMessage: "Idempotency-Key"},
		{name: "produce idempotency key twice", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, header: append(jsonHeader(), "Idempotency-Key", "a", "Idempotency-Key", "b"), status: 400, code: "invalid_request", inMessage: "Idempotency-Key"},
		{name: "produce malformed binary", method: "POST", target: "/v1/topics/orders/records", body: "M\x01P\x05", header: []string{"Content-Type", wire.ContentType}, status: 400, code: "invalid_request"},
		{name: "produce binary partition -2", method: "POST", target: "/v1/topics/orders/records", body: "M\x01P\x01\x03\x00\x00\x00\x00", header: []string{"Content-Type", wire.ContentType}, status: 400, code: "invalid_request", inMessage: "partition -2"},

		// Fetch.
		{name: "fetch", method: "GET", target: "/v1/topics/orders/partitions/3/records?offset=0", status: 200},
		{name: "fetch all parameters", method: "GET", target: "/v1/topics/orders/partitions/3/records?offset=5&max_records=10&max_bytes=100&wait_ms=250&format=base64", status: 200},
		{name: "fetch no offset", method: "GET", target: "/v1/topics/orders/partitions/3/records", status: 400, code: "invalid_request", inMessage: "offset"},
		{name: "fetch bad offset", method: "GET", target: "/v1/topics/orders/partitions/3/records?offset=abc", status: 400, code: "invalid_request", inMessage: "offset"},
		{name: "fetch negative offset", method: "GET", target: "/v1/topics/orders/partitions/3/records?offset=-1", status: 400, code: "invalid_request", inMessage: "offset"},
		{name: "fetch bad max_records", method: "GET", target: "/v1/topics/orders/partitions/3/records?offset=0&max_records=0", status: 400, code: "invalid_request", inMessage: "max_records"},
		{name: "fetch bad max_bytes", method: "GET", target: "/v1/topics/orders/partitions/3/records?offset=0&max_bytes=1e6", status: 400, code: "invalid_request", inMessage: "max_bytes"},
		{name: "fetch bad wait_ms", method: "GET", target: "/v1/topics/orders/partitions/3/records?offset=0&wait_ms=-5", status: 400, code: "invalid_request", inMessage: "wait_ms"},
		{name: "fetch bad format", method: "GET", target: "/v1/topics/orders/partitions/3/records?offset=0&format=raw", status: 400, code: "invalid_request", inMessage: "format"},
		{name: "fetch malformed query", method: "GET", target: "/v1/topics/orders/partitions/3/records?offset=0&x=%zz", status: 400, code: "invalid_request", inMessage: "query"},
		{name: "fetch out of range", method: "GET", target: "/v1/topics/orders/partitions/3/records?offset=99", errs: map[string]error{"Fetch": fmt.Errorf("lookup: %w", ingest.ErrOffsetOutOfRange)}, status: 400, code: "offset_out_of_range"},
		{name: "fetch partition not a number", method: "GET", target: "/v1/topics/orders/partitions/x/records?offset=0", status: 404, code: "partition_not_found"},
		{name: "fetch negative partition", method: "GET", target: "/v1/topics/orders/partitions/-1/records?offset=0", status: 404, code: "partition_not_found"},
		{name: "fetch unknown partition", method: "GET", target: "/v1/topics/orders/partitions/8/records?offset=0", errs: map[string]error{"Fetch": fmt.Errorf("lookup orders/8: %w", ingest.ErrPartitionNotFound)}, status: 404, code: "partition_not_found"},
		{name: "fetch unknown topic", method: "GET", target: "/v1/topics/nope/partitions/0/records?offset=0", errs: map[string]error{"Fetch": fmt.Errorf("lookup nope: %w", ingest.ErrTopicNotFound)}, status: 404, code: "topic_not_found"},
		{name: "fetch unavailable", method: "GET", target: "/v1/topics/orders/partitions/0/records?offset=0", errs: map[string]error{"Fetch": fmt.Errorf("get chunk: %w", ingest.ErrUnavailable)}, status: 503, code: "unavailable"},
		{name: "fetch deadline", method: "GET", target: "/v1/topics/orders/partitions/0/records?offset=0", errs: map[string]error{"Fetch": fmt.Errorf("get chunk: %w", context.DeadlineExceeded)}, status: 503, code: "unavailable"},

		// Health, routing and the rest.
		{name: "healthz", method: "GET", target: "/healthz", status: 200},
		{name: "readyz", method: "GET", target: "/readyz", status: 200},
		{name: "readyz not ready", method: "GET", target: "/readyz", errs: map[string]error{"Ready": errors.New("redis: connection refused")}, status: 503, code: "unavailable", inMessage: "retry"},
		{name: "metrics", method: "GET", target: "/metrics", status: 200},
		{name: "unknown route", method: "GET", target: "/v2/topics", status: 404, code: "not_found"},
		{name: "unknown subpath", method: "GET", target: "/v1/topics/orders/partitions", status: 404, code: "not_found"},
		{name: "wrong method", method: "PUT", target: "/v1/topics", status: 405, code: "method_not_allowed"},
		{name: "wrong method on records", method: "GET", target: "/v1/topics/orders/records", status: 405, code: "method_not_allowed"},
		{name: "internal", method: "GET", target: "/v1/topics", errs: map[string]error{"ListTopics": errors.New("scan topics: secret-token-123 rejected")}, status: 500, code: "internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := newAPITest(t, Options{MaxRequestBytes: 1024})
			maps.Copy(at.svc.errs, tc.errs)
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			rec := at.do(tc.method, tc.target, body, tc.header...)
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			}
			if tc.code == "" {
				if tc.target != "/metrics" {
					checkSuccessBody(t, rec)
				}
				return
			}
			e := errorOf(t, rec)
			if e.Code != tc.code {
				t.Errorf("code = %q, want %q (message %q)", e.Code, tc.code, e.Message)
			}
			if !strings.Contains(e.Message, tc.inMessage) {
				t.Errorf("message %q does not mention %q", e.Message, tc.inMessage)
			}
			if id := rec.Header().Get("X-Request-Id"); len(id) != 16 || e.RequestID != id {
				t.Errorf("request id: header %q, body %q; want the same 16 hex digits", id, e.RequestID)
			}
			switch tc.code {
			case "unavailable":
				// The cause (a Redis error, an object key) is logged with
				// the request id, never sent.
				for _, secret := range []string{"redis", "secret-key", "chunks/"} {
					if strings.Contains(e.Message, secret) {
						t.Errorf("503 message leaks %q: %q", secret, e.Message)
					}
				}
				if !strings.Contains(at.logs.String(), e.RequestID) {
					t.Errorf("503 not logged with its request id %s; log:\n%s", e.RequestID, at.logs)
				}
			case "method_not_allowed":
				if rec.Header().Get("Allow") == "" {
					t.Error("405 without an Allow header")
				}
			case "overloaded":
				if got := rec.Header().Get("Retry-After"); got != "2" {
					t.Errorf("Retry-After = %q, want 2", got)
				}
			case "internal":
				if strings.Contains(e.Message, "secret") {
					t.Errorf("500 message leaks the cause: %q", e.Message)
				}
				if !strings.Contains(at.logs.String(), "secret-token-123") || !strings.Contains(at.logs.String(), e.RequestID) {
					t.Errorf("500 cause not logged with request id %s; log:\n%s", e.RequestID, at.logs)
				}
			}
		})
	}
}

// checkSuccessBody checks that a 2xx answer is JSON (or empty for 204).
func checkSuccessBody(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code == http.StatusNoContent {
		if rec.Body.Len() != 0 {
			t.Errorf("204 with a body: %q", rec.Body)
		}
		return
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Errorf("body is not JSON: %q", rec.Body)
	}
}

// TestAPICodesMatchErrorTable checks that errorTable gives only codes of
// wire.Codes, each with its status, and every one of them but internal
// (the answer to an error no row matches).
func TestAPICodesMatchErrorTable(t *testing.T) {
	statusOf := map[string]int{}
	for _, c := range wire.Codes() {
		if _, dup := statusOf[c.Code]; dup {
			t.Errorf("code %q listed twice", c.Code)
		}
		statusOf[c.Code] = c.Status
		if c.Meaning == "" {
			t.Errorf("code %q has no meaning", c.Code)
		}
	}
	used := map[string]bool{wire.CodeInternal: true}
	for _, row := range errorTable {
		status, ok := statusOf[row.code]
		if !ok {
			t.Errorf("errorTable code %q is not in wire.Codes", row.code)
		}
		if got, code := classify(row.err); code != row.code || got != status {
			t.Errorf("%v answers %d %s, want %d %s", row.err, got, code, status, row.code)
		}
		used[row.code] = true
	}
	for code := range statusOf {
		if !used[code] {
			t.Errorf("wire.Codes lists %q, which errorTable never gives", code)
		}
	}
	if status, code := classify(errors.New("unexpected")); status != http.StatusInternalServerError || code != wire.CodeInternal {
		t.Errorf("an unknown error answers %d %s, want 500 internal", status, code)
	}
}

func TestAPINotFoundAndMethodNotAllowed(t *testing.T) {
	at := newAPITest(t, Options{})
	rec := at.do("PUT", "/v1/topics/orders", nil)
	if rec.Code != 405 {
		t.Fatalf("PUT topic: %d", rec.Code)
	}
	if allow := rec.Header().Get("Allow"); allow != "DELETE, GET, HEAD, PATCH" {
		t.Errorf("Allow = %q, want DELETE, GET, HEAD, PATCH", allow)
	}
	if e := errorOf(t, rec); e.Code != "method_not_allowed" || !strings.Contains(e.Message, "PUT") {
		t.Errorf("405 body %+v", e)
	}
	rec = at.do("DELETE", "/nope", nil)
	if e := errorOf(t, rec); rec.Code != 404 || e.Code != "not_found" || !strings.Contains(e.Message, "/nope") {
		t.Errorf("404: %d %+v", rec.Code, e)
	}
	// An unclean path is still redirected, as ServeMux does.
	rec = at.do("GET", "/v1//topics", nil)
	if rec.Code != http.StatusTemporaryRedirect || rec.Header().Get("Location") != "/v1/topics" {
		t.Errorf("unclean path: %d Location %q", rec.Code, rec.Header().Get("Location"))
	}
}

func TestAPIPanicIsInternal(t *testing.T) {
	at := newAPITest(t, Options{})
	at.svc.produceFn = func([]ingest.ProduceRecord, ingest.ProduceOptions) ([]ingest.RecordResult, error) { panic("boom") }
	rec := at.do("POST", "/v1/topics/orders/records", strings.NewReader(`{"records":[{"value":"v"}]}`), jsonHeader()...)
	if rec.Code != 500 || errorOf(t, rec).Code != "internal" {
		t.Fatalf("panic answered %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(at.logs.String(), "boom") {
		t.Errorf("panic not logged:\n%s", at.logs)
	}
}

func TestAPIMetrics(t *testing.T) {
	at := newAPITest(t, Options{})
	at.svc.errs["Produce"] = &ingest.OverloadedError{RetryAfter: time.Second}
	body := `{"records":[{"value":"v"}]}`
	at.do("POST", "/v1/topics/orders/records", strings.NewReader(body), jsonHeader()...)
	at.do("POST", "/v1/topics/orders/records", strings.NewReader(body), jsonHeader()...)
	at.do("GET", "/v1/topics", nil)
	at.do("GET", "/v1/nothing", nil)
	at.do("BREW", "/v1/topics", nil)

	families, err := at.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counter := func(name string, labels map[string]string) float64 {
		t.Helper()
		for _, f := range families {
			if f.GetName() != name {
				continue
			}
			for _, m := range f.GetMetric() {
				if matchLabels(m, labels) {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
		t.Errorf("no %s with labels %v", name, labels)
		return 0
	}
	records := "/v1/topics/{topic}/records"
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"mamba_http_requests_total", map[string]string{"route": records, "method": "POST", "status": "429", "code": "overloaded"}, 2},
		{"mamba_http_requests_total", map[string]string{"route": "/v1/topics", "method": "GET", "status": "200", "code": ""}, 1},
		{"mamba_http_requests_total", map[string]string{"route": "unmatched", "method": "GET", "status": "404", "code": "not_found"}, 1},
		{"mamba_http_requests_total", map[string]string{"route": "unmatched", "method": "other", "status": "405", "code": "method_not_allowed"}, 1},
		{"mamba_http_request_duration_seconds", map[string]string{"route": records}, 2},
		{"mamba_http_request_bytes_total", map[string]string{"route": records}, float64(2 * len(body))},
	} {
		if got := counter(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := counter("mamba_http_response_bytes_total", map[string]string{"route": "/v1/topics"}); got != float64(len(`{"topics":[]}`+"\n")) {
		t.Errorf("response bytes of GET /v1/topics = %v", got)
	}

	// /metrics serves the registry in the text format.
	rec := at.do("GET", "/metrics", nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `mamba_http_requests_total{code="overloaded",method="POST",route="/v1/topics/{topic}/records",status="429"} 2`) {
		t.Errorf("/metrics: %d\n%s", rec.Code, rec.Body)
	}

	// A second handler on the same registry shares the metrics.
	NewHandler(at.svc, Options{}, at.reg, at.reg, nil).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/topics", nil))
	families, _ = at.reg.Gather()
	if got := counter("mamba_http_requests_total", map[string]string{"route": "/v1/topics", "method": "GET", "status": "200", "code": ""}); got != 2 {
		t.Errorf("after a second handler: %v requests, want 2", got)
	}
}

func matchLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestAPINilRegistryAndGatherer(t *testing.T) {
	h := NewHandler(&scriptedService{}, Options{}, nil, nil, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 || errorOf(t, rec).Code != "not_found" {
		t.Errorf("/metrics without a gatherer: %d %s", rec.Code, rec.Body)
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
	err := Options{MaxRequestBytes: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "max request bytes") {
		t.Errorf("Validate = %v, want the field named", err)
	}
	if o := (Options{}).withDefaults(); o.MaxRequestBytes != 16<<20 {
		t.Errorf("defaults %+v", o)
	}
}
