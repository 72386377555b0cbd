package httpapi

import (
	"net/http"
	"net/http/httptest"
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
	status, _ := do("POST", "/v1/groups/billing/members", `{"topics":["orders"],"offset_reset":"latest"}`)
	if status != http.StatusCreated {
		t.Fatalf("join: %d", status)
	}
	d, err := n.DescribeGroup(t.Context(), "billing")
	if err != nil || len(d.Members) != 1 || d.OffsetReset != "latest" {
		t.Fatalf("describe = %+v, %v", d, err)
	}
	if status, code := do("DELETE", "/v1/groups/billing", ""); status != http.StatusConflict || code != "group_not_empty" {
		t.Fatalf("delete with a live member: %d %s", status, code)
	}
	if status, _ := do("DELETE", "/v1/groups/billing/members/"+d.Members[0].ID, ""); status != http.StatusNoContent {
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
