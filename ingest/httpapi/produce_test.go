package httpapi

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/wire"
)

func TestAPIProduceJSON(t *testing.T) {
	at := newAPITest(t, Options{})
	body := `{"records":[
		{"value":"plain"},
		{"key":"","value":"empty key","partition":0,"timestamp":1700000000000},
		{"key":"user-7","value":"ü","headers":{"z":"last","a":"first","m":""},"partition":3},
		{"key":null,"value":"null key","partition":null}
	]}`
	rec := at.do("POST", "/v1/topics/orders/records", strings.NewReader(body), append(jsonHeader(), "Idempotency-Key", "req-1")...)
	if rec.Code != 200 {
		t.Fatalf("produce: %d %s", rec.Code, rec.Body)
	}
	call := at.svc.lastProduce(t)
	want := []ingest.ProduceRecord{
		{Partition: ingest.AnyPartition, Value: []byte("plain")},
		{Partition: 0, Key: []byte{}, Value: []byte("empty key"), Timestamp: 1700000000000},
		{Partition: 3, Key: []byte("user-7"), Value: []byte("ü"), Headers: []chunk.Header{{Name: "a", Value: []byte("first")}, {Name: "m", Value: []byte{}}, {Name: "z", Value: []byte("last")}}},
		{Partition: ingest.AnyPartition, Value: []byte("null key")},
	}
	checkProduced(t, call.records, want)
	if call.topic != "orders" || call.opts != (ingest.ProduceOptions{IdempotencyKey: "req-1", Ack: ingest.AckDurable}) {
		t.Errorf("Produce(%q, opts %+v)", call.topic, call.opts)
	}
	if got, want := rec.Body.String(), `{"records":[{"partition":0,"offset":100},{"partition":0,"offset":101},{"partition":3,"offset":102},{"partition":0,"offset":103}]}`+"\n"; got != want {
		t.Errorf("body = %s, want %s", got, want)
	}

	// The same with every byte string in base64, under ack=buffered.
	b64 := base64.StdEncoding.EncodeToString
	body = fmt.Sprintf(`{"records":[{"key":%q,"value":%q,"headers":{"h":%q}},{"value":""}]}`, b64([]byte{0, 0xff}), b64([]byte("v")), b64([]byte{0x80}))
	rec = at.do("POST", "/v1/topics/orders/records?format=base64&ack=buffered", strings.NewReader(body), jsonHeader()...)
	if rec.Code != 202 {
		t.Fatalf("produce base64: %d %s", rec.Code, rec.Body)
	}
	call = at.svc.lastProduce(t)
	checkProduced(t, call.records, []ingest.ProduceRecord{
		{Partition: ingest.AnyPartition, Key: []byte{0, 0xff}, Value: []byte("v"), Headers: []chunk.Header{{Name: "h", Value: []byte{0x80}}}},
		{Partition: ingest.AnyPartition},
	})
	if call.opts.Ack != ingest.AckBuffered {
		t.Errorf("ack = %v, want ingest.AckBuffered", call.opts.Ack)
	}
	if got, want := rec.Body.String(), `{"records":[{"partition":0,"offset":-1},{"partition":0,"offset":-1}]}`+"\n"; got != want {
		t.Errorf("buffered body = %s, want %s", got, want)
	}
}

// checkProduced compares records, telling nil keys from empty ones.
func checkProduced(t *testing.T, got, want []ingest.ProduceRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("Produce got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if (g.Key == nil) != (w.Key == nil) || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) ||
			g.Partition != w.Partition || g.Timestamp != w.Timestamp || !sameHeaders(g.Headers, w.Headers) {
			t.Errorf("record %d = %+v (key nil %v), want %+v (key nil %v)", i, g, g.Key == nil, w, w.Key == nil)
		}
	}
}

func sameHeaders(a, b []chunk.Header) bool {
	return slices.EqualFunc(a, b, func(x, y chunk.Header) bool { return x.Name == y.Name && bytes.Equal(x.Value, y.Value) })
}

