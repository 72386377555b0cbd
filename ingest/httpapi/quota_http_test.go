package httpapi

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/wire"
)

// newQuotaTest is a handler over a scripted service with authentication
// on, tokens in a miniredis, and the given default quotas.
func newQuotaTest(t *testing.T, defaults Quotas) *authTest {
	t.Helper()
	return newAuthTestWith(t, Options{Quotas: defaults})
}

// quotaToken creates a token with the given scopes and own quotas and
// returns its request headers.
func (at *authTest) quotaToken(t *testing.T, quotas map[string]int64, scopes ...string) []string {
	t.Helper()
	raw, _, err := at.store.CreateTokenWithQuotas(t.Context(), "q", scopes, quotas)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"Authorization", "Bearer " + raw, "Content-Type", "application/json"}
}

// wantQuota429 fails unless rec is a 429 quota_exceeded naming quota,
// with a Retry-After of at least min seconds (and at least 1); it returns
// the Retry-After.
func wantQuota429(t *testing.T, rec *httptest.ResponseRecorder, quota string, min int) int {
	t.Helper()
	if rec.Code != 429 {
		t.Fatalf("status %d %s, want 429", rec.Code, rec.Body)
	}
	e := errorOf(t, rec)
	if e.Code != wire.CodeQuotaExceeded || e.Quota != quota || !strings.Contains(e.Message, quota) {
		t.Fatalf("error %+v, want quota_exceeded naming %s", e, quota)
	}
	ra, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	if err != nil || ra < max(1, min) {
		t.Fatalf("Retry-After %q, want at least %d", rec.Header().Get("Retry-After"), max(1, min))
	}
	return ra
}

func TestQuotaHTTPProduceBytes(t *testing.T) {
	at := newQuotaTest(t, Quotas{})
	a := at.quotaToken(t, map[string]int64{wire.QuotaProduceBytes: 10}, "produce:*")
	b := at.quotaToken(t, nil, "produce:*")
	body := `{"records":[{"value":"` + strings.Repeat("x", 300) + `"}]}`
	if rec := at.do("POST", "/v1/topics/orders/records", strings.NewReader(body), a...); rec.Code != 200 {
		t.Fatalf("first produce of a: %d %s", rec.Code, rec.Body)
	}
	// About 320 bytes at 10/s: some 31 seconds of debt.
	rec := at.do("POST", "/v1/topics/orders/records", strings.NewReader(body), a...)
	wantQuota429(t, rec, wire.QuotaProduceBytes, 30)
	if rec := at.do("POST", "/v1/topics/orders/records", strings.NewReader(body), b...); rec.Code != 200 {
		t.Fatalf("produce of b: %d %s", rec.Code, rec.Body)
	}
	if got := testutil.ToFloat64(at.handler.(*handler).metrics.quotaRefusals.WithLabelValues(wire.QuotaProduceBytes)); got != 1 {
		t.Errorf("produce_bytes refusals counted %v, want 1", got)
	}
	if n := testutil.CollectAndCount(at.reg, "mamba_http_quota_refusals_total"); n != len(quotaNames) {
		t.Errorf("mamba_http_quota_refusals_total has %d series, want one per quota (%d)", n, len(quotaNames))
	}
}

func TestQuotaHTTPIdempotencyKeys(t *testing.T) {
	at := newQuotaTest(t, Quotas{IdempotencyKeys: 2})
	a := at.quotaToken(t, nil, "produce:*")
	produce := func(key, body string) *httptest.ResponseRecorder {
		h := a
		if key != "" {
			h = append(append([]string(nil), a...), "Idempotency-Key", key)
		}
		return at.do("POST", "/v1/topics/orders/records", strings.NewReader(body), h...)
	}
	const ok = `{"records":[{"value":"v"}]}`
	// Requests that create no key give theirs back: a bad body, and one
	// the service refuses with a 4xx.
	if rec := produce("k0", `{"records":`); rec.Code != 400 {
		t.Fatalf("bad body: %d", rec.Code)
	}
	at.svc.errs["Produce"] = ingest.ErrTopicNotFound
	if rec := produce("k0", ok); rec.Code != 404 {
		t.Fatalf("missing topic: %d", rec.Code)
	}
	delete(at.svc.errs, "Produce")
	for _, k := range []string{"k1", "k2"} {
		if rec := produce(k, ok); rec.Code != 200 {
			t.Fatalf("key %s: %d %s", k, rec.Code, rec.Body)
		}
	}
	// Two keys per 10-minute window: the next in 5 minutes.
	ra := wantQuota429(t, produce("k3", ok), wire.QuotaIdempotencyKeys, 299)
	if ra > 300 {
		t.Errorf("Retry-After %d, want 300 at most", ra)
	}
	if rec := produce("", ok); rec.Code != 200 {
		t.Fatalf("produce without a key: %d %s", rec.Code, rec.Body)
	}
}

