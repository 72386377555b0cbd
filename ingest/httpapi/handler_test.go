package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/wire"
	"github.com/mambamq/mamba/metadata"
)

// scriptedService is a Service that records its calls and answers as
// scripted: errs[method] is returned when set, otherwise a plausible
// answer. It validates its arguments with the ingest.Validate functions,
// as the Node does, since the handler leaves validation to the service.
// The real Node has its own integration tests.
type scriptedService struct {
	mu    sync.Mutex
	calls []string
	errs  map[string]error

	created  []ingest.TopicConfig
	produced []producedCall
	fetched  []ingest.FetchRequest

	topics   []ingest.TopicConfig
	describe ingest.TopicDescription
	fetchRes ingest.FetchResult
	// fetchFn, when set, answers Fetch instead of fetchRes.
	fetchFn func(ctx context.Context, req ingest.FetchRequest) (ingest.FetchResult, error)
	// produceFn, when set, answers Produce.
	produceFn func(records []ingest.ProduceRecord, opts ingest.ProduceOptions) ([]ingest.RecordResult, error)
	// maxWait is MaxWait's answer; ingest.DefaultMaxWait when zero.
	maxWait time.Duration
	// admitted are the body sizes AdmitProduce was asked about; releases
	// counts the Release calls of produce requests.
	admitted []int64
	releases int
}

type producedCall struct {
	topic   string
	records []ingest.ProduceRecord
	opts    ingest.ProduceOptions
}

func (s *scriptedService) ListGroups(ctx context.Context) ([]string, error) {
	if err := s.record("ListGroups"); err != nil {
		return nil, err
	}
	return []string{"g"}, nil
}

func (s *scriptedService) DescribeGroup(ctx context.Context, group string) (ingest.GroupDescription, error) {
	if err := s.record("DescribeGroup"); err != nil {
		return ingest.GroupDescription{}, err
	}
	if err := ingest.ValidateGroupName(group); err != nil {
		return ingest.GroupDescription{}, err
	}
	return ingest.GroupDescription{Group: group}, nil
}

func (s *scriptedService) JoinGroup(ctx context.Context, group string, topics []string, session time.Duration) (string, []metadata.Assignment, error) {
	if err := s.record("JoinGroup"); err != nil {
		return "", nil, err
	}
	if err := ingest.ValidateJoinGroup(group, topics, session); err != nil {
		return "", nil, err
	}
	return "m1", []metadata.Assignment{{Topic: topics[0], Partition: 0, Lease: 1, CommittedOffset: -1}}, nil
}

func (s *scriptedService) Heartbeat(ctx context.Context, group, member string) ([]metadata.Assignment, error) {
	if err := s.record("Heartbeat"); err != nil {
		return nil, err
	}
	if err := ingest.ValidateGroupName(group); err != nil {
		return nil, err
	}
	return nil, nil
}

func (s *scriptedService) LeaveGroup(ctx context.Context, group, member string) error {
	if err := s.record("LeaveGroup"); err != nil {
		return err
	}
	return ingest.ValidateGroupName(group)
}

func (s *scriptedService) CommitOffsets(ctx context.Context, group string, offsets []metadata.OffsetCommit) error {
	if err := s.record("CommitOffsets"); err != nil {
		return err
	}
	return ingest.ValidateGroupName(group)
}

func (s *scriptedService) record(method string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, method)
	return s.errs[method]
}

