package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/internal/wire"
)

func doJSON(t *testing.T, method, url string, body any, out any) int {
	t.Helper()
	return memberJSON(t, method, url, "", body, out)
}

// memberJSON is doJSON for a group member's request, with its session key
// (if not "").
func memberJSON(t *testing.T, method, url, key string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Mamba-Session-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode %d answer: %v", method, url, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

type produceAnswer struct {
	Records []struct {
		Partition int32 `json:"partition"`
		Offset    int64 `json:"offset"`
	} `json:"records"`
}

type fetchAnswer struct {
	Records []struct {
		Offset int64  `json:"offset"`
		Value  string `json:"value"`
	} `json:"records"`
	NextOffset    int64 `json:"next_offset"`
	HighWatermark int64 `json:"high_watermark"`
}

// SIGTERM while producers run: every request the node accepted is
// answered 200, and every record answered 200 is readable at its offset;
// nothing else is in the log.
func TestSIGTERMDrainsAcceptedRecords(t *testing.T) {
	m := testserver.StartMinIO(t)
	r := testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})
	bucket := m.CreateBucket(t, "mamba")
	// A long flush interval keeps records buffered when the signal lands.
	n := testserver.StartMamba(t, m, r, bucket, "draining", "--flush-interval", "1500ms")
	if code := doJSON(t, "POST", n.URL+"/v1/topics", map[string]any{"name": "orders", "partitions": 3}, nil); code != http.StatusCreated {
		t.Fatalf("create topic: %d", code)
	}

	type acked struct {
		partition int32
		offset    int64
		value     string
	}
	var mu sync.Mutex
	var acks []acked
	refused, unavailable, afterSignal := 0, 0, 0
	var signalled bool
	var wg sync.WaitGroup
	firstAcks := make(chan struct{})
	var once sync.Once
	for w := range 6 {
		wg.Go(func() {
			client := &http.Client{Timeout: 60 * time.Second}
			for i := 0; ; i++ {
				value := fmt.Sprintf("w%d-%d", w, i)
				body, _ := json.Marshal(map[string]any{"records": []map[string]any{{"value": value}}})
				resp, err := client.Post(n.URL+"/v1/topics/orders/records", "application/json", bytes.NewReader(body))
				if err != nil {
					// Refused after the listener closed, or an idle
					// connection closed before the node read the request.
					mu.Lock()
					refused++
					mu.Unlock()
					return
				}
				var ans produceAnswer
				decErr := json.NewDecoder(resp.Body).Decode(&ans)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusOK && decErr == nil && len(ans.Records) == 1:
					mu.Lock()
					acks = append(acks, acked{ans.Records[0].Partition, ans.Records[0].Offset, value})
					if signalled {
						afterSignal++
					}
					if len(acks) >= 12 {
						once.Do(func() { close(firstAcks) })
					}
					mu.Unlock()
				case resp.StatusCode == http.StatusServiceUnavailable:
					mu.Lock()
					unavailable++
					mu.Unlock()
					return
				default:
					t.Errorf("produce answered %d (%v)", resp.StatusCode, decErr)
					return
				}
			}
		})
	}
	select {
	case <-firstAcks:
	case <-time.After(30 * time.Second):
		t.Fatal("no acknowledgements within 30s")
	}
	// Signal while the node holds unanswered records.
	for deadline := time.Now().Add(30 * time.Second); bufferedBytes(t, n.URL) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the node never held unanswered records")
		}
		runtime.Gosched()
	}
	mu.Lock()
	signalled = true
	err := n.Signal(syscall.SIGTERM)
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if code := n.Wait(); code != 0 {
		t.Fatalf("mamba serve exited with %d after SIGTERM", code)
	}
	t.Logf("acknowledged %d records, %d of them answered after the signal; then %d producers were refused and %d got 503",
		len(acks), afterSignal, refused, unavailable)
	// The node held unanswered records when the signal landed: the drain
	// must have answered them.
	if afterSignal == 0 {
		t.Fatal("no request in flight at SIGTERM was answered: the node did not drain")
	}

	// A new node reads back exactly what was acknowledged.
	reader := testserver.StartMamba(t, m, r, bucket, "reader")
	want := map[[2]int64]string{}
	for _, a := range acks {
		want[[2]int64{int64(a.partition), a.offset}] = a.value
	}
	read := 0
	for p := range 3 {
		off := int64(0)
		for {
			var ans fetchAnswer
			url := fmt.Sprintf("%s/v1/topics/orders/partitions/%d/records?offset=%d", reader.URL, p, off)
			if code := doJSON(t, "GET", url, nil, &ans); code != http.StatusOK {
				t.Fatalf("fetch: %d", code)
			}
			for _, rec := range ans.Records {
				if rec.Offset != off {
					t.Fatalf("partition %d: offset %d after %d: gap", p, rec.Offset, off-1)
				}
				if w, ok := want[[2]int64{int64(p), rec.Offset}]; !ok || w != rec.Value {
					t.Fatalf("partition %d offset %d holds %q; acknowledged: %q (%v)", p, rec.Offset, rec.Value, w, ok)
				}
				off++
				read++
			}
			if off >= ans.HighWatermark {
				break
			}
		}
	}
	if read != len(acks) {
		t.Fatalf("read %d records, %d were acknowledged", read, len(acks))
	}
}

