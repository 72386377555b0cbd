package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/wire"
)

func TestAPIFetchJSON(t *testing.T) {
	at := newAPITest(t, Options{})
	at.svc.fetchRes = ingest.FetchResult{
		NextOffset: 13, HighWatermark: 20, LogStartOffset: 2,
		Records: []ingest.FetchedRecord{
			{Offset: 10, Record: chunk.Record{Key: []byte("k"), Value: []byte("héllo <&>"), Timestamp: 1700000000000,
				Headers: []chunk.Header{{Name: "z", Value: []byte("1")}, {Name: "a", Value: []byte("2")}, {Name: "z", Value: []byte("3")}}}},
			{Offset: 11, Record: chunk.Record{Key: nil, Value: []byte{0xff, 0x00}, Timestamp: 5}},
			{Offset: 12, Record: chunk.Record{Key: []byte{}, Value: []byte("ok"), Headers: []chunk.Header{{Name: "bin", Value: []byte{0xc3}}}}},
		},
	}
	rec := at.do("GET", "/v1/topics/orders/partitions/1/records?offset=10", nil)
	if rec.Code != 200 {
		t.Fatalf("fetch: %d %s", rec.Code, rec.Body)
	}
	want := `{"records":[` +
		`{"offset":10,"timestamp":1700000000000,"key":"k","value":"héllo <&>","headers":[{"key":"z","value":"1"},{"key":"a","value":"2"},{"key":"z","value":"3"}]},` +
		`{"offset":11,"timestamp":5,"key":null,"value":"/wA=","headers":[],"encoding":"base64"},` +
		`{"offset":12,"timestamp":0,"key":"","value":"b2s=","headers":[{"key":"bin","value":"ww=="}],"encoding":"base64"}` +
		`],"next_offset":13,"high_watermark":20,"log_start_offset":2}` + "\n"
	if rec.Body.String() != want {
		t.Errorf("body\n got %s\nwant %s", rec.Body, want)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}

	rec = at.do("GET", "/v1/topics/orders/partitions/1/records?offset=10&format=base64", nil)
	var got apiFetchResponseForTest
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for i, r := range got.Records {
		if r.Encoding != "base64" {
			t.Errorf("format=base64 record %d has encoding %q", i, r.Encoding)
		}
		v, err := base64.StdEncoding.DecodeString(r.Value)
		if err != nil || !bytes.Equal(v, at.svc.fetchRes.Records[i].Value) {
			t.Errorf("format=base64 record %d value %q does not decode to %q", i, r.Value, at.svc.fetchRes.Records[i].Value)
		}
	}
	if got.Records[1].Key != nil {
		t.Errorf("a record without a key came back with key %q", *got.Records[1].Key)
	}

	// An empty answer has an empty list, not null.
	at.svc.fetchRes = ingest.FetchResult{NextOffset: 20, HighWatermark: 20}
	rec = at.do("GET", "/v1/topics/orders/partitions/1/records?offset=20", nil)
	if want := `{"records":[],"next_offset":20,"high_watermark":20,"log_start_offset":0}` + "\n"; rec.Body.String() != want {
		t.Errorf("empty fetch = %s, want %s", rec.Body, want)
	}
}

type apiFetchResponseForTest struct {
	Records []struct {
		Offset   int64   `json:"offset"`
		Key      *string `json:"key"`
		Value    string  `json:"value"`
		Encoding string  `json:"encoding"`
	} `json:"records"`
}

