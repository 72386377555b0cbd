package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/wire"
	"github.com/mambamq/mamba/metadata"
)

// TestQuotaIsolationThroughNode has token a flood a real node past its
// produce quota while token b produces at the same time: a gets 429
// quota_exceeded with a Retry-After, b's records are acknowledged and
// read back, and only the requests a was admitted for are in the topic.
func TestQuotaIsolationThroughNode(t *testing.T) {
	n := startNode(t, ingest.Config{})
	if _, err := n.CreateTopic(t.Context(), ingest.TopicConfig{Name: "shared", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	tokens := metadata.New(rdb, metadata.Options{})
	srv := httptest.NewServer(NewHandler(n, Options{Tokens: tokens}, nil, nil, nil))
	defer srv.Close()
	rawA, _, err := tokens.CreateTokenWithQuotas(t.Context(), "a", []string{"produce:shared"}, map[string]int64{wire.QuotaProduceBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	rawB, _, err := tokens.CreateToken(t.Context(), "b", []string{"produce:shared", "consume:shared"})
	if err != nil {
		t.Fatal(err)
	}
	call := func(tok, method, path, body string) (int, http.Header, []byte) {
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return 0, nil, nil
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Error(err)
			return 0, nil, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	// Each of a's requests is 500 bytes or more, five seconds of its
	// quota: the first admitted puts it in debt for the others.
	const floods = 8
	var wg sync.WaitGroup
	codes := make([]int, floods)
	for i := range floods {
		wg.Go(func() {
			body := fmt.Sprintf(`{"records":[{"value":"a-%d-%s"}]}`, i, strings.Repeat("x", 500))
			code, h, b := call(rawA, "POST", "/v1/topics/shared/records", body)
			codes[i] = code
			if code == 429 && (h.Get("Retry-After") == "" || h.Get("Retry-After") == "0" || !strings.Contains(string(b), `"quota":"produce_bytes"`)) {
				t.Errorf("a's 429: Retry-After %q, body %s", h.Get("Retry-After"), b)
			}
		})
	}
	var codeB int
	wg.Go(func() {
		codeB, _, _ = call(rawB, "POST", "/v1/topics/shared/records", `{"records":[{"key":"b","value":"from b"}]}`)
	})
	wg.Wait()
	admitted, refused := 0, 0
	for _, c := range codes {
		switch c {
		case 200:
			admitted++
		case 429:
			refused++
		default:
			t.Errorf("a's produce answered %d", c)
		}
	}
	if admitted != 1 || refused != floods-1 {
		t.Fatalf("a: %d admitted, %d refused; want 1 and %d", admitted, refused, floods-1)
	}
	if codeB != 200 {
		t.Fatalf("b's produce answered %d", codeB)
	}
	code, _, body := call(rawB, "GET", "/v1/topics/shared/partitions/0/records?offset=0", "")
	var got apiFetchResponse
	if err := json.Unmarshal(body, &got); err != nil || code != 200 {
		t.Fatalf("b's fetch: %d %s", code, body)
	}
	fromA, fromB := 0, 0
	for _, r := range got.Records {
		switch {
		case r.Value == "from b":
			fromB++
		case strings.HasPrefix(r.Value, "a-"):
			fromA++
		}
	}
	if fromB != 1 || fromA != admitted || len(got.Records) != 1+admitted {
		t.Fatalf("topic holds %d records (%d of a, %d of b), want a's %d admitted and b's one", len(got.Records), fromA, fromB, admitted)
	}
}