// Every client error the API defines, sent to a real node over HTTP.
func TestHTTPErrorsFromRealNode(t *testing.T) {
	m := testserver.StartMinIO(t)
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	bucket := m.CreateBucket(t, "mamba")
	n := testserver.StartMamba(t, m, r, bucket, "errors", "--max-record-bytes", "1KiB", "--max-request-bytes", "64KiB", "--flush-interval", "10ms")
	if code := doJSON(t, "POST", n.URL+"/v1/topics", map[string]any{"name": "t", "partitions": 2}, nil); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	if code := doJSON(t, "POST", n.URL+"/v1/topics/t/records", map[string]any{"records": []any{map[string]any{"value": "v", "partition": 0}}}, nil); code != http.StatusOK {
		t.Fatalf("produce: %d", code)
	}
	big := string(bytes.Repeat([]byte("x"), 2000))
	huge := string(bytes.Repeat([]byte("x"), 70<<10))
	tests := []struct {
		name, method, path, contentType, body string
		status                                int
		code                                  string
	}{
		{"topic exists", "POST", "/v1/topics", "application/json", `{"name":"t","partitions":1}`, 409, "topic_exists"},
		{"bad topic name", "POST", "/v1/topics", "application/json", `{"name":"a b","partitions":1}`, 400, "invalid_request"},
		{"too many partitions", "POST", "/v1/topics", "application/json", `{"name":"u","partitions":10001}`, 400, "invalid_request"},
		{"describe unknown topic", "GET", "/v1/topics/nope", "", "", 404, "topic_not_found"},
		{"delete unknown topic", "DELETE", "/v1/topics/nope", "", "", 404, "topic_not_found"},
		{"produce unknown topic", "POST", "/v1/topics/nope/records", "application/json", `{"records":[{"value":"v"}]}`, 404, "topic_not_found"},
		{"malformed JSON", "POST", "/v1/topics/t/records", "application/json", `{"records":[`, 400, "invalid_request"},
		{"no records", "POST", "/v1/topics/t/records", "application/json", `{"records":[]}`, 400, "invalid_request"},
		{"bad base64", "POST", "/v1/topics/t/records?format=base64", "application/json", `{"records":[{"value":"!!"}]}`, 400, "invalid_request"},
		{"partition out of range", "POST", "/v1/topics/t/records", "application/json", `{"records":[{"value":"v","partition":2}]}`, 400, "invalid_request"},
		{"record too large", "POST", "/v1/topics/t/records", "application/json", `{"records":[{"value":"` + big + `"}]}`, 413, "payload_too_large"},
		{"body too large", "POST", "/v1/topics/t/records", "application/json", `{"records":[{"value":"` + huge + `"}]}`, 413, "payload_too_large"},
		{"wrong content type", "POST", "/v1/topics/t/records", "text/plain", `v`, 415, "unsupported_media_type"},
		{"offset past the end", "GET", "/v1/topics/t/partitions/0/records?offset=5", "", "", 400, "offset_out_of_range"},
		{"unknown partition", "GET", "/v1/topics/t/partitions/9/records?offset=0", "", "", 404, "partition_not_found"},
		{"unknown route", "GET", "/v2/nothing", "", "", 404, "not_found"},
		{"wrong method", "PUT", "/v1/topics", "application/json", `{}`, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, n.URL+tt.path, bytes.NewReader([]byte(tt.body)))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("error body is not JSON: %v", err)
			}
			if resp.StatusCode != tt.status || body.Error.Code != tt.code || body.Error.Message == "" {
				t.Fatalf("%s %s = %d %+v, want %d %s with a message", tt.method, tt.path, resp.StatusCode, body.Error, tt.status, tt.code)
			}
		})
	}
}

