package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// runBinaryStdin is runBinary with stdin.
func runBinaryStdin(t *testing.T, url, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(testserver.MambaBinary(t), args...)
	cmd.Env = append(os.Environ(), "MAMBA_URL="+url)
	cmd.Stdin = strings.NewReader(stdin)
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

type consumedJSON struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Offset    int64   `json:"offset"`
	Timestamp int64   `json:"timestamp"`
	Key       *string `json:"key"`
	Value     string  `json:"value"`
	Headers   []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"headers"`
	Encoding string `json:"encoding"`
}

func parseJSONLines(t *testing.T, out string) []consumedJSON {
	t.Helper()
	var recs []consumedJSON
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r consumedJSON
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func TestProduceAndConsume(t *testing.T) {
	dev := testserver.StartMambaDev(t, t.TempDir())
	if _, errOut, code := runBinary(t, dev.URL, "topic", "create", "events", "--partitions", "2"); code != 0 {
		t.Fatalf("topic create: %d %q", code, errOut)
	}

	// Keys and values split at ":", two headers, all to partition 1.
	out, errOut, code := runBinaryStdin(t, dev.URL, "k1:one\nk2:two\r\nk3:three\nk4:four", "produce", "events", "--key-sep", ":", "-H", "source=test", "--header", "trace=a=b", "--partition", "1")
	if code != 0 || !strings.Contains(out, "produced 4 records (") || !strings.Contains(out, "to events in") || !strings.Contains(out, "records/s") {
		t.Fatalf("produce: %d %q %q", code, out, errOut)
	}
	// A line without the separator fails alone, and produce exits 1.
	out, errOut, code = runBinaryStdin(t, dev.URL, "k5:five\nnokey\n", "produce", "events", "--key-sep", ":", "--partition", "1", "-o", "json")
	var sum produceSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil || code != 1 || sum.Records != 1 || sum.Failed != 1 || !strings.Contains(errOut, "line 2: no key separator") {
		t.Fatalf("produce with a bad line: %d %v %q %q", code, err, out, errOut)
	}

	// Partition 1 from the oldest offset, as JSON.
	out, errOut, code = runBinary(t, dev.URL, "consume", "events", "--partition", "1", "-o", "json")
	recs := parseJSONLines(t, out)
	if code != 0 || len(recs) != 5 {
		t.Fatalf("consume -o json: %d %q %q", code, out, errOut)
	}
	for i, want := range []string{"one", "two", "three", "four", "five"} {
		r := recs[i]
		if r.Topic != "events" || r.Partition != 1 || r.Offset != int64(i) || r.Value != want || r.Key == nil || *r.Key != "k"+string(rune('1'+i)) || r.Timestamp < time.Now().Add(-time.Hour).UnixMilli() || r.Timestamp > time.Now().UnixMilli() || r.Encoding != "" {
			t.Fatalf("record %d: %+v", i, r)
		}
		if i < 4 && (len(r.Headers) != 2 || r.Headers[0].Key != "source" || r.Headers[0].Value != "test" || r.Headers[1].Key != "trace" || r.Headers[1].Value != "a=b") {
			t.Fatalf("record %d headers: %+v", i, r.Headers)
		}
	}

	// Text from an offset, --max, and --value-only.
	out, _, code = runBinary(t, dev.URL, "consume", "events", "-p", "1", "--offset", "2", "--max", "2")
	if code != 0 || out != "1\t2\tkey=\"k3\"\theaders={source=\"test\", trace=\"a=b\"}\tthree\n1\t3\tkey=\"k4\"\theaders={source=\"test\", trace=\"a=b\"}\tfour\n" {
		t.Fatalf("consume text --offset 2 --max 2: %d %q", code, out)
	}
	out, _, code = runBinary(t, dev.URL, "consume", "events", "-p", "1", "--value-only")
	if code != 0 || out != "one\ntwo\nthree\nfour\nfive\n" {
		t.Fatalf("consume --value-only: %d %q", code, out)
	}
	out, _, code = runBinary(t, dev.URL, "consume", "events", "-p", "1", "--offset", "newest")
	if code != 0 || out != "" {
		t.Fatalf("consume --offset newest: %d %q", code, out)
	}
	out, _, code = runBinary(t, dev.URL, "consume", "events", "-p", "0")
	if code != 0 || out != "" {
		t.Fatalf("consume an empty partition: %d %q", code, out)
	}

	// Binary values come out as base64; a keyless record has a null key.
	bin := []byte{0xff, 0x00, 0xfe}
	if code := doJSON(t, "POST", dev.URL+"/v1/topics/events/records?format=base64", map[string]any{"records": []map[string]any{{"value": base64.StdEncoding.EncodeToString(bin), "partition": 0}}}, nil); code != http.StatusOK {
		t.Fatalf("produce binary: %d", code)
	}
	out, _, code = runBinary(t, dev.URL, "consume", "events", "-p", "0", "-o", "json")
	recs = parseJSONLines(t, out)
	if code != 0 || len(recs) != 1 || recs[0].Encoding != "base64" || recs[0].Key != nil || recs[0].Value != base64.StdEncoding.EncodeToString(bin) {
		t.Fatalf("consume binary: %d %q", code, out)
	}

	// As a group: everything once, then nothing, since it committed.
	out, errOut, code = runBinary(t, dev.URL, "consume", "events", "--group", "audit", "--max", "3")
	if code != 0 || len(strings.Split(strings.TrimSpace(out), "\n")) != 3 {
		t.Fatalf("consume --group --max 3: %d %q %q", code, out, errOut)
	}
	out2, errOut, code := runBinary(t, dev.URL, "consume", "events", "-g", "audit", "-o", "json")
	recs = parseJSONLines(t, out2)
	if code != 0 || len(recs) != 3 {
		t.Fatalf("consume --group, the rest: %d %q %q (first run %q)", code, out2, errOut, out)
	}
	out, _, code = runBinary(t, dev.URL, "group", "describe", "audit")
	if code != 0 || !strings.Contains(out, "group audit: 0 members, total lag 0") {
		t.Fatalf("group after consume: %d %q", code, out)
	}
	out, _, code = runBinary(t, dev.URL, "consume", "events", "-g", "audit")
	if code != 0 || out != "" {
		t.Fatalf("consume --group at the end: %d %q", code, out)
	}

	// From a file, with one key for all.
	path := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(path, []byte("x\ny\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runBinary(t, dev.URL, "produce", "events", "--file", path, "--key", "same", "-o", "json")
	if err := json.Unmarshal([]byte(out), &sum); err != nil || code != 0 || sum.Records != 2 || sum.Bytes != 2*(4+1) {
		t.Fatalf("produce --file: %d %v %q %q", code, err, out, errOut)
	}

	// Errors carry the server's code.
	out, errOut, code = runBinaryStdin(t, dev.URL, "a\nb\n", "produce", "nope")
	if code != 1 || !strings.Contains(errOut, "topic_not_found") || !strings.Contains(out, "2 failed") {
		t.Fatalf("produce to an unknown topic: %d %q %q", code, out, errOut)
	}
	_, errOut, code = runBinary(t, dev.URL, "consume", "nope")
	if code != 1 || !strings.Contains(errOut, "topic_not_found") {
		t.Fatalf("consume an unknown topic: %d %q", code, errOut)
	}
	_, errOut, code = runBinary(t, dev.URL, "consume", "events", "-p", "7")
	if code != 1 || !strings.Contains(errOut, "partition 7 not found") {
		t.Fatalf("consume an unknown partition: %d %q", code, errOut)
	}
	_, errOut, code = runBinary(t, dev.URL, "consume", "events", "-g", "x", "-p", "1")
	if code != 1 || !strings.Contains(errOut, "exclusive") {
		t.Fatalf("--group with --partition: %d %q", code, errOut)
	}
}
