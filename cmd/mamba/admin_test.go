package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// runBinary runs the mamba binary with MAMBA_URL set and returns its
// stdout, stderr and exit code.
func runBinary(t *testing.T, url string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(testserver.MambaBinary(t), args...)
	cmd.Env = append(os.Environ(), "MAMBA_URL="+url)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestTopicAndGroupCommands(t *testing.T) {
	dev := testserver.StartMambaDev(t, t.TempDir())
	out, errOut, code := runBinary(t, dev.URL, "topic", "create", "orders", "--partitions", "3", "--retention", "1h")
	if code != 0 || !strings.Contains(out, "created topic orders with 3 partitions, retention 1h0m0s") {
		t.Fatalf("topic create: %d %q %q", code, out, errOut)
	}
	_, errOut, code = runBinary(t, dev.URL, "topic", "create", "orders", "--partitions", "3")
	if code != 1 || !strings.Contains(errOut, "topic_exists") {
		t.Fatalf("second create: exit %d, stderr %q; want 1 and the server's code", code, errOut)
	}
	if code := doJSON(t, "POST", dev.URL+"/v1/topics/orders/records", map[string]any{"records": []map[string]any{{"value": "a", "partition": 2}}}, nil); code != http.StatusOK {
		t.Fatalf("produce: %d", code)
	}
	out, _, code = runBinary(t, dev.URL, "topic", "list")
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "orders  3           1h0m0s") {
		t.Fatalf("topic list: %d %q", code, out)
	}
	out, _, code = runBinary(t, dev.URL, "topic", "describe", "orders", "-o", "json")
	var desc struct {
		Name           string `json:"name"`
		PartitionStats []struct {
			Partition     int32 `json:"partition"`
			HighWatermark int64 `json:"high_watermark"`
		} `json:"partition_stats"`
	}
	if err := json.Unmarshal([]byte(out), &desc); code != 0 || err != nil || desc.Name != "orders" || len(desc.PartitionStats) != 3 || desc.PartitionStats[2].HighWatermark != 1 {
		t.Fatalf("topic describe -o json: %d %v %q", code, err, out)
	}
	out, errOut, code = runBinary(t, dev.URL, "topic", "alter", "orders", "--retention-bytes", "4096")
	if code != 0 || !strings.Contains(out, "topic orders: retention 1h0m0s, 4096 bytes per partition") {
		t.Fatalf("topic alter: %d %q %q", code, out, errOut)
	}
	out, _, code = runBinary(t, dev.URL, "topic", "describe", "orders", "-o", "json")
	var altered struct {
		RetentionMS    int64 `json:"retention_ms"`
		RetentionBytes int64 `json:"retention_bytes"`
		StoredBytes    int64 `json:"stored_bytes"`
		Objects        int64 `json:"objects"`
		PartitionStats []struct {
			StoredBytes int64 `json:"stored_bytes"`
		} `json:"partition_stats"`
	}
	if err := json.Unmarshal([]byte(out), &altered); code != 0 || err != nil || altered.RetentionMS != 3600000 || altered.RetentionBytes != 4096 ||
		altered.Objects != 1 || altered.StoredBytes == 0 || altered.PartitionStats[2].StoredBytes != altered.StoredBytes {
		t.Fatalf("describe after alter: %d %v %q", code, err, out)
	}
	_, errOut, code = runBinary(t, dev.URL, "topic", "alter", "orders")
	if code != 1 || !strings.Contains(errOut, "nothing to change") {
		t.Fatalf("alter without flags: %d %q", code, errOut)
	}
	_, errOut, code = runBinary(t, dev.URL, "topic", "alter", "orders", "--retention-bytes", "-1")
	if code != 1 || !strings.Contains(errOut, "invalid_request") || !strings.Contains(errOut, "retention_bytes") {
		t.Fatalf("alter with negative bytes: %d %q", code, errOut)
	}
	_, errOut, code = runBinary(t, dev.URL, "topic", "alter", "nope", "--retention", "1m")
	if code != 1 || !strings.Contains(errOut, "topic_not_found") {
		t.Fatalf("alter unknown topic: %d %q", code, errOut)
	}
	var joined struct {
		MemberID   string `json:"member_id"`
		SessionKey string `json:"session_key"`
	}
	if code := doJSON(t, "POST", dev.URL+"/v1/groups/billing/members", map[string]any{"topics": []string{"orders"}}, &joined); code != http.StatusCreated {
		t.Fatalf("join: %d", code)
	}
	out, _, code = runBinary(t, dev.URL, "group", "describe", "billing")
	if code != 0 || !strings.Contains(out, "group billing: 1 member, total lag 1, offset reset earliest") || !strings.Contains(out, "LOG START") {
		t.Fatalf("group describe: %d %q", code, out)
	}
	out, _, code = runBinary(t, dev.URL, "group", "list", "-o", "json")
	if code != 0 || strings.TrimSpace(out) != "{\n  \"groups\": [\n    \"billing\"\n  ]\n}" {
		t.Fatalf("group list -o json: %d %q", code, out)
	}
	_, errOut, code = runBinary(t, dev.URL, "group", "describe", "nobody")
	if code != 1 || !strings.Contains(errOut, "group_not_found") {
		t.Fatalf("describe unknown group: %d %q", code, errOut)
	}
	_, errOut, code = runBinary(t, dev.URL, "group", "delete", "billing")
	if code != 1 || !strings.Contains(errOut, "group_not_empty") {
		t.Fatalf("delete a group with a live member: %d %q", code, errOut)
	}
	if code := memberJSON(t, "DELETE", dev.URL+"/v1/groups/billing/members/"+joined.MemberID, joined.SessionKey, nil, nil); code != http.StatusNoContent {
		t.Fatalf("leave: %d", code)
	}
	out, _, code = runBinary(t, dev.URL, "group", "delete", "billing")
	if code != 0 || !strings.Contains(out, "deleted group billing") {
		t.Fatalf("group delete: %d %q", code, out)
	}
	_, errOut, code = runBinary(t, dev.URL, "group", "delete", "billing")
	if code != 1 || !strings.Contains(errOut, "group_not_found") {
		t.Fatalf("delete a deleted group: %d %q", code, errOut)
	}
	_, errOut, code = runBinary(t, dev.URL, "topic", "delete", "nope")
	if code != 1 || !strings.Contains(errOut, "topic_not_found") {
		t.Fatalf("delete unknown topic: %d %q", code, errOut)
	}
	_, errOut, code = runBinary(t, dev.URL, "topic", "create", "bad name", "--partitions", "1")
	if code != 1 || !strings.Contains(errOut, "invalid_request") {
		t.Fatalf("create with a bad name: %d %q", code, errOut)
	}
	_, errOut, code = runBinary(t, "http://127.0.0.1:1", "topic", "list")
	if code != 1 || errOut == "" {
		t.Fatalf("list against no server: %d %q", code, errOut)
	}
	_, errOut, code = runBinary(t, dev.URL, "topic", "describe", "nope")
	if code != 1 || !strings.Contains(errOut, "topic_not_found") {
		t.Fatalf("describe unknown: %d %q", code, errOut)
	}
	_, errOut, code = runBinary(t, dev.URL, "topic", "list", "-o", "yaml")
	if code != 1 || !strings.Contains(errOut, "want table or json") {
		t.Fatalf("bad -o: %d %q", code, errOut)
	}
	out, _, code = runBinary(t, dev.URL, "topic", "delete", "orders")
	if code != 0 || !strings.Contains(out, "deleted topic orders") {
		t.Fatalf("topic delete: %d %q", code, out)
	}
	out, _, code = runBinary(t, dev.URL, "completion", "bash")
	if code != 0 || !strings.Contains(out, "mamba") {
		t.Fatalf("completion bash: %d", code)
	}
}