func (s *scriptedService) CreateTopic(ctx context.Context, cfg ingest.TopicConfig) (ingest.TopicConfig, error) {
	if err := s.record("CreateTopic"); err != nil {
		return ingest.TopicConfig{}, err
	}
	if err := ingest.ValidateTopicConfig(cfg); err != nil {
		return ingest.TopicConfig{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.created = append(s.created, cfg)
	return cfg, nil
}

func (s *scriptedService) ListTopics(ctx context.Context) ([]ingest.TopicConfig, error) {
	if err := s.record("ListTopics"); err != nil {
		return nil, err
	}
	return s.topics, nil
}

func (s *scriptedService) DescribeTopic(ctx context.Context, name string) (ingest.TopicDescription, error) {
	if err := s.record("DescribeTopic"); err != nil {
		return ingest.TopicDescription{}, err
	}
	return s.describe, nil
}

func (s *scriptedService) DeleteTopic(ctx context.Context, name string) error {
	return s.record("DeleteTopic")
}

func (s *scriptedService) AdmitProduce(bodyBytes int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admitted = append(s.admitted, bodyBytes)
	return s.errs["AdmitProduce"]
}

// Submit validates as the node does, with the same functions, and calls
// the request's Release exactly once, as the Service contract asks.
func (s *scriptedService) Submit(ctx context.Context, req ingest.ProduceRequest) ([]ingest.RecordResult, error) {
	if req.Release != nil {
		defer func() {
			s.mu.Lock()
			s.releases++
			s.mu.Unlock()
			req.Release()
		}()
	}
	if err := s.record("Produce"); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	records, opts := req.Records, req.Options
	s.mu.Lock()
	s.produced = append(s.produced, producedCall{req.Topic, records, opts})
	s.mu.Unlock()
	if s.produceFn != nil {
		return s.produceFn(records, opts)
	}
	out := make([]ingest.RecordResult, len(records))
	for i, r := range records {
		p := max(r.Partition, 0)
		off := int64(100 + i)
		if opts.Ack == ingest.AckBuffered {
			off = -1
		}
		out[i] = ingest.RecordResult{Partition: p, Offset: off}
	}
	return out, nil
}

func (s *scriptedService) MaxWait() time.Duration {
	if s.maxWait == 0 {
		return ingest.DefaultMaxWait
	}
	return s.maxWait
}

func (s *scriptedService) Fetch(ctx context.Context, req ingest.FetchRequest) (ingest.FetchResult, error) {
	if err := s.record("Fetch"); err != nil {
		return ingest.FetchResult{}, err
	}
	s.mu.Lock()
	s.fetched = append(s.fetched, req)
	s.mu.Unlock()
	if s.fetchFn != nil {
		return s.fetchFn(ctx, req)
	}
	return s.fetchRes, nil
}

func (s *scriptedService) Ready(ctx context.Context) error { return s.record("Ready") }

func (s *scriptedService) lastProduce(t *testing.T) producedCall {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.produced) == 0 {
		t.Fatal("Produce was not called")
	}
	return s.produced[len(s.produced)-1]
}

func (s *scriptedService) lastFetch(t *testing.T) ingest.FetchRequest {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.fetched) == 0 {
		t.Fatal("Fetch was not called")
	}
	return s.fetched[len(s.fetched)-1]
}

// apiTest is a handler over a scriptedService with its own registry and a
// captured log.
type apiTest struct {
	svc     *scriptedService
	reg     *prometheus.Registry
	logs    *bytes.Buffer
	handler http.Handler
}