// postProduce sends one produce request, in JSON or in the binary format,
// and returns the status and the results.
func postProduce(client *http.Client, url string, binary bool, idemKey string, values []string, keys []string) (int, []wire.ProduceResult, error) {
	var body []byte
	ctype := "application/json"
	if binary {
		ctype = wire.ContentType
		recs := make([]wire.ProduceRecord, len(values))
		for i, v := range values {
			recs[i] = wire.ProduceRecord{Partition: -1, Value: []byte(v), Headers: []wire.Header{{Name: "src", Value: []byte("bin")}}}
			if keys[i] != "" {
				recs[i].Key = []byte(keys[i])
			}
		}
		body = wire.AppendProduceRequest(nil, recs)
	} else {
		recs := make([]map[string]any, len(values))
		for i, v := range values {
			recs[i] = map[string]any{"value": v, "headers": map[string]string{"src": "json"}}
			if keys[i] != "" {
				recs[i]["key"] = keys[i]
			}
		}
		body, _ = json.Marshal(map[string]any{"records": recs})
	}
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", ctype)
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, err
	}
	if binary {
		res, err := wire.DecodeProduceResponse(raw)
		return resp.StatusCode, res, err
	}
	var ans produceAnswer
	if err := json.Unmarshal(raw, &ans); err != nil {
		return resp.StatusCode, nil, err
	}
	res := make([]wire.ProduceResult, len(ans.Records))
	for i, r := range ans.Records {
		res[i] = wire.ProduceResult{Partition: r.Partition, Offset: r.Offset}
	}
	return resp.StatusCode, res, nil
}

// fetchBinary reads one partition from offset 0 to its end, in the binary
// format.
func fetchBinary(t *testing.T, url string, partition int) []wire.FetchRecord {
	t.Helper()
	var out []wire.FetchRecord
	off := int64(0)
	for {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/topics/orders/partitions/%d/records?offset=%d&max_records=50", url, partition, off), nil)
		req.Header.Set("Accept", wire.ContentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("fetch: %d %s", resp.StatusCode, raw)
		}
		ans, err := wire.DecodeFetchResponse(raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ans.Records...)
		if ans.NextOffset >= ans.HighWatermark {
			return out
		}
		off = ans.NextOffset
	}
}

