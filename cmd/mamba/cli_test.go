package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// runCLI runs the mamba command line in-process, as main does, and
// returns its stdout, stderr and exit code.
func runCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := run(args, strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

func TestUnreachableServerIsOneLine(t *testing.T) {
	url := testserver.RefusedURL(t)
	want := "mamba: cannot reach " + url + ": connection refused\n"
	for _, tc := range []struct {
		stdin string
		args  []string
		bound time.Duration
	}{
		{"", []string{"topic", "list"}, 5 * time.Second},
		{"", []string{"topic", "describe", "orders"}, 5 * time.Second},
		{"", []string{"group", "list"}, 5 * time.Second},
		{"a\nb\n", []string{"produce", "orders"}, 5 * time.Second},
		{"a\n", []string{"produce", "orders", "--partition", "0", "--timeout", "500ms"}, 500 * time.Millisecond},
		{"", []string{"consume", "orders"}, 5 * time.Second},
		{"", []string{"consume", "orders", "--follow", "--timeout", "300ms"}, 300 * time.Millisecond},
		{"", []string{"consume", "orders", "--group", "billing", "--follow"}, 5 * time.Second},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			start := time.Now()
			_, errOut, code := runCLI(t, tc.stdin, append(tc.args, "--url", url)...)
			elapsed := time.Since(start)
			if code != 1 || errOut != want {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, errOut, want)
			}
			// The bound plus room for a loaded machine.
			if elapsed > tc.bound+2*time.Second {
				t.Fatalf("took %v, bound %v", elapsed, tc.bound)
			}
		})
	}
}

func TestConsumeEveryPartition(t *testing.T) {
	dev := testserver.StartMambaDev(t, t.TempDir())
	if _, errOut, code := runCLI(t, "", "topic", "create", "spread", "--partitions", "3", "--url", dev.URL); code != 0 {
		t.Fatalf("topic create: %d %q", code, errOut)
	}
	for p := range 3 {
		in := fmt.Sprintf("k%d:a%d\nk%d:b%d\nk%d:c%d\n", p, p, p, p, p, p)
		args := []string{"produce", "spread", "--key-sep", ":", "--partition", fmt.Sprint(p), "--url", dev.URL}
		if p == 1 {
			args = append(args, "-H", "source=cli")
		}
		if _, errOut, code := runCLI(t, in, args...); code != 0 {
			t.Fatalf("produce to %d: %d %q", p, code, errOut)
		}
	}

	// JSON: all 9 records, each naming its partition, in order within it.
	out, errOut, code := runCLI(t, "", "consume", "spread", "-o", "json", "--url", dev.URL)
	if code != 0 {
		t.Fatalf("consume -o json: %d %q", code, errOut)
	}
	recs := parseJSONLines(t, out)
	if len(recs) != 9 {
		t.Fatalf("consume -o json: %d records, want 9: %q", len(recs), out)
	}
	next := map[int32]int64{}
	for _, r := range recs {
		want := fmt.Sprintf("%c%d", "abc"[next[r.Partition]], r.Partition)
		if r.Topic != "spread" || r.Offset != next[r.Partition] || r.Value != want || r.Key == nil || *r.Key != fmt.Sprintf("k%d", r.Partition) {
			t.Fatalf("record %+v, want offset %d value %q", r, next[r.Partition], want)
		}
		next[r.Partition]++
	}
	if len(next) != 3 || next[0] != 3 || next[1] != 3 || next[2] != 3 {
		t.Fatalf("records per partition: %v", next)
	}

	// Text: the same 9, each line starting with its partition.
	out, errOut, code = runCLI(t, "", "consume", "spread", "--url", dev.URL)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	slices.Sort(lines)
	var want []string
	for p := range 3 {
		for i, v := range []string{"a", "b", "c"} {
			hdrs := ""
			if p == 1 {
				hdrs = "headers={source=\"cli\"}\t"
			}
			want = append(want, fmt.Sprintf("%d\t%d\tkey=\"k%d\"\t%s%s%d", p, i, p, hdrs, v, p))
		}
	}
	if code != 0 || !slices.Equal(lines, want) {
		t.Fatalf("consume text: %d %q %q, want lines %q", code, out, errOut, want)
	}

	// Each JSON line is the API's fetch record plus topic and partition.
	var api struct {
		Records []map[string]any `json:"records"`
	}
	if code := doJSON(t, "GET", dev.URL+"/v1/topics/spread/partitions/1/records?offset=0", nil, &api); code != 200 || len(api.Records) != 3 {
		t.Fatalf("fetch: %d %+v", code, api)
	}
	out, _, _ = runCLI(t, "", "consume", "spread", "-p", "1", "-o", "json", "--url", dev.URL)
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatal(err)
		}
		if got["topic"] != "spread" || got["partition"] != 1.0 {
			t.Fatalf("line %q: topic and partition", line)
		}
		delete(got, "topic")
		delete(got, "partition")
		if !reflect.DeepEqual(got, api.Records[i]) {
			t.Fatalf("consume -o json line %d:\n%v\nthe API's record:\n%v", i, got, api.Records[i])
		}
	}

	// --partition picks one; -p is the same flag.
	for _, flag := range []string{"--partition", "-p"} {
		out, errOut, code = runCLI(t, "", "consume", "spread", flag, "2", "-o", "json", "--url", dev.URL)
		recs = parseJSONLines(t, out)
		if code != 0 || len(recs) != 3 || recs[0].Partition != 2 || recs[2].Value != "c2" {
			t.Fatalf("consume %s 2: %d %q %q", flag, code, out, errOut)
		}
	}
	// --max across partitions, and a partition past the end.
	out, _, code = runCLI(t, "", "consume", "spread", "--max", "4", "--url", dev.URL)
	if code != 0 || strings.Count(out, "\n") != 4 {
		t.Fatalf("consume --max 4: %d %q", code, out)
	}
	// --follow waits past the end of every partition for new records.
	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		var stdout, stderr strings.Builder
		code := run([]string{"consume", "spread", "--follow", "--max", "11", "--url", dev.URL}, strings.NewReader(""), &stdout, &stderr)
		done <- result{stdout.String(), stderr.String(), code}
	}()
	for _, p := range []string{"0", "2"} {
		if _, errOut, code := runCLI(t, "late"+p+"\n", "produce", "spread", "-p", p, "--url", dev.URL); code != 0 {
			t.Fatalf("produce late record: %d %q", code, errOut)
		}
	}
	select {
	case r := <-done:
		if r.code != 0 || strings.Count(r.out, "\n") != 11 || !strings.Contains(r.out, "0\t3\tkey=<null>\tlate0\n") || !strings.Contains(r.out, "2\t3\tkey=<null>\tlate2\n") {
			t.Fatalf("consume --follow --max 11: %d %q %q", r.code, r.out, r.errOut)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("consume --follow --max 11 did not end after 11 records")
	}

	_, errOut, code = runCLI(t, "", "consume", "spread", "-p", "3", "--url", dev.URL)
	if code != 1 || errOut != "mamba: partition 3 not found: topic spread has 3 partitions\n" {
		t.Fatalf("consume -p 3: %d %q", code, errOut)
	}
}

