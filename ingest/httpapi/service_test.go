package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mambamq/mamba/ingest"
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
	updated  []ingest.TopicUpdate
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

func (s *scriptedService) Join(ctx context.Context, req ingest.JoinGroupRequest) (ingest.JoinedGroup, error) {
	if err := s.record("JoinGroup"); err != nil {
		return ingest.JoinedGroup{}, err
	}
	if err := ingest.ValidateJoinGroup(req.Group, req.Topics, req.Session); err != nil {
		return ingest.JoinedGroup{}, err
	}
	if err := ingest.ValidateOffsetReset(req.OffsetReset); err != nil {
		return ingest.JoinedGroup{}, err
	}
	return ingest.JoinedGroup{Member: "m1", Assignments: []metadata.Assignment{{Topic: req.Topics[0], Partition: 0, Lease: 1, CommittedOffset: -1}},
		OffsetReset: metadata.OffsetResetEarliest}, nil
}

func (s *scriptedService) DeleteGroup(ctx context.Context, group string) error {
	if err := s.record("DeleteGroup"); err != nil {
		return err
	}
	return ingest.ValidateGroupName(group)
}

func (s *scriptedService) Heartbeat(ctx context.Context, group, member, key string, _ []metadata.TopicPartitionLease) (metadata.Synced, error) {
	if err := s.record("Heartbeat"); err != nil {
		return metadata.Synced{}, err
	}
	return metadata.Synced{}, ingest.ValidateGroupName(group)
}

func (s *scriptedService) LeaveGroup(ctx context.Context, group, member, key string) error {
	if err := s.record("LeaveGroup"); err != nil {
		return err
	}
	return ingest.ValidateGroupName(group)
}

func (s *scriptedService) CommitOffsets(ctx context.Context, group, member, key string, offsets []metadata.OffsetCommit) error {
	if err := s.record("CommitOffsets"); err != nil {
		return err
	}
	return ingest.ValidateGroupName(group)
}

func (s *scriptedService) ResetGroupOffsets(ctx context.Context, req ingest.ResetOffsetsRequest) (ingest.ResetPlan, error) {
	if err := s.record("ResetGroupOffsets"); err != nil {
		return ingest.ResetPlan{}, err
	}
	return ingest.ResetPlan{Group: req.Group, Topic: req.Topic, DryRun: req.DryRun}, ingest.ValidateGroupName(req.Group)
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

func (s *scriptedService) UpdateTopic(ctx context.Context, name string, u ingest.TopicUpdate) (ingest.TopicConfig, error) {
	if err := s.record("UpdateTopic"); err != nil {
		return ingest.TopicConfig{}, err
	}
	if err := ingest.ValidateTopicUpdate(name, u); err != nil {
		return ingest.TopicConfig{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updated = append(s.updated, u)
	return s.describe.TopicConfig, nil
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
// the request's Release exactly once, as the Service contract asks; it
// holds nothing once it answers, so it releases the request's memory
// then.
func (s *scriptedService) Submit(ctx context.Context, req ingest.ProduceRequest) ([]ingest.RecordResult, error) {
	defer req.Memory.Release()
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
