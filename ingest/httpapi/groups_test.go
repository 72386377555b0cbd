package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mambamq/mamba/ingest"
)

// TestDeleteGroupThroughNode deletes a group over HTTP on a real node:
// 409 group_not_empty while its member is live, 204 once it left, then
// 404 group_not_found for the delete and for describe.
func TestDeleteGroupThroughNode(t *testing.T) {
	n := startNode(t, ingest.Config{})
	if _, err := n.CreateTopic(t.Context(), ingest.TopicConfig{Name: "orders", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(n, Options{}, nil, nil, nil))
	defer srv.Close()
	do := func(method, path, body string) (int, string) {
		t.Helper()
		status, ans := jsonDo(t, srv, method, path, body)
		code, _ := errCode(ans)
		return status, code
	}
	status, joined := jsonDo(t, srv, "POST", "/v1/groups/billing/members", `{"topics":["orders"],"offset_reset":"latest"}`)
	if status != http.StatusCreated {
		t.Fatalf("join: %d", status)
	}
	key, _ := joined["session_key"].(string)
	d, err := n.DescribeGroup(t.Context(), "billing")
	if err != nil || len(d.Members) != 1 || d.OffsetReset != "latest" {
		t.Fatalf("describe = %+v, %v", d, err)
	}
	if status, code := do("DELETE", "/v1/groups/billing", ""); status != http.StatusConflict || code != "group_not_empty" {
		t.Fatalf("delete with a live member: %d %s", status, code)
	}
	// The leave needs the member's session key: describe shows the
	// member's id but never its key.
	leave := "/v1/groups/billing/members/" + d.Members[0].ID
	if status, code := do("DELETE", leave, ""); status != http.StatusBadRequest || code != "invalid_request" {
		t.Fatalf("leave without a session key: %d %s", status, code)
	}
	other := strings.Repeat("0", len(key))
	if status, ans := memberDo(t, srv, "DELETE", leave, other, ""); status != http.StatusForbidden || ans["error"].(map[string]any)["code"] != "session_invalid" {
		t.Fatalf("leave with another key: %d %v", status, ans)
	}
	if status, _ := memberDo(t, srv, "DELETE", leave, key, ""); status != http.StatusNoContent {
		t.Fatalf("leave: %d", status)
	}
	if status, code := do("DELETE", "/v1/groups/billing", ""); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, code)
	}
	for _, method := range []string{"DELETE", "GET"} {
		if status, code := do(method, "/v1/groups/billing", ""); status != http.StatusNotFound || code != "group_not_found" {
			t.Fatalf("%s after delete: %d %s", method, status, code)
		}
	}
	if status, code := do("DELETE", "/v1/groups/a%2Fb", ""); status != http.StatusBadRequest || code != "invalid_request" {
		t.Fatalf("delete a bad name: %d %s", status, code)
	}
}