func TestUnknownSubcommandFails(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"topic", "lsit"}, "mamba: unknown command \"lsit\" for \"mamba topic\". Did you mean this? list\n"},
		{[]string{"group", "descibe"}, "mamba: unknown command \"descibe\" for \"mamba group\". Did you mean this? describe\n"},
		{[]string{"topic", "zzz"}, "mamba: unknown command \"zzz\" for \"mamba topic\"\n"},
		{[]string{"consme"}, "mamba: unknown command \"consme\" for \"mamba\". Did you mean this? consume\n"},
	} {
		out, errOut, code := runCLI(t, "", tc.args...)
		if code != 1 || errOut != tc.want || out != "" {
			t.Errorf("mamba %v: exit %d, stdout %q, stderr %q; want 1 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	// A command that only groups subcommands still prints its help.
	out, errOut, code := runCLI(t, "", "topic")
	if code != 0 || !strings.Contains(out, "Available Commands:") || errOut != "" {
		t.Errorf("mamba topic: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestErrorsSayItOnce(t *testing.T) {
	dev := testserver.StartMambaDev(t, t.TempDir())
	_, errOut, code := runCLI(t, "", "topic", "describe", "nope", "--url", dev.URL)
	if code != 1 || errOut != "mamba: topic nope: topic not found (404 topic_not_found)\n" {
		t.Fatalf("describe an unknown topic: %d %q", code, errOut)
	}
	out, errOut, code := runCLI(t, "", "topic", "create", "single", "--partitions", "1", "--url", dev.URL)
	if code != 0 || !strings.HasPrefix(out, "created topic single with 1 partition, ") {
		t.Fatalf("create a 1-partition topic: %d %q %q", code, out, errOut)
	}
	out, errOut, code = runCLI(t, "a\n", "produce", "single", "--url", dev.URL)
	if code != 0 || !strings.HasPrefix(out, "produced 1 record (1 bytes) to single") {
		t.Fatalf("produce one record: %d %q %q", code, out, errOut)
	}
	out, errOut, code = runCLI(t, "", "topic", "describe", "single", "--url", dev.URL)
	if code != 0 || !strings.HasPrefix(out, "topic single: 1 partition, ") || !strings.Contains(out, ", 1 record\n") {
		t.Fatalf("describe a 1-partition topic: %d %q %q", code, out, errOut)
	}

	// Text output tells a record without a key from one with an empty key.
	if _, errOut, code := runCLI(t, ":empty\n", "produce", "single", "--key-sep", ":", "--url", dev.URL); code != 0 {
		t.Fatalf("produce with an empty key: %d %q", code, errOut)
	}
	out, errOut, code = runCLI(t, "", "consume", "single", "--url", dev.URL)
	if code != 0 || out != "0\t0\tkey=<null>\ta\n0\t1\tkey=\"\"\tempty\n" {
		t.Fatalf("consume null and empty keys: %d %q %q", code, out, errOut)
	}
}
