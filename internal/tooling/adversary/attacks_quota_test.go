package adversary

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/mambamq/mamba/internal/wire"
)

// quotaBytes is the produce_bytes quota (bytes a second) of the token
// quotaAttack floods with.
const quotaBytes = 256 << 10

// quotaAttack floods produce with a token of its own whose produce_bytes
// quota is 256 KiB/s: the first 1 MiB request passes (the quota's bucket
// may go into debt), the next ones get 429 quota_exceeded naming the
// quota, with a Retry-After; the attacker's other token, with the node's
// default quotas, still produces, and the honest clients never see a 429.
func quotaAttack(ctx context.Context, t *testing.T, e *env) {
	raw, _, err := e.admin.CreateTokenWithQuotas(ctx, "quota-limited", []string{"produce:attack-*"},
		map[string]int64{"produce_bytes": quotaBytes})
	if err != nil {
		t.Fatal(err)
	}
	limited := e.as(raw)
	body := []byte(`{"records":[{"value":"` + string(bytes.Repeat([]byte("q"), MiB-64)) + `"}]}`)
	a, err := limited.Do(ctx, http.MethodPost, "/v1/topics/attack-a/records", jsonType, body)
	expect(t, "first 1 MiB under a 256 KiB/s quota", a, err, http.StatusOK, "")
	refused := 0
	for i := range 20 {
		a, err := limited.Do(ctx, http.MethodPost, "/v1/topics/attack-a/records", jsonType, body)
		if err == nil && a.Is(http.StatusTooManyRequests, wire.CodeQuotaExceeded) {
			refused++
			if s, _ := strconv.Atoi(a.Header.Get("Retry-After")); s < 1 {
				t.Errorf("429 quota_exceeded with Retry-After %q", a.Header.Get("Retry-After"))
			}
			if !bytes.Contains(a.Body, []byte(`"produce_bytes"`)) {
				t.Errorf("429 quota_exceeded does not name the quota: %s", a.Body)
			}
			continue
		}
		expect(t, fmt.Sprintf("request %d over the quota", i), a, err, http.StatusTooManyRequests, wire.CodeQuotaExceeded)
	}
	t.Logf("%d of 20 requests over the quota refused", refused)
	a, err = e.as(e.tokens.Attacker).Do(ctx, http.MethodPost, "/v1/topics/attack-a/records", jsonType, body)
	expect(t, "another token at the same time", a, err, http.StatusOK, "")
}