func TestAPIFetchBinary(t *testing.T) {
	at := newAPITest(t, Options{})
	at.svc.fetchRes = ingest.FetchResult{
		NextOffset: 3, HighWatermark: 9, LogStartOffset: 1,
		Records: []ingest.FetchedRecord{
			{Offset: 1, Record: chunk.Record{Key: nil, Value: []byte{0xff}, Timestamp: 7}},
			{Offset: 2, Record: chunk.Record{Key: []byte{}, Headers: []chunk.Header{{Name: "h", Value: []byte("x")}, {Name: "h"}}}},
		},
	}
	rec := at.do("GET", "/v1/topics/orders/partitions/0/records?offset=1", nil, "Accept", wire.ContentType)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != wire.ContentType {
		t.Fatalf("fetch: %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	got, err := wire.DecodeFetchResponse(rec.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := wire.FetchResponse{NextOffset: 3, HighWatermark: 9, LogStartOffset: 1, Records: []wire.FetchRecord{
		{Offset: 1, Timestamp: 7, Value: []byte{0xff}},
		{Offset: 2, Key: []byte{}, Headers: []wire.Header{{Name: "h", Value: []byte("x")}, {Name: "h"}}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("binary fetch\n got %+v\nwant %+v", got, want)
	}
}

func TestAPIFetchParameters(t *testing.T) {
	at := newAPITest(t, Options{})
	at.svc.maxWait = 2 * time.Second // the node's --max-wait
	for _, tc := range []struct {
		query string
		want  ingest.FetchRequest
	}{
		{"offset=0", ingest.FetchRequest{Topic: "orders", Partition: 4, Offset: 0, MaxRecords: 1000, MaxBytes: 1 << 20, Wait: 0}},
		{"offset=42&max_records=7&max_bytes=512&wait_ms=1500", ingest.FetchRequest{Topic: "orders", Partition: 4, Offset: 42, MaxRecords: 7, MaxBytes: 512, Wait: 1500 * time.Millisecond}},
		{"offset=1&wait_ms=2000", ingest.FetchRequest{Topic: "orders", Partition: 4, Offset: 1, MaxRecords: 1000, MaxBytes: 1 << 20, Wait: 2 * time.Second}},
		{"offset=1&wait_ms=600000", ingest.FetchRequest{Topic: "orders", Partition: 4, Offset: 1, MaxRecords: 1000, MaxBytes: 1 << 20, Wait: 2 * time.Second}},
		{"offset=1&wait_ms=9223372036854775807", ingest.FetchRequest{Topic: "orders", Partition: 4, Offset: 1, MaxRecords: 1000, MaxBytes: 1 << 20, Wait: 2 * time.Second}},
	} {
		rec := at.do("GET", "/v1/topics/orders/partitions/4/records?"+tc.query, nil)
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", tc.query, rec.Code, rec.Body)
		}
		if got := at.svc.lastFetch(t); got != tc.want {
			t.Errorf("%s: Fetch(%+v), want %+v", tc.query, got, tc.want)
		}
	}
	// The default cap is the node's default, 30 s.
	at = newAPITest(t, Options{})
	at.do("GET", "/v1/topics/orders/partitions/4/records?offset=0&wait_ms=45000", nil)
	if got := at.svc.lastFetch(t).Wait; got != 30*time.Second {
		t.Errorf("default wait cap = %v, want 30s", got)
	}
}

// TestAPIFetchClientGoneCancelsLongPoll checks that the service sees the
// request's context end when the client goes away mid long-poll.
func TestAPIFetchClientGoneCancelsLongPoll(t *testing.T) {
	at := newAPITest(t, Options{})
	started := make(chan struct{})
	canceled := make(chan error, 1)
	at.svc.fetchFn = func(ctx context.Context, req ingest.FetchRequest) (ingest.FetchResult, error) {
		close(started)
		<-ctx.Done()
		canceled <- ctx.Err()
		return ingest.FetchResult{}, ctx.Err()
	}
	srv := httptest.NewServer(at.handler)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/topics/orders/partitions/0/records?offset=0&wait_ms=30000", nil)
	if err != nil {
		t.Fatal(err)
	}
	clientErr := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()
	<-started
	cancel()
	if err := <-clientErr; !errors.Is(err, context.Canceled) {
		t.Errorf("client error = %v, want context.Canceled", err)
	}
	select {
	case err := <-canceled:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("service context ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the service's context did not end after the client went away")
	}
	// The abandoned request is counted, and not logged as an error.
	srv.Close()
	if strings.Contains(at.logs.String(), "level=ERROR") || strings.Contains(at.logs.String(), "level=WARN") {
		t.Errorf("client going away was logged as a problem:\n%s", at.logs)
	}
}