func TestAPIProduceBinary(t *testing.T) {
	at := newAPITest(t, Options{})
	in := []wire.ProduceRecord{
		{Partition: -1, Value: []byte("no key")},
		{Partition: 2, Key: []byte{}, Value: []byte{0xff}, Timestamp: -3},
		{Partition: -1, Key: []byte("k"), Headers: []wire.Header{{Name: "b", Value: []byte("1")}, {Name: "a", Value: []byte("2")}, {Name: "b", Value: []byte("3")}}},
	}
	body := wire.AppendProduceRequest(nil, in)
	at.svc.produceFn = func(records []ingest.ProduceRecord, opts ingest.ProduceOptions) ([]ingest.RecordResult, error) {
		out := make([]ingest.RecordResult, len(records))
		for i := range records {
			out[i] = ingest.RecordResult{Partition: int32(i), Offset: int64(1000 + i)}
		}
		return out, nil
	}
	for _, accept := range []string{wire.ContentType, "application/json", "", "application/json, " + wire.ContentType + ";q=0.5", wire.ContentType + ";q=0"} {
		rec := at.do("POST", "/v1/topics/orders/records", bytes.NewReader(body), "Content-Type", wire.ContentType, "Accept", accept)
		if rec.Code != 200 {
			t.Fatalf("Accept %q: %d %s", accept, rec.Code, rec.Body)
		}
		checkProduced(t, at.svc.lastProduce(t).records, []ingest.ProduceRecord{
			{Partition: ingest.AnyPartition, Value: []byte("no key")},
			{Partition: 2, Key: []byte{}, Value: []byte{0xff}, Timestamp: -3},
			// Binary headers keep their order and repeats.
			{Partition: ingest.AnyPartition, Key: []byte("k"), Headers: []chunk.Header{{Name: "b", Value: []byte("1")}, {Name: "a", Value: []byte("2")}, {Name: "b", Value: []byte("3")}}},
		})
		want := []wire.ProduceResult{{Partition: 0, Offset: 1000}, {Partition: 1, Offset: 1001}, {Partition: 2, Offset: 1002}}
		binary := strings.HasPrefix(accept, wire.ContentType) && !strings.HasSuffix(accept, "q=0") || strings.HasSuffix(accept, "q=0.5")
		if binary {
			if ct := rec.Header().Get("Content-Type"); ct != wire.ContentType {
				t.Fatalf("Accept %q: Content-Type %q", accept, ct)
			}
			got, err := wire.DecodeProduceResponse(rec.Body.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Accept %q: results %+v, want %+v", accept, got, want)
			}
			continue
		}
		if got, want := rec.Body.String(), `{"records":[{"partition":0,"offset":1000},{"partition":1,"offset":1001},{"partition":2,"offset":1002}]}`+"\n"; got != want {
			t.Errorf("Accept %q: body %s, want %s", accept, got, want)
		}
	}
}

func TestAPIProduceResultCountMismatchIsInternal(t *testing.T) {
	at := newAPITest(t, Options{})
	at.svc.produceFn = func([]ingest.ProduceRecord, ingest.ProduceOptions) ([]ingest.RecordResult, error) { return nil, nil }
	rec := at.do("POST", "/v1/topics/orders/records", strings.NewReader(`{"records":[{"value":"v"}]}`), jsonHeader()...)
	if rec.Code != 500 || errorOf(t, rec).Code != "internal" {
		t.Fatalf("got %d %s, want 500 internal", rec.Code, rec.Body)
	}
}

func TestAPIBodyLimit(t *testing.T) {
	const limit = 100
	at := newAPITest(t, Options{MaxRequestBytes: limit})
	fits := `{"records":[{"value":"` + strings.Repeat("x", limit-len(`{"records":[{"value":""}]}`)) + `"}]}`
	over := fits[:len(fits)-4] + `x"}]}`
	for _, tc := range []struct {
		name    string
		body    string
		chunked bool
		status  int
	}{
		{"at the limit", fits, false, 200},
		{"over the limit, Content-Length", over, false, 413},
		{"at the limit, chunked", fits, true, 200},
		{"over the limit, chunked", over, true, 413},
	} {
		var body io.Reader = strings.NewReader(tc.body)
		if tc.chunked {
			body = struct{ io.Reader }{body} // hides the length
		}
		req := httptest.NewRequest("POST", "/v1/topics/orders/records", body)
		req.Header.Set("Content-Type", "application/json")
		if got := req.ContentLength; (got == -1 || got == 0) != tc.chunked {
			t.Fatalf("%s: test request has Content-Length %d", tc.name, got)
		}
		rec := httptest.NewRecorder()
		at.handler.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Fatalf("%s: status %d, want %d: %s", tc.name, rec.Code, tc.status, rec.Body)
		}
		if tc.status == 413 {
			if e := errorOf(t, rec); e.Code != "payload_too_large" || !strings.Contains(e.Message, "100") {
				t.Errorf("%s: %+v", tc.name, e)
			}
		}
	}
}

func TestAPIRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&ingest.OverloadedError{RetryAfter: 0}, "1"},
		{&ingest.OverloadedError{RetryAfter: 10 * time.Millisecond}, "1"},
		{&ingest.OverloadedError{RetryAfter: time.Second}, "1"},
		{&ingest.OverloadedError{RetryAfter: time.Second + time.Nanosecond}, "2"},
		{fmt.Errorf("accept: %w", &ingest.OverloadedError{RetryAfter: 2500 * time.Millisecond}), "3"},
		{&ingest.OverloadedError{RetryAfter: time.Minute}, "60"},
		{ingest.ErrOverloaded, "1"},
	} {
		at := newAPITest(t, Options{})
		at.svc.errs["Produce"] = tc.err
		rec := at.do("POST", "/v1/topics/orders/records", strings.NewReader(`{"records":[{"value":"v"}]}`), jsonHeader()...)
		if rec.Code != 429 || rec.Header().Get("Retry-After") != tc.want {
			t.Errorf("%v: status %d, Retry-After %q, want 429 and %q", tc.err, rec.Code, rec.Header().Get("Retry-After"), tc.want)
		}
	}
}

// TestAPIHeadersRequestIsSorted checks that JSON headers reach the service
// sorted by name, whatever their order in the body.
func TestAPIHeadersRequestIsSorted(t *testing.T) {
	at := newAPITest(t, Options{})
	names := []string{"x-9", "b", "a", "trace", "Z", "é"}
	var parts []string
	for _, n := range names {
		parts = append(parts, strconv.Quote(n)+`:"v"`)
	}
	at.do("POST", "/v1/topics/orders/records", strings.NewReader(`{"records":[{"value":"v","headers":{`+strings.Join(parts, ",")+`}}]}`), jsonHeader()...)
	var got []string
	for _, h := range at.svc.lastProduce(t).records[0].Headers {
		got = append(got, h.Name)
	}
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Errorf("header order %q, want %q", got, want)
	}
}

// TestAPIProduceHeaderList checks the list form of JSON headers: order
// and repeated keys are kept, values follow format=base64, and a
// malformed list is refused naming the headers.
func TestAPIProduceHeaderList(t *testing.T) {
	at := newAPITest(t, Options{})
	body := `{"records":[
		{"value":"v","headers":[{"key":"b","value":"1"},{"key":"a","value":"2"},{"key":"b","value":""}]},
		{"value":"none","headers":[]},
		{"value":"null","headers":null}
	]}`
	rec := at.do("POST", "/v1/topics/orders/records", strings.NewReader(body), jsonHeader()...)
	if rec.Code != 200 {
		t.Fatalf("produce: %d %s", rec.Code, rec.Body)
	}
	checkProduced(t, at.svc.lastProduce(t).records, []ingest.ProduceRecord{
		{Partition: ingest.AnyPartition, Value: []byte("v"), Headers: []chunk.Header{{Name: "b", Value: []byte("1")}, {Name: "a", Value: []byte("2")}, {Name: "b", Value: []byte{}}}},
		{Partition: ingest.AnyPartition, Value: []byte("none")},
		{Partition: ingest.AnyPartition, Value: []byte("null")},
	})

	b64 := base64.StdEncoding.EncodeToString
	body = fmt.Sprintf(`{"records":[{"value":"","headers":[{"key":"h","value":%q},{"key":"h","value":%q}]}]}`, b64([]byte{0x80}), b64([]byte("x")))
	rec = at.do("POST", "/v1/topics/orders/records?format=base64", strings.NewReader(body), jsonHeader()...)
	if rec.Code != 200 {
		t.Fatalf("produce base64: %d %s", rec.Code, rec.Body)
	}
	checkProduced(t, at.svc.lastProduce(t).records, []ingest.ProduceRecord{
		{Partition: ingest.AnyPartition, Value: []byte{}, Headers: []chunk.Header{{Name: "h", Value: []byte{0x80}}, {Name: "h", Value: []byte("x")}}},
	})

	for _, tc := range []struct {
		name, query, headers, inMessage string
	}{
		{"unknown field", "", `[{"key":"a","value":"x","name":"a"}]`, "headers"},
		{"number value", "", `[{"key":"a","value":5}]`, "headers"},
		{"string", "", `"a=b"`, "headers"},
		{"list of strings", "", `["a"]`, "headers"},
		{"bad base64", "?format=base64", `[{"key":"a","value":"eA=="},{"key":"a","value":"%"}]`, "records[0].headers[1].value"},
	} {
		rec := at.do("POST", "/v1/topics/orders/records"+tc.query, strings.NewReader(`{"records":[{"value":"","headers":`+tc.headers+`}]}`), jsonHeader()...)
		if rec.Code != 400 {
			t.Errorf("%s: status %d, want 400: %s", tc.name, rec.Code, rec.Body)
			continue
		}
		if e := errorOf(t, rec); e.Code != "invalid_request" || !strings.Contains(e.Message, tc.inMessage) {
			t.Errorf("%s: %+v, want invalid_request naming %q", tc.name, e, tc.inMessage)
		}
	}
}