func newAPITest(t *testing.T, opts Options) *apiTest {
	t.Helper()
	at := &apiTest{svc: &scriptedService{errs: map[string]error{}}, reg: prometheus.NewRegistry(), logs: new(bytes.Buffer)}
	log := slog.New(slog.NewTextHandler(at.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	at.handler = NewHandler(at.svc, opts, at.reg, at.reg, log)
	return at
}

// do sends one request; header holds name/value pairs.
func (at *apiTest) do(method, target string, body io.Reader, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	at.handler.ServeHTTP(rec, req)
	return rec
}

func jsonHeader() []string { return []string{"Content-Type", "application/json"} }

// errorOf decodes an error body, failing unless it has exactly the
// documented shape and Content-Type.
func errorOf(t *testing.T, rec *httptest.ResponseRecorder) errorDetail {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type = %q, want application/json", ct)
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	var body errorBody
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("error body %q: %v", rec.Body, err)
	}
	if body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("error body %q lacks code or message", rec.Body)
	}
	return body.Error
}

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
		{name: "produce wrong type", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":5}]}`, header: jsonHeader(), status: 400, code: "invalid_request", inMessage: "records.value"},
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
		{name: "produce unavailable", method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`, header: jsonHeader(), errs: map[string]error{"Produce": fmt.Errorf("upload chunk: %w", ingest.ErrUnavailable)}, status: 503, code: "unavailable"},
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
		{name: "readyz not ready", method: "GET", target: "/readyz", errs: map[string]error{"Ready": errors.New("redis: connection refused")}, status: 503, code: "unavailable", inMessage: "redis: connection refused"},
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
			switch tc.code {
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
				if !strings.Contains(at.logs.String(), "secret-token-123") {
					t.Errorf("500 cause not logged; log:\n%s", at.logs)
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

func TestAPITopicBodies(t *testing.T) {
	at := newAPITest(t, Options{})
	rec := at.do("POST", "/v1/topics", strings.NewReader(`{"name":"orders","partitions":8,"retention_ms":3600000}`))
	if rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	if got, want := rec.Body.String(), `{"name":"orders","partitions":8,"retention_ms":3600000}`+"\n"; got != want {
		t.Errorf("create body = %s, want %s", got, want)
	}
	if loc := rec.Header().Get("Location"); loc != "/v1/topics/orders" {
		t.Errorf("Location = %q", loc)
	}
	if want := (ingest.TopicConfig{Name: "orders", Partitions: 8, RetentionMS: 3600000}); !reflect.DeepEqual(at.svc.created, []ingest.TopicConfig{want}) {
		t.Errorf("CreateTopic got %+v, want %+v", at.svc.created, want)
	}

	rec = at.do("GET", "/v1/topics", nil)
	if got, want := rec.Body.String(), `{"topics":[]}`+"\n"; got != want {
		t.Errorf("empty list = %s, want %s", got, want)
	}
	at.svc.topics = []ingest.TopicConfig{{Name: "a", Partitions: 1}, {Name: "b", Partitions: 2, RetentionMS: 5}}
	rec = at.do("GET", "/v1/topics", nil)
	if got, want := rec.Body.String(), `{"topics":[{"name":"a","partitions":1,"retention_ms":0},{"name":"b","partitions":2,"retention_ms":5}]}`+"\n"; got != want {
		t.Errorf("list = %s, want %s", got, want)
	}

	at.svc.describe = ingest.TopicDescription{
		TopicConfig:    ingest.TopicConfig{Name: "orders", Partitions: 2},
		PartitionStats: []metadata.PartitionStats{{Partition: 0, LogStartOffset: 0, HighWatermark: 10}, {Partition: 1, LogStartOffset: 4, HighWatermark: 7}},
	}
	rec = at.do("GET", "/v1/topics/orders", nil)
	want := `{"name":"orders","partitions":2,"retention_ms":0,"partition_stats":[{"partition":0,"log_start_offset":0,"high_watermark":10},{"partition":1,"log_start_offset":4,"high_watermark":7}]}` + "\n"
	if rec.Body.String() != want {
		t.Errorf("describe = %s, want %s", rec.Body, want)
	}
}

func TestAPIProduceJSON(t *testing.T) {
	at := newAPITest(t, Options{})
	body := `{"records":[
		{"value":"plain"},
		{"key":"","value":"empty key","partition":0,"timestamp":1700000000000},
		{"key":"user-7","value":"ü","headers":{"z":"last","a":"first","m":""},"partition":3},
		{"key":null,"value":"null key","partition":null}
	]}`
	rec := at.do("POST", "/v1/topics/orders/records", strings.NewReader(body), append(jsonHeader(), "Idempotency-Key", "req-1")...)
	if rec.Code != 200 {
		t.Fatalf("produce: %d %s", rec.Code, rec.Body)
	}
	call := at.svc.lastProduce(t)
	want := []ingest.ProduceRecord{
		{Partition: ingest.AnyPartition, Value: []byte("plain")},
		{Partition: 0, Key: []byte{}, Value: []byte("empty key"), Timestamp: 1700000000000},
		{Partition: 3, Key: []byte("user-7"), Value: []byte("ü"), Headers: []chunk.Header{{Name: "a", Value: []byte("first")}, {Name: "m", Value: []byte{}}, {Name: "z", Value: []byte("last")}}},
		{Partition: ingest.AnyPartition, Value: []byte("null key")},
	}
	checkProduced(t, call.records, want)
	if call.topic != "orders" || call.opts != (ingest.ProduceOptions{IdempotencyKey: "req-1", Ack: ingest.AckDurable}) {
		t.Errorf("Produce(%q, opts %+v)", call.topic, call.opts)
	}
	if got, want := rec.Body.String(), `{"records":[{"partition":0,"offset":100},{"partition":0,"offset":101},{"partition":3,"offset":102},{"partition":0,"offset":103}]}`+"\n"; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}

	// The same with every byte string in base64, under ack=buffered.
	b64 := base64.StdEncoding.EncodeToString
	body = fmt.Sprintf(`{"records":[{"key":%q,"value":%q,"headers":{"h":%q}},{"value":""}]}`, b64([]byte{0, 0xff}), b64([]byte("v")), b64([]byte{0x80}))
	rec = at.do("POST", "/v1/topics/orders/records?format=base64&ack=buffered", strings.NewReader(body), jsonHeader()...)
	if rec.Code != 202 {
		t.Fatalf("produce base64: %d %s", rec.Code, rec.Body)
	}
	call = at.svc.lastProduce(t)
	checkProduced(t, call.records, []ingest.ProduceRecord{
		{Partition: ingest.AnyPartition, Key: []byte{0, 0xff}, Value: []byte("v"), Headers: []chunk.Header{{Name: "h", Value: []byte{0x80}}}},
		{Partition: ingest.AnyPartition},
	})
	if call.opts.Ack != ingest.AckBuffered {
		t.Errorf("ack = %v, want ingest.AckBuffered", call.opts.Ack)
	}
	if got, want := rec.Body.String(), `{"records":[{"partition":0,"offset":-1},{"partition":0,"offset":-1}]}`+"\n"; got != want {
		t.Errorf("buffered body = %s, want %s", got, want)
	}
}

// checkProduced compares records, telling nil keys from empty ones.
func checkProduced(t *testing.T, got, want []ingest.ProduceRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("Produce got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if (g.Key == nil) != (w.Key == nil) || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) ||
			g.Partition != w.Partition || g.Timestamp != w.Timestamp || !sameHeaders(g.Headers, w.Headers) {
			t.Errorf("record %d = %+v (key nil %v), want %+v (key nil %v)", i, g, g.Key == nil, w, w.Key == nil)
		}
	}
}

func sameHeaders(a, b []chunk.Header) bool {
	return slices.EqualFunc(a, b, func(x, y chunk.Header) bool { return x.Name == y.Name && bytes.Equal(x.Value, y.Value) })
}

func TestAPIProduceBinary(t *testing.T) {
	at := newAPITest(t, Options{})
	in := []wire.ProduceRecord{
		{Partition: -1, Value: []byte("no key")},
		{Partition: 2, Key: []byte{}, Value: []byte{0xff}, Timestamp: -3},
		{Partition: -1, Key: []byte("k"), Headers: []wire.Header{{Name: "b", Value: []byte("1")}, {Name: "a", Value: []byte("2")}, {Name: "b", Value: []byte("3")}}},
	}
	body := wire.AppendProduceRequest(nil, in)
	at.svc.produceFn = func(records []ingest.ProduceRecord, opts ingest.ProduceOptions) ([]ingest.RecordResult, error) {
		out := make([]ingest.RecordResult, len(records))
		for i := range records {
			out[i] = ingest.RecordResult{Partition: int32(i), Offset: int64(1000 + i)}
		}
		return out, nil
	}
	for _, accept := range []string{wire.ContentType, "application/json", "", "application/json, " + wire.ContentType + ";q=0.5", wire.ContentType + ";q=0"} {
		rec := at.do("POST", "/v1/topics/orders/records", bytes.NewReader(body), "Content-Type", wire.ContentType, "Accept", accept)
		if rec.Code != 200 {
			t.Fatalf("Accept %q: %d %s", accept, rec.Code, rec.Body)
		}
		checkProduced(t, at.svc.lastProduce(t).records, []ingest.ProduceRecord{
			{Partition: ingest.AnyPartition, Value: []byte("no key")},
			{Partition: 2, Key: []byte{}, Value: []byte{0xff}, Timestamp: -3},
			// Binary headers keep their order and repeats.
			{Partition: ingest.AnyPartition, Key: []byte("k"), Headers: []chunk.Header{{Name: "b", Value: []byte("1")}, {Name: "a", Value: []byte("2")}, {Name: "b", Value: []byte("3")}}},
		})
		want := []wire.ProduceResult{{Partition: 0, Offset: 1000}, {Partition: 1, Offset: 1001}, {Partition: 2, Offset: 1002}}
		binary := strings.HasPrefix(accept, wire.ContentType) && !strings.HasSuffix(accept, "q=0") || strings.HasSuffix(accept, "q=0.5")
		if binary {
			if ct := rec.Header().Get("Content-Type"); ct != wire.ContentType {
				t.Fatalf("Accept %q: Content-Type %q", accept, ct)
			}
			got, err := wire.DecodeProduceResponse(rec.Body.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Accept %q: results %+v, want %+v", accept, got, want)
			}
			continue
		}
		if got, want := rec.Body.String(), `{"records":[{"partition":0,"offset":1000},{"partition":1,"offset":1001},{"partition":2,"offset":1002}]}`+"\n"; got != want {
			t.Errorf("Accept %q: body %s, want %s", accept, got, want)
		}
	}
}

func TestAPIProduceResultCountMismatchIsInternal(t *testing.T) {
	at := newAPITest(t, Options{})
	at.svc.produceFn = func([]ingest.ProduceRecord, ingest.ProduceOptions) ([]ingest.RecordResult, error) { return nil, nil }
	rec := at.do("POST", "/v1/topics/orders/records", strings.NewReader(`{"records":[{"value":"v"}]}`), jsonHeader()...)
	if rec.Code != 500 || errorOf(t, rec).Code != "internal" {
		t.Fatalf("got %d %s, want 500 internal", rec.Code, rec.Body)
	}
}

func TestAPIBodyLimit(t *testing.T) {
	const limit = 100
	at := newAPITest(t, Options{MaxRequestBytes: limit})
	fits := `{"records":[{"value":"` + strings.Repeat("x", limit-len(`{"records":[{"value":""}]}`)) + `"}]}`
	over := fits[:len(fits)-4] + `x"}]}`
	for _, tc := range []struct {
		name    string
		body    string
		chunked bool
		status  int
	}{
		{"at the limit", fits, false, 200},
		{"over the limit, Content-Length", over, false, 413},
		{"at the limit, chunked", fits, true, 200},
		{"over the limit, chunked", over, true, 413},
	} {
		var body io.Reader = strings.NewReader(tc.body)
		if tc.chunked {
			body = struct{ io.Reader }{body} // hides the length
		}
		req := httptest.NewRequest("POST", "/v1/topics/orders/records", body)
		req.Header.Set("Content-Type", "application/json")
		if got := req.ContentLength; (got == -1 || got == 0) != tc.chunked {
			t.Fatalf("%s: test request has Content-Length %d", tc.name, got)
		}
		rec := httptest.NewRecorder()
		at.handler.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Fatalf("%s: status %d, want %d: %s", tc.name, rec.Code, tc.status, rec.Body)
		}
		if tc.status == 413 {
			if e := errorOf(t, rec); e.Code != "payload_too_large" || !strings.Contains(e.Message, "100") {
				t.Errorf("%s: %+v", tc.name, e)
			}
		}
	}
}

func TestAPIRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&ingest.OverloadedError{RetryAfter: 0}, "1"},
		{&ingest.OverloadedError{RetryAfter: 10 * time.Millisecond}, "1"},
		{&ingest.OverloadedError{RetryAfter: time.Second}, "1"},
		{&ingest.OverloadedError{RetryAfter: time.Second + time.Nanosecond}, "2"},
		{fmt.Errorf("accept: %w", &ingest.OverloadedError{RetryAfter: 2500 * time.Millisecond}), "3"},
		{&ingest.OverloadedError{RetryAfter: time.Minute}, "60"},
		{ingest.ErrOverloaded, "1"},
	} {
		at := newAPITest(t, Options{})
		at.svc.errs["Produce"] = tc.err
		rec := at.do("POST", "/v1/topics/orders/records", strings.NewReader(`{"records":[{"value":"v"}]}`), jsonHeader()...)
		if rec.Code != 429 || rec.Header().Get("Retry-After") != tc.want {
			t.Errorf("%v: status %d, Retry-After %q, want 429 and %q", tc.err, rec.Code, rec.Header().Get("Retry-After"), tc.want)
		}
	}
}

func TestAPIFetchJSON(t *testing.T) {
	at := newAPITest(t, Options{})
	at.svc.fetchRes = ingest.FetchResult{
		NextOffset: 13, HighWatermark: 20, LogStartOffset: 2,
		Records: []ingest.FetchedRecord{
			{Offset: 10, Record: chunk.Record{Key: []byte("k"), Value: []byte("héllo <&>"), Timestamp: 1700000000000,
				Headers: []chunk.Header{{Name: "z", Value: []byte("1")}, {Name: "a", Value: []byte("2")}, {Name: "z", Value: []byte("3")}}}},
			{Offset: 11, Record: chunk.Record{Key: nil, Value: []byte{0xff, 0x00}, Timestamp: 5}},
			{Offset: 12, Record: chunk.Record{Key: []byte{}, Value: []byte("ok"), Headers: []chunk.Header{{Name: "bin", Value: []byte{0xc3}}}}},
		},
	}
	rec := at.do("GET", "/v1/topics/orders/partitions/1/records?offset=10", nil)
	if rec.Code != 200 {
		t.Fatalf("fetch: %d %s", rec.Code, rec.Body)
	}
	want := `{"records":[` +
		`{"offset":10,"timestamp":1700000000000,"key":"k","value":"héllo <&>","headers":[{"key":"z","value":"1"},{"key":"a","value":"2"},{"key":"z","value":"3"}]},` +
		`{"offset":11,"timestamp":5,"key":null,"value":"/wA=","headers":[],"encoding":"base64"},` +
		`{"offset":12,"timestamp":0,"key":"","value":"b2s=","headers":[{"key":"bin","value":"ww=="}],"encoding":"base64"}` +
		`],"next_offset":13,"high_watermark":20,"log_start_offset":2}` + "\n"
	if rec.Body.String() != want {
		t.Errorf("body\n got %s\nwant %s", rec.Body, want)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}

	rec = at.do("GET", "/v1/topics/orders/partitions/1/records?offset=10&format=base64", nil)
	var got apiFetchResponseForTest
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for i, r := range got.Records {
		if r.Encoding != "base64" {
			t.Errorf("format=base64 record %d has encoding %q", i, r.Encoding)
		}
		v, err := base64.StdEncoding.DecodeString(r.Value)
		if err != nil || !bytes.Equal(v, at.svc.fetchRes.Records[i].Value) {
			t.Errorf("format=base64 record %d value %q does not decode to %q", i, r.Value, at.svc.fetchRes.Records[i].Value)
		}
	}
	if got.Records[1].Key != nil {
		t.Errorf("a record without a key came back with key %q", *got.Records[1].Key)
	}

	// An empty answer has an empty list, not null.
	at.svc.fetchRes = ingest.FetchResult{NextOffset: 20, HighWatermark: 20}
	rec = at.do("GET", "/v1/topics/orders/partitions/1/records?offset=20", nil)
	if want := `{"records":[],"next_offset":20,"high_watermark":20,"log_start_offset":0}` + "\n"; rec.Body.String() != want {
		t.Errorf("empty fetch = %s, want %s", rec.Body, want)
	}
}

