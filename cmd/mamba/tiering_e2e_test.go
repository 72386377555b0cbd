package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// tieringFlags make retention and garbage collection act within seconds:
// chunks are flushed within 20 ms (as by mamba dev), trimmed once older
// than the topic's retention (2 s here), marked once past the 4 s commit
// age limit, and deleted a grace of 1 s and a newer checkpoint later.
var tieringFlags = []string{
	"--retention-interval", "250ms", "--gc-interval", "250ms", "--gc-grace", "1s", "--gc-batch", "100",
	"--max-commit-age", "4s", "--write-timeout", "2s", "--checkpoint-interval", "500ms", "--flush-interval", "20ms",
}

// topicDescription is the part of describe's answer this test reads.
type topicDescription struct {
	StoredBytes    int64 `json:"stored_bytes"`
	Objects        int64 `json:"objects"`
	PartitionStats []struct {
		LogStartOffset int64 `json:"log_start_offset"`
		HighWatermark  int64 `json:"high_watermark"`
		StoredBytes    int64 `json:"stored_bytes"`
	} `json:"partition_stats"`
}

// Retention and garbage collection in the real binary, on each kind of
// bucket: the expired chunks of a topic whose retention is shortened to
// 2 s and the chunks of a deleted topic leave the bucket (its config goes
// with the delete itself), describe and fetch follow the rising log
// start, the metrics count the work, and records within retention (and a
// topic with a long one) read back exactly.
func TestRetentionAndGCEndToEnd(t *testing.T) {
	type setup struct {
		url string
		// count returns how many objects the bucket holds under prefix.
		count func(prefix string) int
		// jsonLog, if not empty, is a log in which every line must be one
		// of the node's JSON records: nothing a library prints past slog.
		jsonLog string
	}
	// serveOn starts MinIO, Redis and `mamba serve` on a bucket named
	// with the client the test case picks.
	serveOn := func(t *testing.T, client string) setup {
		m := testserver.StartMinIO(t)
		r := testserver.StartRedis(t, testserver.RedisOptions{})
		bucket := m.CreateBucket(t, "mamba")
		opts := testserver.MambaOptions{Env: []string{"MAMBA_BUCKET=s3://" + bucket + "?endpoint=" + m.Endpoint + "&client=" + client}}
		n := testserver.StartMambaWith(t, m, r, bucket, "node-a", opts, tieringFlags...)
		mc := m.Client(t)
		return setup{url: n.URL, jsonLog: n.LogPath(), count: func(prefix string) int {
			objects := 0
			for obj := range mc.ListObjectsIter(t.Context(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
				if obj.Err != nil {
					t.Fatalf("list %s: %v", prefix, obj.Err)
				}
				objects++
			}
			return objects
		}}
	}
	cases := []struct {
		name  string
		start func(t *testing.T) setup
	}{
		{"dev", func(t *testing.T) setup {
			dir := t.TempDir()
			n := testserver.StartMambaDev(t, dir, tieringFlags...)
			return setup{url: n.URL, count: func(prefix string) int {
				files := 0
				err := filepath.WalkDir(filepath.Join(dir, "bucket", prefix), func(_ string, d os.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						files++
					}
					if os.IsNotExist(err) {
						return nil // the prefix's directory goes with its last object
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				return files
			}}
		}},
		{"serve minio-go", func(t *testing.T) setup { return serveOn(t, "minio") }},
		{"serve aws-sdk-go-v2", func(t *testing.T) setup { return serveOn(t, "aws") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.start(t)
			checkRetentionAndGC(t, s.url, s.count)
			if s.jsonLog != "" {
				raw, err := os.ReadFile(s.jsonLog)
				if err != nil {
					t.Fatal(err)
				}
				for line := range strings.Lines(string(raw)) {
					if !strings.HasPrefix(line, "{") {
						t.Errorf("the node logged a line that is not JSON: %q", line)
					}
				}
			}
		})
	}
}

// checkRetentionAndGC runs the scenario on a node started with
// tieringFlags; count tells how many objects its bucket holds under a
// prefix.
func checkRetentionAndGC(t *testing.T, url string, count func(prefix string) int) {
	if out, errOut, code := runBinary(t, url, "topic", "create", "short", "--partitions", "2", "--retention", "1h"); code != 0 {
		t.Fatalf("topic create short: %d %q %q", code, out, errOut)
	}
	for name, retentionMS := range map[string]int64{"gone": 0, "kept": time.Hour.Milliseconds()} {
		if code := doJSON(t, "POST", url+"/v1/topics", map[string]any{"name": name, "partitions": 1, "retention_ms": retentionMS}, nil); code != http.StatusCreated {
			t.Fatalf("create %s: %d", name, code)
		}
	}
	produce := func(topic string, partition int32, values ...string) produceAnswer {
		t.Helper()
		var recs []map[string]any
		for _, v := range values {
			recs = append(recs, map[string]any{"value": v, "partition": partition})
		}
		var ans produceAnswer
		if code := doJSON(t, "POST", url+"/v1/topics/"+topic+"/records", map[string]any{"records": recs}, &ans); code != http.StatusOK || len(ans.Records) != len(values) {
			t.Fatalf("produce to %s: %d %+v", topic, code, ans)
		}
		return ans
	}
	// Each produce waits for its chunk, so every request below is a chunk
	// of its own: five of short, one of gone, one of kept.
	for i := range 5 {
		produce("short", int32(i%2), fmt.Sprintf("old-%d-a", i), fmt.Sprintf("old-%d-b", i))
	}
	produce("gone", 0, "g1", "g2")
	produce("kept", 0, "k1", "k2", "k3")
	describe := func(topic string) topicDescription {
		t.Helper()
		var d topicDescription
		if code := doJSON(t, "GET", url+"/v1/topics/"+topic, nil, &d); code != http.StatusOK {
			t.Fatalf("describe %s: %d", topic, code)
		}
		return d
	}
	before := describe("short")
	chunksBefore, goneConfigs := count("chunks/"), count("topics/gone/")
	if before.Objects != 5 || before.StoredBytes == 0 || chunksBefore != 7 || goneConfigs != 1 {
		t.Fatalf("before: short has %d objects, %d bytes; bucket has %d chunks, %d configs of gone; want 5, >0, 7, 1",
			before.Objects, before.StoredBytes, chunksBefore, goneConfigs)
	}
	// Partition 0 got three requests of two records, partition 1 two.
	if ps := before.PartitionStats; len(ps) != 2 || ps[0].LogStartOffset != 0 || ps[0].HighWatermark != 6 || ps[1].LogStartOffset != 0 || ps[1].HighWatermark != 4 {
		t.Fatalf("before: short's partitions %+v, want log starts 0 and high watermarks 6 and 4", ps)
	}
	deletedBefore := metricValue(t, url, "mamba_gc_deleted_objects_total")
	trimmedBefore := metricValue(t, url, "mamba_retention_trimmed_entries_total")
	if out, errOut, code := runBinary(t, url, "topic", "delete", "gone"); code != 0 {
		t.Fatalf("topic delete gone: %d %q %q", code, out, errOut)
	}
	// short expires from here on: shortening its retention after the
	// counts above keeps them free of races with the first pass.
	if out, errOut, code := runBinary(t, url, "topic", "alter", "short", "--retention", "2s"); code != 0 {
		t.Fatalf("topic alter short: %d %q %q", code, out, errOut)
	}

	// Retention trims short's entries; the collector then deletes its
	// chunks and gone's, and only kept's chunk stays.
	deadline := time.Now().Add(20 * time.Second)
	var after topicDescription
	var chunks int
	for {
		after, chunks = describe("short"), count("chunks/")
		// The collector counts a pass's deletions after the pass: wait for
		// the counter too.
		counted := metricValue(t, url, "mamba_gc_deleted_objects_total")-deletedBefore >= float64(chunksBefore-chunks)
		if chunks == 1 && after.Objects == 0 && count("topics/gone/") == 0 && counted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %d chunks in the bucket (want 1, kept's), %d configs of gone; short: %+v", chunks, count("topics/gone/"), after)
		}
		time.Sleep(50 * time.Millisecond) // polling the node and bucket, bounded
	}
	t.Logf("chunks %d -> %d; short: stored bytes %d -> %d, log start %v", chunksBefore, chunks, before.StoredBytes, after.StoredBytes, after.PartitionStats)
	if after.StoredBytes != 0 {
		t.Errorf("short stores %d bytes with no object", after.StoredBytes)
	}
	for p, ps := range after.PartitionStats {
		if ps.LogStartOffset != before.PartitionStats[p].HighWatermark || ps.StoredBytes != 0 {
			t.Errorf("short/%d: log start %d (want %d, the high watermark), %d bytes", p, ps.LogStartOffset, before.PartitionStats[p].HighWatermark, ps.StoredBytes)
		}
	}
	if k := describe("kept"); k.Objects != 1 {
		t.Errorf("kept refers to %d objects, want 1", k.Objects)
	}
	// gone's config went with the delete, not through the collector; the
	// counters rise by at least the chunks deleted and the entries trimmed.
	if deleted := metricValue(t, url, "mamba_gc_deleted_objects_total"); deleted-deletedBefore < float64(chunksBefore-chunks) {
		t.Errorf("mamba_gc_deleted_objects_total %v -> %v, want a rise of at least the %d chunks deleted", deletedBefore, deleted, chunksBefore-chunks)
	}
	if trimmed := metricValue(t, url, "mamba_retention_trimmed_entries_total"); trimmed-trimmedBefore != 5 {
		t.Errorf("mamba_retention_trimmed_entries_total %v -> %v, want a rise of short's 5 entries", trimmedBefore, trimmed)
	}

	// Below the log start: offset_out_of_range, naming it.
	var fail struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if code := doJSON(t, "GET", url+"/v1/topics/short/partitions/0/records?offset=0", nil, &fail); code != http.StatusBadRequest || fail.Error.Code != "offset_out_of_range" ||
		!strings.Contains(fail.Error.Message, "log start "+strconv.FormatInt(after.PartitionStats[0].LogStartOffset, 10)) {
		t.Errorf("fetch below the log start: %d %+v", code, fail)
	}
	// Records within retention read back exactly, from the new log start.
	fresh := produce("short", 0, "new-a", "new-b")
	if fresh.Records[0].Offset != after.PartitionStats[0].LogStartOffset {
		t.Errorf("new record at offset %d, want the log start %d", fresh.Records[0].Offset, after.PartitionStats[0].LogStartOffset)
	}
	readExactly(t, fmt.Sprintf("%s/v1/topics/short/partitions/0/records?offset=%d", url, fresh.Records[0].Offset), "new-a", "new-b")
	readExactly(t, url+"/v1/topics/kept/partitions/0/records?offset=0", "k1", "k2", "k3")
}

// readExactly fetches url and wants exactly the values given.
func readExactly(t *testing.T, url string, values ...string) {
	t.Helper()
	var got fetchAnswer
	if code := doJSON(t, "GET", url, nil, &got); code != http.StatusOK || len(got.Records) != len(values) {
		t.Fatalf("GET %s: %d %+v, want %q", url, code, got, values)
	}
	for i, r := range got.Records {
		if r.Value != values[i] {
			t.Errorf("GET %s: record %d is %q, want %q", url, i, r.Value, values[i])
		}
	}
}

// metricValue reads an unlabelled metric from the node's /metrics.
func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}
