package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/wire"
)

// jsonDo sends body to srv and returns the status and the decoded answer.
func jsonDo(t *testing.T, srv *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	return memberDo(t, srv, method, path, "", body)
}

// memberDo is jsonDo with a member's session key, if not "".
func memberDo(t *testing.T, srv *httptest.Server, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set(wire.HeaderSessionKey, key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: answer %q is not a JSON object: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, out
}

func errCode(ans map[string]any) (code, msg string) {
	e, _ := ans["error"].(map[string]any)
	code, _ = e["code"].(string)
	msg, _ = e["message"].(string)
	return code, msg
}

// planOf returns the plan's partitions as "p:current->new" strings, with
// a "!" for a clamped offset.
func planOf(t *testing.T, ans map[string]any) string {
	t.Helper()
	parts, ok := ans["partitions"].([]any)
	if !ok {
		t.Fatalf("answer without partitions: %v", ans)
	}
	var out []string
	for _, p := range parts {
		m := p.(map[string]any)
		s := fmt.Sprintf("%v:%v->%v", m["partition"], m["current_offset"], m["new_offset"])
		if m["clamped"] == true {
			s += "!"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// TestResetOffsetsThroughNode resets a group's offsets over HTTP on a
// real node: bad requests, 404 and 409 answers, a dry run, a forced reset
// that fences the live member, and each kind of target.
func TestResetOffsetsThroughNode(t *testing.T) {
	n := startNode(t, ingest.Config{})
	ctx := t.Context()
	if _, err := n.CreateTopic(ctx, ingest.TopicConfig{Name: "orders", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	produce := func(p int32, count int) {
		t.Helper()
		recs := make([]ingest.ProduceRecord, count)
		for i := range recs {
			recs[i] = ingest.ProduceRecord{Value: []byte("v"), Partition: p}
		}
		if _, err := n.Produce(ctx, "orders", recs, ingest.ProduceOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Partition 0: offsets 0-4 in one chunk, 5-9 in a later one; the
	// reset by time to a moment between the two lands on 5.
	produce(0, 5)
	produce(1, 3)
	acked := time.Now()
	for time.Now().UnixMilli() <= acked.UnixMilli()+1 {
		time.Sleep(time.Millisecond) // let the millisecond clock pass the first chunk's
	}
	between := time.Now()
	produce(0, 5)

	srv := httptest.NewServer(NewHandler(n, Options{}, nil, nil, nil))
	defer srv.Close()
	reset := func(body string) (int, map[string]any) {
		t.Helper()
		return jsonDo(t, srv, "POST", "/v1/groups/billing/offsets/reset", body)
	}

	for _, c := range []struct{ body, field string }{
		{`{"to":"earliest"}`, "topic"},
		{`{"topic":"a}{b","to":"earliest"}`, "topic"},
		{`{"topic":"..","to":"earliest"}`, "topic"},
		{`{"topic":"orders"}`, "to"},
		{`{"topic":"orders","to":"newest"}`, "to"},
		{`{"topic":"orders","to":"timestamp"}`, "timestamp_ms"},
		{`{"topic":"orders","to":"timestamp","timestamp_ms":-1}`, "timestamp_ms"},
		{`{"topic":"orders","to":"offsets"}`, "offsets"},
		{`{"topic":"orders","to":"offsets","offsets":{"x":1}}`, "offsets"},
		{`{"topic":"orders","to":"offsets","offsets":{"1":1,"01":2}}`, "offsets"},
		{`{"topic":"orders","to":"offsets","offsets":{"0":-1}}`, "offsets"},
		{`{"topic":"orders","to":"offsets","offsets":{"2":1}}`, "offsets"},
		{`{"topic":"orders","to":"offsets","offsets":{"0":1},"partitions":[0]}`, "partitions"},
		{`{"topic":"orders","to":"earliest","offsets":{"0":1}}`, "to"},
		{`{"topic":"orders","to":"earliest","partitions":[2]}`, "partitions[0]"},
		{`{"topic":"orders","to":"earliest","partitions":[0,0]}`, "partitions"},
		{`{"topic":"orders","to":"earliest","partitions":"0"}`, "partitions"},
		{`{"topic":"orders","to":"earliest","extra":1}`, "extra"},
		{``, "body"},
	} {
		status, ans := reset(c.body)
		code, msg := errCode(ans)
		if status != http.StatusBadRequest || code != "invalid_request" || !strings.Contains(msg, c.field) {
			t.Errorf("%s: %d %s %q, want 400 invalid_request naming %s", c.body, status, code, msg, c.field)
		}
	}
	if status, ans := reset(`{"topic":"nope","to":"earliest"}`); status != http.StatusNotFound {
		t.Fatalf("unknown topic: %d %v", status, ans)
	} else if code, _ := errCode(ans); code != "topic_not_found" {
		t.Fatalf("unknown topic: %s", code)
	}

	// A live member that committed 8 in partition 0.
	status, joined := jsonDo(t, srv, "POST", "/v1/groups/billing/members", `{"topics":["orders"]}`)
	if status != http.StatusCreated {
		t.Fatalf("join: %d %v", status, joined)
	}
	member, key := joined["member_id"].(string), joined["session_key"].(string)
	lease0 := int64(joined["assignments"].([]any)[0].(map[string]any)["lease"].(float64))
	commit := func(off int64) (int, string) {
		status, ans := memberDo(t, srv, "POST", "/v1/groups/billing/offsets", key,
			fmt.Sprintf(`{"member_id":%q,"offsets":[{"topic":"orders","partition":0,"offset":%d,"lease":%d}]}`, member, off, lease0))
		code, _ := errCode(ans)
		return status, code
	}
	if status, code := commit(8); status != http.StatusOK {
		t.Fatalf("commit: %d %s", status, code)
	}

	if status, ans := reset(`{"topic":"orders","to":"earliest"}`); status != http.StatusConflict {
		t.Fatalf("reset with a live member: %d %v", status, ans)
	} else if code, _ := errCode(ans); code != "group_not_empty" {
		t.Fatalf("reset with a live member: %s", code)
	}
	status, ans := reset(`{"topic":"orders","to":"earliest","dry_run":true}`)
	if status != http.StatusOK || ans["dry_run"] != true || ans["live_members"] != float64(1) || planOf(t, ans) != "0:8->0 1:-1->0" {
		t.Fatalf("dry run: %d %v", status, ans)
	}
	if d, _ := n.DescribeGroup(ctx, "billing"); d.Offsets[0].Committed != 8 {
		t.Fatalf("a dry run changed the offsets: %+v", d.Offsets)
	}

	// Forced: the member's lease for partition 0 changes, so its commit
	// of its old position is refused and cannot undo the reset.
	status, ans = reset(`{"topic":"orders","to":"earliest","partitions":[0],"force":true}`)
	if status != http.StatusOK || ans["dry_run"] != false || planOf(t, ans) != "0:8->0" {
		t.Fatalf("forced reset: %d %v", status, ans)
	}
	if status, code := commit(9); status != http.StatusConflict || code != "lease_lost" {
		t.Fatalf("commit under the lease from before the reset: %d %s", status, code)
	}
	_, hb := memberDo(t, srv, "POST", "/v1/groups/billing/members/"+member+"/heartbeat", key, "")
	a0 := hb["assignments"].([]any)[0].(map[string]any)
	if a0["committed_offset"] != float64(0) || int64(a0["lease"].(float64)) <= lease0 {
		t.Fatalf("heartbeat after the forced reset: %v, want committed 0 and a lease above %d", a0, lease0)
	}
	if status, _ := memberDo(t, srv, "DELETE", "/v1/groups/billing/members/"+member, key, ""); status != http.StatusNoContent {
		t.Fatalf("leave: %d", status)
	}

	// Without members: latest, by time, explicit offsets (clamped).
	for _, c := range []struct{ body, plan string }{
		{`{"topic":"orders","to":"latest"}`, "0:0->10 1:-1->3"},
		{fmt.Sprintf(`{"topic":"orders","to":"timestamp","timestamp_ms":%d}`, between.UnixMilli()), "0:10->5 1:3->3"},
		{`{"topic":"orders","to":"timestamp","timestamp_ms":0}`, "0:5->0 1:3->0"},
		{`{"topic":"orders","to":"offsets","offsets":{"0":7,"1":99}}`, "0:0->7 1:0->3!"},
	} {
		status, ans := reset(c.body)
		if status != http.StatusOK || planOf(t, ans) != c.plan || ans["live_members"] != float64(0) {
			t.Fatalf("%s: %d %v, want plan %s", c.body, status, ans, c.plan)
		}
	}
	d, err := n.DescribeGroup(ctx, "billing")
	if err != nil || d.Offsets[0].Committed != 7 || d.Offsets[1].Committed != 3 {
		t.Fatalf("offsets after the resets: %+v, %v", d.Offsets, err)
	}

	// A heartbeat body: releases, and its bad forms.
	status, joined = jsonDo(t, srv, "POST", "/v1/groups/billing/members", `{"topics":["orders"]}`)
	if status != http.StatusCreated {
		t.Fatalf("join: %d", status)
	}
	hbPath, key := "/v1/groups/billing/members/"+joined["member_id"].(string)+"/heartbeat", joined["session_key"].(string)
	for _, c := range []struct{ body, field string }{
		{`{"release":[{"topic":"","partition":0,"lease":1}]}`, "release[0].topic"},
		{`{"release":[{"topic":"orders","partition":-1,"lease":1}]}`, "release[0].partition"},
		{`{"release":[{"topic":"orders","partition":0,"lease":0}]}`, "release[0].lease"},
		{`{"releases":[]}`, "releases"},
	} {
		status, ans := memberDo(t, srv, "POST", hbPath, key, c.body)
		code, msg := errCode(ans)
		if status != http.StatusBadRequest || code != "invalid_request" || !strings.Contains(msg, c.field) {
			t.Errorf("heartbeat %s: %d %s %q, want 400 naming %s", c.body, status, code, msg, c.field)
		}
	}
	if status, ans := memberDo(t, srv, "POST", hbPath, key, `{"release":[{"topic":"orders","partition":0,"lease":1}]}`); status != http.StatusOK ||
		len(ans["assignments"].([]any)) != 2 {
		t.Fatalf("heartbeat releasing a partition not revoking: %d %v, want both partitions kept", status, ans)
	}
}
