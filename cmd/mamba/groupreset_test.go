package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// mamba group reset prints the plan without --execute, applies it with
// --execute, refuses a live group without --force, and prints JSON in the
// API's shape.
func TestGroupResetCommand(t *testing.T) {
	dev := testserver.StartMambaDev(t, t.TempDir())
	if code := doJSON(t, "POST", dev.URL+"/v1/topics", map[string]any{"name": "orders", "partitions": 2}, nil); code != http.StatusCreated {
		t.Fatalf("create topic: %d", code)
	}
	var recs []map[string]any
	for p := range 2 {
		for range 4 {
			recs = append(recs, map[string]any{"value": "v", "partition": p})
		}
	}
	if code := doJSON(t, "POST", dev.URL+"/v1/topics/orders/records", map[string]any{"records": recs}, nil); code != http.StatusOK {
		t.Fatalf("produce: %d", code)
	}
	var joined struct {
		MemberID    string `json:"member_id"`
		SessionKey  string `json:"session_key"`
		Assignments []struct {
			Partition int32 `json:"partition"`
			Lease     int64 `json:"lease"`
		} `json:"assignments"`
	}
	if code := doJSON(t, "POST", dev.URL+"/v1/groups/billing/members", map[string]any{"topics": []string{"orders"}}, &joined); code != http.StatusCreated {
		t.Fatalf("join: %d", code)
	}
	var commits []map[string]any
	for _, a := range joined.Assignments {
		commits = append(commits, map[string]any{"topic": "orders", "partition": a.Partition, "offset": 3, "lease": a.Lease})
	}
	if code := memberJSON(t, "POST", dev.URL+"/v1/groups/billing/offsets", joined.SessionKey, map[string]any{"member_id": joined.MemberID, "offsets": commits}, nil); code != http.StatusOK {
		t.Fatalf("commit: %d", code)
	}

	// The plan, with the live member noted; nothing changes.
	out, errOut, code := runBinary(t, dev.URL, "group", "reset", "billing", "--topic", "orders", "--to-earliest")
	if code != 0 || !strings.Contains(out, "plan only, nothing changed (--execute applies it); live members: 1") ||
		!strings.Contains(out, "--execute will be refused without --force") ||
		!strings.Contains(out, "PARTITION  CURRENT  NEW  LOG START  HIGH WATERMARK\n0          3        0    0          4\n1          3        0    0          4\n") {
		t.Fatalf("plan: %d %q %q", code, out, errOut)
	}
	_, errOut, code = runBinary(t, dev.URL, "group", "reset", "billing", "--topic", "orders", "--to-earliest", "--execute")
	if code != 1 || !strings.Contains(errOut, "group_not_empty") {
		t.Fatalf("execute with a live member: %d %q", code, errOut)
	}
	out, errOut, code = runBinary(t, dev.URL, "group", "reset", "billing", "--topic", "orders", "--to-offset", "1", "--partition", "1", "--execute", "--force")
	if code != 0 || !strings.Contains(out, "group billing, topic orders: reset; live members: 1") || !strings.Contains(out, "1          3        1    0          4") ||
		strings.Contains(out, "\n0 ") {
		t.Fatalf("forced execute of one partition: %d %q %q", code, out, errOut)
	}
	if code := memberJSON(t, "DELETE", dev.URL+"/v1/groups/billing/members/"+joined.MemberID, joined.SessionKey, nil, nil); code != http.StatusNoContent {
		t.Fatalf("leave: %d", code)
	}

	out, errOut, code = runBinary(t, dev.URL, "group", "reset", "billing", "--topic", "orders", "--to-offset", "0=2,1=99", "--execute", "-o", "json")
	var plan struct {
		Group       string `json:"group"`
		DryRun      bool   `json:"dry_run"`
		LiveMembers int    `json:"live_members"`
		Partitions  []struct {
			Partition     int32 `json:"partition"`
			CurrentOffset int64 `json:"current_offset"`
			NewOffset     int64 `json:"new_offset"`
			Clamped       bool  `json:"clamped"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(out), &plan); code != 0 || err != nil || plan.Group != "billing" || plan.DryRun || plan.LiveMembers != 0 ||
		len(plan.Partitions) != 2 || plan.Partitions[0].NewOffset != 2 || plan.Partitions[1].CurrentOffset != 1 ||
		plan.Partitions[1].NewOffset != 4 || !plan.Partitions[1].Clamped {
		t.Fatalf("reset to offsets -o json: %d %v %q %q", code, err, out, errOut)
	}
	out, errOut, code = runBinary(t, dev.URL, "group", "reset", "billing", "--topic", "orders", "--to-latest", "--execute")
	if code != 0 || !strings.Contains(out, "0          2        4    0          4") || !strings.Contains(out, "1          4        4    0          4") {
		t.Fatalf("reset to latest: %d %q %q", code, out, errOut)
	}
	out, errOut, code = runBinary(t, dev.URL, "group", "reset", "billing", "--topic", "orders", "--to-timestamp", "1970-01-01T00:00:00Z", "--partition", "0")
	if code != 0 || !strings.Contains(out, "0          4        0    0          4") {
		t.Fatalf("reset to a time before every record: %d %q %q", code, out, errOut)
	}

	// Two members joined one after the other: describe shows the first
	// one's surplus as revoking until it releases it.
	var first struct {
		MemberID string `json:"member_id"`
	}
	for _, out := range []any{&first, nil} {
		if code := doJSON(t, "POST", dev.URL+"/v1/groups/pair/members", map[string]any{"topics": []string{"orders"}}, out); code != http.StatusCreated {
			t.Fatalf("join: %d", code)
		}
	}
	out, errOut, code = runBinary(t, dev.URL, "group", "describe", "pair")
	if code != 0 || strings.Count(out, first.MemberID+" (revoking)") != 1 || strings.Count(out, first.MemberID) != 2 {
		t.Fatalf("describe with a partition revoking: %d %q %q", code, out, errOut)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--topic", "orders"}, "exactly one of"},
		{[]string{"--topic", "orders", "--to-earliest", "--to-latest"}, "exactly one of"},
		{[]string{"--to-earliest"}, `"topic" not set`},
		{[]string{"--topic", "orders", "--to-timestamp", "yesterday"}, "--to-timestamp"},
		{[]string{"--topic", "orders", "--to-offset", "0=x"}, "--to-offset"},
		{[]string{"--topic", "orders", "--to-offset", "0=1", "--partition", "0"}, "--partition"},
		{[]string{"--topic", "nope", "--to-earliest"}, "topic_not_found"},
	} {
		_, errOut, code := runBinary(t, dev.URL, append([]string{"group", "reset", "billing"}, c.args...)...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("group reset %v: exit %d, stderr %q; want an error naming %s", c.args, code, errOut, c.want)
		}
	}
}