func TestQuotaHTTPFetchBytes(t *testing.T) {
	at := newQuotaTest(t, Quotas{FetchBytes: 100})
	a := at.quotaToken(t, nil, "consume:*")
	b := at.quotaToken(t, nil, "consume:*")
	at.svc.fetchRes = ingest.FetchResult{NextOffset: 1, HighWatermark: 1,
		Records: []ingest.FetchedRecord{{Offset: 0, Record: chunk.Record{Value: []byte(strings.Repeat("v", 1000))}}}}
	rec := at.do("GET", "/v1/topics/orders/partitions/0/records?offset=0", nil, a...)
	if rec.Code != 200 {
		t.Fatalf("fetch: %d %s", rec.Code, rec.Body)
	}
	// The answer's bytes beyond one second's 100, at 100 a second.
	debt := (rec.Body.Len() - 100) / 100
	ra := wantQuota429(t, at.do("GET", "/v1/topics/orders/partitions/0/records?offset=0", nil, a...), wire.QuotaFetchBytes, debt)
	if ra > debt+1 {
		t.Errorf("Retry-After %d after %d bytes answered, want at most %d", ra, rec.Body.Len(), debt+1)
	}
	if rec := at.do("GET", "/v1/topics/orders/partitions/0/records?offset=0", nil, b...); rec.Code != 200 {
		t.Fatalf("fetch of b: %d %s", rec.Code, rec.Body)
	}
}

func TestQuotaHTTPLongPolls(t *testing.T) {
	at := newQuotaTest(t, Quotas{LongPolls: 1})
	a := at.quotaToken(t, nil, "consume:*")
	b := at.quotaToken(t, nil, "consume:*")
	// Fetches with a wait park until release is closed (or their client
	// goes); each says when it is parked.
	release := make(chan struct{})
	parked := make(chan struct{}, 4)
	at.svc.fetchFn = func(ctx context.Context, req ingest.FetchRequest) (ingest.FetchResult, error) {
		if req.Wait > 0 {
			parked <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return ingest.FetchResult{}, ctx.Err()
			}
		}
		return ingest.FetchResult{NextOffset: req.Offset, HighWatermark: req.Offset}, nil
	}
	const long = "/v1/topics/orders/partitions/0/records?offset=0&wait_ms=20000"
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, h := range [][]string{a, b} {
		wg.Go(func() { codes[i] = at.do("GET", long, nil, h...).Code })
		<-parked
	}
	// a's one long poll is taken; b's is its own.
	wantQuota429(t, at.do("GET", long, nil, a...), wire.QuotaLongPolls, 1)
	if rec := at.do("GET", "/v1/topics/orders/partitions/0/records?offset=0", nil, a...); rec.Code != 200 {
		t.Fatalf("a fetch without a wait: %d %s", rec.Code, rec.Body)
	}
	close(release)
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Fatalf("parked fetches answered %v, want 200s", codes)
	}
	// Its poll answered, a may wait again.
	if rec := at.do("GET", long, nil, a...); rec.Code != 200 {
		t.Fatalf("a's next long poll: %d %s", rec.Code, rec.Body)
	}
}

