package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mambamq/mamba/ingest"
)

// TestDescribeGroupHidesLeases checks that a member's join answer carries
// its leases and its session key, which authorize offset commits, and
// that describing the group (which any caller allowed to read the group
// may do) shows neither.
func TestDescribeGroupHidesLeases(t *testing.T) {
	n := startNode(t, ingest.Config{})
	if _, err := n.CreateTopic(t.Context(), ingest.TopicConfig{Name: "orders", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(n, Options{}, nil, nil, nil))
	defer srv.Close()
	status, joined := jsonDo(t, srv, "POST", "/v1/groups/g/members", `{"topics":["orders"]}`)
	if status != http.StatusCreated {
		t.Fatalf("join: %d %v", status, joined)
	}
	key, _ := joined["session_key"].(string)
	if len(key) != 32 {
		t.Fatalf("join answer session key %q, want 32 hex digits", key)
	}
	as, _ := joined["assignments"].([]any)
	if len(as) != 2 {
		t.Fatalf("join assigned %v, want 2 partitions", joined["assignments"])
	}
	for _, a := range as {
		if lease, _ := a.(map[string]any)["lease"].(float64); lease <= 0 {
			t.Errorf("join answer assignment %v has no lease", a)
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/v1/groups/g", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if body := string(raw); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"assignments"`) || strings.Contains(body, `"lease"`) ||
		strings.Contains(body, key) || strings.Contains(body, "session_key") {
		t.Errorf("describe: %d %s; want assignments without leases and no session key", resp.StatusCode, body)
	}
}