// Two node processes share one bucket and one Redis. Producers on both,
// in JSON and binary, each retrying every request once with the same
// Idempotency-Key: every acknowledged record reads back from either node at
// its offset, each partition runs from 0 without gaps or duplicates, and
// the retries appended nothing.
func TestTwoNodeProcesses(t *testing.T) {
	m := testserver.StartMinIO(t)
	r := testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})
	bucket := m.CreateBucket(t, "mamba")
	nodes := []*testserver.Mamba{
		testserver.StartMamba(t, m, r, bucket, "node-a", "--flush-interval", "20ms"),
		testserver.StartMamba(t, m, r, bucket, "node-b", "--flush-interval", "20ms", "--codec", "zstd"),
	}
	const partitions = 4
	if code := doJSON(t, "POST", nodes[0].URL+"/v1/topics", map[string]any{"name": "orders", "partitions": partitions}, nil); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	want := map[[2]int64]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			client := &http.Client{Timeout: 30 * time.Second}
			url := nodes[w%2].URL + "/v1/topics/orders/records"
			retryURL := nodes[(w+1)%2].URL + "/v1/topics/orders/records"
			binary := w%3 == 0
			for i := range 25 {
				values, keys := []string{}, []string{}
				for j := range 1 + i%3 {
					values = append(values, fmt.Sprintf("w%d-%d-%d", w, i, j))
					key := ""
					if j == 1 {
						key = fmt.Sprintf("k%d", i%5)
					}
					keys = append(keys, key)
				}
				idem := fmt.Sprintf("w%d-req%d", w, i)
				code, res, err := postProduce(client, url, binary, idem, values, keys)
				if err != nil || code != http.StatusOK || len(res) != len(values) {
					t.Errorf("produce: %d %v (%d results)", code, err, len(res))
					return
				}
				// The retry goes to the other node.
				code, again, err := postProduce(client, retryURL, binary, idem, values, keys)
				if err != nil || code != http.StatusOK || fmt.Sprint(again) != fmt.Sprint(res) {
					t.Errorf("retry with the same key: %d %v: %v, first answer %v", code, err, again, res)
					return
				}
				mu.Lock()
				for j, rr := range res {
					want[[2]int64{int64(rr.Partition), rr.Offset}] = values[j]
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, n := range nodes {
		read := 0
		for p := range partitions {
			for i, rec := range fetchBinary(t, n.URL, p) {
				if rec.Offset != int64(i) {
					t.Fatalf("%s partition %d: record %d at offset %d", n.URL, p, i, rec.Offset)
				}
				v, ok := want[[2]int64{int64(p), rec.Offset}]
				if !ok || v != string(rec.Value) {
					t.Fatalf("%s partition %d offset %d = %q, acknowledged %q (%v)", n.URL, p, rec.Offset, rec.Value, v, ok)
				}
				if len(rec.Headers) != 1 || rec.Headers[0].Name != "src" {
					t.Fatalf("headers lost: %+v", rec.Headers)
				}
				read++
			}
		}
		if read != len(want) {
			t.Fatalf("%s: read %d records, %d acknowledged (retries must append nothing)", n.URL, read, len(want))
		}
	}
}

// bufferedBytes reads the node's mamba_buffered_bytes gauge.
func bufferedBytes(t *testing.T, url string) float64 {
	t.Helper()
	return metricValue(t, url, "mamba_buffered_bytes")
}

func TestSetMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	log := slog.New(slog.DiscardHandler)
	o := defaultServeOptions()

	if err := setMemoryLimit(o, log); err != nil {
		t.Fatal(err)
	}
	if got, want := debug.SetMemoryLimit(-1), int64(ingest.DefaultMemoryBudget+memoryHeadroom); got != want {
		t.Errorf("auto limit %d, want the default memory budget + headroom = %d", got, want)
	}
	o.maxBuffered = 512 << 20 // the budget follows its shares
	if err := setMemoryLimit(o, log); err != nil {
		t.Fatal(err)
	}
	if got, want := debug.SetMemoryLimit(-1), int64((512+256+64)<<20/3*4+memoryHeadroom); got != want {
		t.Errorf("auto limit %d with --max-buffered-bytes 512MiB, want 4/3 of the shares + headroom = %d", got, want)
	}
	o.memoryBudget = 1 << 30
	if err := setMemoryLimit(o, log); err != nil {
		t.Fatal(err)
	}
	if got, want := debug.SetMemoryLimit(-1), int64(1<<30+memoryHeadroom); got != want {
		t.Errorf("auto limit %d with --memory-budget 1GiB, want the budget + headroom = %d", got, want)
	}
	o.memoryLimit = "1GiB"
	if err := setMemoryLimit(o, log); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("limit %d after --memory-limit 1GiB", got)
	}
	o.memoryLimit = "off"
	if err := setMemoryLimit(o, log); err != nil || debug.SetMemoryLimit(-1) != 1<<30 {
		t.Errorf("off: %v; want no error and the limit untouched", err)
	}
	for _, bad := range []string{"lots", "-5MiB", "0"} {
		o.memoryLimit = bad
		if err := setMemoryLimit(o, log); err == nil || !strings.Contains(err.Error(), "--memory-limit") {
			t.Errorf("--memory-limit %q: %v, want an error naming the flag", bad, err)
		}
	}
}