// TestQuotaHTTPTokenAPI sets quotas on creation, shows them, changes them
// with PATCH (applied on this node at once) and refuses bad ones.
func TestQuotaHTTPTokenAPI(t *testing.T) {
	at := newQuotaTest(t, Quotas{FetchBytes: 1 << 20})
	admin, _, err := at.store.CreateToken(t.Context(), "root", []string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	ah := []string{"Authorization", "Bearer " + admin, "Content-Type", "application/json"}
	rec := at.do("POST", "/v1/auth/tokens", strings.NewReader(`{"name":"p","scopes":["produce:*"],"quotas":{"produce_requests":1}}`), ah...)
	var created apiToken
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	if len(created.Quotas) != 1 || created.Quotas[wire.QuotaProduceRequests] != 1 {
		t.Fatalf("created quotas %v", created.Quotas)
	}
	ph := []string{"Authorization", "Bearer " + created.Token, "Content-Type", "application/json"}
	produce := func() *httptest.ResponseRecorder {
		return at.do("POST", "/v1/topics/orders/records", strings.NewReader(`{"records":[{"value":"v"}]}`), ph...)
	}
	if rec := produce(); rec.Code != 200 {
		t.Fatalf("produce: %d %s", rec.Code, rec.Body)
	}
	wantQuota429(t, produce(), wire.QuotaProduceRequests, 1)
	rec = at.do("PATCH", "/v1/auth/tokens/"+created.ID, strings.NewReader(`{"quotas":{"produce_requests":null,"fetch_bytes":0}}`), ah...)
	var updated apiToken
	if err := json.Unmarshal(rec.Body.Bytes(), &updated); err != nil || rec.Code != 200 {
		t.Fatalf("patch: %d %s", rec.Code, rec.Body)
	}
	if len(updated.Quotas) != 1 || updated.Quotas[wire.QuotaFetchBytes] != 0 || updated.Token != "" {
		t.Fatalf("updated token %+v, want only fetch_bytes 0 and no secret", updated)
	}
	// The node default (no produce_requests quota) applies at once.
	for range 3 {
		if rec := produce(); rec.Code != 200 {
			t.Fatalf("produce after the patch: %d %s", rec.Code, rec.Body)
		}
	}
	rec = at.do("GET", "/v1/auth/tokens", nil, ah...)
	if !strings.Contains(rec.Body.String(), `"quotas":{"fetch_bytes":0}`) || !strings.Contains(rec.Body.String(), `"quotas":{}`) {
		t.Errorf("list does not show the quotas: %s", rec.Body)
	}
	for body, code := range map[string]string{
		`{"quotas":{"nope":1}}`:                         wire.CodeInvalidRequest,
		`{"quotas":{"fetch_bytes":-1}}`:                 wire.CodeInvalidRequest,
		`{"quotas":{"fetch_bytes":"1"}}`:                wire.CodeInvalidRequest,
		`{"quota":{}}`:                                  wire.CodeInvalidRequest,
		`{"quotas":{"long_polls":1152921504606846976}}`: wire.CodeInvalidRequest,
	} {
		rec := at.do("PATCH", "/v1/auth/tokens/"+created.ID, strings.NewReader(body), ah...)
		if e := errorOf(t, rec); e.Code != code {
			t.Errorf("patch %s: %d %s, want %s", body, rec.Code, e.Code, code)
		}
	}
	rec = at.do("POST", "/v1/auth/tokens", strings.NewReader(`{"name":"x","scopes":["admin"],"quotas":{"fetch_bytes":-5}}`), ah...)
	if e := errorOf(t, rec); e.Code != wire.CodeInvalidRequest || !strings.Contains(e.Message, "fetch_bytes") {
		t.Errorf("create with a negative quota: %d %+v", rec.Code, e)
	}
	rec = at.do("PATCH", "/v1/auth/tokens/0123456789abcdef", strings.NewReader(`{"quotas":{"fetch_bytes":1}}`), ah...)
	if e := errorOf(t, rec); e.Code != wire.CodeTokenNotFound {
		t.Errorf("patch of an unknown token: %d %s", rec.Code, e.Code)
	}
}

// TestQuotaHTTPAuthOff checks that without authentication no quota
// applies: there is no token to hold to one.
func TestQuotaHTTPAuthOff(t *testing.T) {
	at := newAPITest(t, Options{Quotas: Quotas{ProduceRequests: 1, ProduceBytes: 1}})
	for i := range 5 {
		rec := at.do("POST", "/v1/topics/orders/records", strings.NewReader(`{"records":[{"value":"v"}]}`), jsonHeader()...)
		if rec.Code != 200 {
			t.Fatalf("produce %d without auth: %d %s", i, rec.Code, rec.Body)
		}
	}
}