// TestAPIProduceReleasesBinaryBodies checks that a binary body reaches
// the service with a Release (which the service calls once, accepted or
// refused) and a JSON body, whose records are copies, without one.
func TestAPIProduceReleasesBinaryBodies(t *testing.T) {
	at := newAPITest(t, Options{})
	var released []bool
	at.svc.produceFn = func(records []ingest.ProduceRecord, opts ingest.ProduceOptions) ([]ingest.RecordResult, error) {
		return make([]ingest.RecordResult, len(records)), nil
	}
	binary := wire.AppendProduceRequest(nil, []wire.ProduceRecord{{Partition: -1, Value: bytes.Repeat([]byte("v"), 100<<10)}})
	post := func(contentType string, body []byte) int {
		before := at.svc.releases
		rec := at.do("POST", "/v1/topics/orders/records", bytes.NewReader(body), "Content-Type", contentType)
		released = append(released, at.svc.releases == before+1)
		return rec.Code
	}
	if code := post(wire.ContentType, binary); code != 200 || !released[0] {
		t.Errorf("binary produce: status %d, released %v; want 200 and one release", code, released[0])
	}
	at.svc.errs["Produce"] = &ingest.OverloadedError{}
	if code := post(wire.ContentType, binary); code != 429 || !released[1] {
		t.Errorf("refused binary produce: status %d, released %v; want 429 and one release", code, released[1])
	}
	delete(at.svc.errs, "Produce")
	if code := post("application/json", []byte(`{"records":[{"value":"v"}]}`)); code != 200 || released[2] {
		t.Errorf("JSON produce: status %d, released %v; want 200 and no Release", code, released[2])
	}
}

// TestAPIProduceAdmissionBeforeBody checks that the handler asks the
// service's admission with the announced length before it reads a body,
// and answers its refusal without calling Submit. A body of unknown
// length is left to Submit.
func TestAPIProduceAdmissionBeforeBody(t *testing.T) {
	at := newAPITest(t, Options{})
	at.svc.errs["AdmitProduce"] = &ingest.OverloadedError{RetryAfter: 3 * time.Second}
	body := `{"records":[{"value":"v"}]}`
	rec := at.do("POST", "/v1/topics/orders/records", strings.NewReader(body), jsonHeader()...)
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "3" {
		t.Fatalf("status %d, Retry-After %q; want 429 and 3", rec.Code, rec.Header().Get("Retry-After"))
	}
	if !slices.Equal(at.svc.admitted, []int64{int64(len(body))}) || slices.Contains(at.svc.calls, "Produce") {
		t.Errorf("admitted %v, calls %v; want one admission of %d bytes and no Submit", at.svc.admitted, at.svc.calls, len(body))
	}

	delete(at.svc.errs, "AdmitProduce")
	at.svc.admitted = nil
	req := httptest.NewRequest("POST", "/v1/topics/orders/records", struct{ io.Reader }{strings.NewReader(body)})
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	at.handler.ServeHTTP(w, req)
	if w.Code != 200 || len(at.svc.admitted) != 0 {
		t.Errorf("chunked body: status %d, admitted %v; want 200 and no admission", w.Code, at.svc.admitted)
	}
}