type apiFetchResponseForTest struct {
	Records []struct {
		Offset   int64   `json:"offset"`
		Key      *string `json:"key"`
		Value    string  `json:"value"`
		Encoding string  `json:"encoding"`
	} `json:"records"`
}

func TestAPIFetchBinary(t *testing.T) {
	at := newAPITest(t, Options{})
	at.svc.fetchRes = ingest.FetchResult{
		NextOffset: 3, HighWatermark: 9, LogStartOffset: 1,
		Records: []ingest.FetchedRecord{
			{Offset: 1, Record: chunk.Record{Key: nil, Value: []byte{0xff}, Timestamp: 7}},
			{Offset: 2, Record: chunk.Record{Key: []byte{}, Headers: []chunk.Header{{Name: "h", Value: []byte("x")}, {Name: "h"}}}},
		},
	}
	rec := at.do("GET", "/v1/topics/orders/partitions/0/records?offset=1", nil, "Accept", wire.ContentType)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != wire.ContentType {
		t.Fatalf("fetch: %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	got, err := wire.DecodeFetchResponse(rec.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := wire.FetchResponse{NextOffset: 3, HighWatermark: 9, LogStartOffset: 1, Records: []wire.FetchRecord{
		{Offset: 1, Timestamp: 7, Value: []byte{0xff}},
		{Offset: 2, Key: []byte{}, Headers: []wire.Header{{Name: "h", Value: []byte("x")}, {Name: "h"}}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("binary fetch\n got %+v\nwant %+v", got, want)
	}
}

func TestAPIFetchParameters(t *testing.T) {
	at := newAPITest(t, Options{})
	at.svc.maxWait = 2 * time.Second // the node's --max-wait
	for _, tc := range []struct {
		query string
		want  ingest.FetchRequest
	}{
		{"offset=0", ingest.FetchRequest{Topic: "orders", Partition: 4, Offset: 0, MaxRecords: 1000, MaxBytes: 1 << 20, Wait: 0}},
		{"offset=42&max_records=7&max_bytes=512&wait_ms=1500", ingest.FetchRequest{Topic: "orders", Partition: 4, Offset: 42, MaxRecords: 7, MaxBytes: 512, Wait: 1500 * time.Millisecond}},
		{"offset=1&wait_ms=2000", ingest.FetchRequest{Topic: "orders", Partition: 4, Offset: 1, MaxRecords: 1000, MaxBytes: 1 << 20, Wait: 2 * time.Second}},
		{"offset=1&wait_ms=600000", ingest.FetchRequest{Topic: "orders", Partition: 4, Offset: 1, MaxRecords: 1000, MaxBytes: 1 << 20, Wait: 2 * time.Second}},
		{"offset=1&wait_ms=9223372036854775807", ingest.FetchRequest{Topic: "orders", Partition: 4, Offset: 1, MaxRecords: 1000, MaxBytes: 1 << 20, Wait: 2 * time.Second}},
	} {
		rec := at.do("GET", "/v1/topics/orders/partitions/4/records?"+tc.query, nil)
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", tc.query, rec.Code, rec.Body)
		}
		if got := at.svc.lastFetch(t); got != tc.want {
			t.Errorf("%s: Fetch(%+v), want %+v", tc.query, got, tc.want)
		}
	}
	// The default cap is the node's default, 30 s.
	at = newAPITest(t, Options{})
	at.do("GET", "/v1/topics/orders/partitions/4/records?offset=0&wait_ms=45000", nil)
	if got := at.svc.lastFetch(t).Wait; got != 30*time.Second {
		t.Errorf("default wait cap = %v, want 30s", got)
	}
}

// TestAPIFetchClientGoneCancelsLongPoll checks that the service sees the
// request's context end when the client goes away mid long-poll.
func TestAPIFetchClientGoneCancelsLongPoll(t *testing.T) {
	at := newAPITest(t, Options{})
	started := make(chan struct{})
	canceled := make(chan error, 1)
	at.svc.fetchFn = func(ctx context.Context, req ingest.FetchRequest) (ingest.FetchResult, error) {
		close(started)
		<-ctx.Done()
		canceled <- ctx.Err()
		return ingest.FetchResult{}, ctx.Err()
	}
	srv := httptest.NewServer(at.handler)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/topics/orders/partitions/0/records?offset=0&wait_ms=30000", nil)
	if err != nil {
		t.Fatal(err)
	}
	clientErr := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()
	<-started
	cancel()
	if err := <-clientErr; !errors.Is(err, context.Canceled) {
		t.Errorf("client error = %v, want context.Canceled", err)
	}
	select {
	case err := <-canceled:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("service context ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the service's context did not end after the client went away")
	}
	// The abandoned request is counted, and not logged as an error.
	srv.Close()
	if strings.Contains(at.logs.String(), "level=ERROR") || strings.Contains(at.logs.String(), "level=WARN") {
		t.Errorf("client going away was logged as a problem:\n%s", at.logs)
	}
}

func TestAPINotFoundAndMethodNotAllowed(t *testing.T) {
	at := newAPITest(t, Options{})
	rec := at.do("PATCH", "/v1/topics/orders", nil)
	if rec.Code != 405 {
		t.Fatalf("PATCH topic: %d", rec.Code)
	}
	if allow := rec.Header().Get("Allow"); allow != "DELETE, GET, HEAD" {
		t.Errorf("Allow = %q, want DELETE, GET, HEAD", allow)
	}
	if e := errorOf(t, rec); e.Code != "method_not_allowed" || !strings.Contains(e.Message, "PATCH") {
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

// TestAPIHeadersRequestIsSorted checks that JSON headers reach the service
// sorted by name, whatever their order in the body.
func TestAPIHeadersRequestIsSorted(t *testing.T) {
	at := newAPITest(t, Options{})
	names := []string{"x-9", "b", "a", "trace", "Z", "é"}
	var parts []string
	for _, n := range names {
		parts = append(parts, strconv.Quote(n)+`:"v"`)
	}
	at.do("POST", "/v1/topics/orders/records", strings.NewReader(`{"records":[{"value":"v","headers":{`+strings.Join(parts, ",")+`}}]}`), jsonHeader()...)
	var got []string
	for _, h := range at.svc.lastProduce(t).records[0].Headers {
		got = append(got, h.Name)
	}
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Errorf("header order %q, want %q", got, want)
	}
}

func TestReadAllHint(t *testing.T) {
	for _, n := range []int{0, 1, 511, 512, 513, 4096, bodyPrealloc - 1, bodyPrealloc, bodyPrealloc + 1, 3*bodyPrealloc + 17} {
		data := bytes.Repeat([]byte{'x'}, n)
		for _, hint := range []int64{-1, 0, int64(n), int64(n) + 100} {
			got, err := readAllHint(iotestHalfReader{bytes.NewReader(data)}, hint)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("n=%d hint=%d: got %d bytes, err %v", n, hint, len(got), err)
			}
			if hint == int64(n) && n > 0 && n < bodyPrealloc && cap(got) != n+1 {
				t.Errorf("n=%d: announced body read into capacity %d, want %d", n, cap(got), n+1)
			}
		}
	}
}

// iotestHalfReader reads at most half of what is asked (at least one
// byte), to exercise short reads.
type iotestHalfReader struct{ r io.Reader }

func (h iotestHalfReader) Read(p []byte) (int, error) {
	return h.r.Read(p[:max(1, len(p)/2)])
}
