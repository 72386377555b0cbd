package wire

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// randBytes returns nil or random bytes; decoded values are nil when
// empty, so the generators only make nil for empty values.
func randBytes(r *rand.Rand, max int) []byte {
	n := r.IntN(max + 1)
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randKey returns nil, an empty key or random bytes.
func randKey(r *rand.Rand) []byte {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	return randBytes(r, 40)
}

func randHeaders(r *rand.Rand) []Header {
	n := r.IntN(4)
	if n == 0 {
		return nil
	}
	hs := make([]Header, n)
	for i := range hs {
		hs[i] = Header{Name: []string{"", "h", "trace-id", "ü", "h"}[r.IntN(5)], Value: randBytes(r, 20)}
	}
	return hs
}

func randInt64(r *rand.Rand) int64 {
	switch r.IntN(4) {
	case 0:
		return 0
	case 1:
		return math.MinInt64
	case 2:
		return math.MaxInt64
	}
	return r.Int64() - r.Int64()
}

func randProduceRequest(r *rand.Rand) []ProduceRecord {
	n := r.IntN(6)
	if n == 0 {
		return nil
	}
	recs := make([]ProduceRecord, n)
	for i := range recs {
		recs[i] = ProduceRecord{
			Partition: []int32{-1, 0, 7, math.MaxInt32}[r.IntN(4)],
			Timestamp: randInt64(r),
			Key:       randKey(r),
			Value:     randBytes(r, 100),
			Headers:   randHeaders(r),
		}
	}
	return recs
}

func randProduceResponse(r *rand.Rand) []ProduceResult {
	n := r.IntN(6)
	if n == 0 {
		return nil
	}
	res := make([]ProduceResult, n)
	for i := range res {
		res[i] = ProduceResult{Partition: []int32{-1, 0, 3, math.MaxInt32}[r.IntN(4)], Offset: []int64{-1, 0, 1 << 40, math.MaxInt64}[r.IntN(4)]}
	}
	return res
}

func randFetchResponse(r *rand.Rand) FetchResponse {
	resp := FetchResponse{NextOffset: r.Int64(), HighWatermark: r.Int64(), LogStartOffset: r.Int64()}
	n := r.IntN(6)
	for range n {
		resp.Records = append(resp.Records, FetchRecord{
			Offset:    r.Int64N(1 << 50),
			Timestamp: randInt64(r),
			Key:       randKey(r),
			Value:     randBytes(r, 100),
			Headers:   randHeaders(r),
		})
	}
	return resp
}

// TestRoundTrip checks decode(encode(x)) == x on random messages, keeping
// nil and empty keys apart, and that encoding the decoded message gives the
// same bytes.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		reqs := randProduceRequest(r)
		b := AppendProduceRequest(nil, reqs)
		got, err := DecodeProduceRequest(b)
		if err != nil {
			t.Fatalf("%d: DecodeProduceRequest: %v", i, err)
		}
		if !reflect.DeepEqual(got, reqs) || !sameKeys(got, reqs) {
			t.Fatalf("%d: produce request round trip:\n got %#v\nwant %#v", i, got, reqs)
		}
		if again := AppendProduceRequest(nil, got); !bytes.Equal(again, b) {
			t.Fatalf("%d: re-encoded produce request differs", i)
		}

		res := randProduceResponse(r)
		b = AppendProduceResponse(nil, res)
		gotRes, err := DecodeProduceResponse(b)
		if err != nil {
			t.Fatalf("%d: DecodeProduceResponse: %v", i, err)
		}
		if !reflect.DeepEqual(gotRes, res) {
			t.Fatalf("%d: produce response round trip:\n got %#v\nwant %#v", i, gotRes, res)
		}

		resp := randFetchResponse(r)
		b = AppendFetchResponse(nil, resp)
		gotResp, err := DecodeFetchResponse(b)
		if err != nil {
			t.Fatalf("%d: DecodeFetchResponse: %v", i, err)
		}
		if !reflect.DeepEqual(gotResp, resp) {
			t.Fatalf("%d: fetch response round trip:\n got %#v\nwant %#v", i, gotResp, resp)
		}
		if again := AppendFetchResponse(nil, gotResp); !bytes.Equal(again, b) {
			t.Fatalf("%d: re-encoded fetch response differs", i)
		}
	}
}

// sameKeys reports whether the keys of a and b agree on being nil.
// reflect.DeepEqual already tells nil from empty; this states the
// property the format promises.
func sameKeys(a, b []ProduceRecord) bool {
	for i := range a {
		if (a[i].Key == nil) != (b[i].Key == nil) {
			return false
		}
	}
	return true
}

func TestEmptyValuesDecodeAsNil(t *testing.T) {
	b := AppendProduceRequest(nil, []ProduceRecord{{Key: []byte{}, Value: []byte{}, Headers: []Header{}}, {Headers: []Header{{Name: "h", Value: []byte{}}}}})
	got, err := DecodeProduceRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Key == nil || len(got[0].Key) != 0 {
		t.Errorf("empty key decoded as %#v, want non-nil empty", got[0].Key)
	}
	if got[0].Value != nil || got[0].Headers != nil {
		t.Errorf("empty value and headers decoded as %#v, %#v, want nil", got[0].Value, got[0].Headers)
	}
	if got[1].Key != nil || got[1].Headers[0].Value != nil {
		t.Errorf("no key and empty header value decoded as %#v, %#v, want nil", got[1].Key, got[1].Headers[0].Value)
	}
}

// TestDecodedSlicesAreClipped checks that appending to a decoded slice
// cannot overwrite the bytes after it.
func TestDecodedSlicesAreClipped(t *testing.T) {
	b := AppendProduceRequest(nil, []ProduceRecord{{Key: []byte("k"), Value: []byte("v")}, {Value: []byte("w")}})
	got, err := DecodeProduceRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(got[0].Key, 'X')
	_ = append(got[0].Value, 'X')
	if again, err := DecodeProduceRequest(b); err != nil || string(again[1].Value) != "w" {
		t.Fatalf("input changed by append to a decoded slice: %v %+v", err, again)
	}
}

// TestLayout pins the documented byte layout.
func TestLayout(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"produce request", AppendProduceRequest(nil, []ProduceRecord{
			{Partition: -1, Timestamp: 0, Key: nil, Value: []byte("v")},
			{Partition: 2, Timestamp: -1, Key: []byte{}, Headers: []Header{{Name: "h", Value: []byte("x")}}},
			{Partition: 64, Timestamp: 1, Key: []byte("k")},
		}), []byte{
			'M', 1, 'P', 3,
			1, 0, 0, 1, 'v', 0, // partition -1, timestamp 0, no key, value "v", no headers
			4, 1, 1, 0, 1, 1, 'h', 1, 'x', // partition 2, timestamp -1, empty key, no value, one header
			0x80, 0x01, 2, 2, 'k', 0, 0, // partition 64 (zig-zag 128), timestamp 1, key "k"
		}},
		{"produce response", AppendProduceResponse(nil, []ProduceResult{{Partition: 3, Offset: 300}, {Partition: -1, Offset: -1}}), []byte{
			'M', 1, 'A', 2,
			6, 0xd8, 0x04, // partition 3, offset 300 (zig-zag 600)
			1, 1,
		}},
		{"fetch response", AppendFetchResponse(nil, FetchResponse{NextOffset: 6, HighWatermark: 9, LogStartOffset: 0, Records: []FetchRecord{
			{Offset: 5, Timestamp: 2, Key: []byte("k"), Value: []byte("vv"), Headers: []Header{{Name: "a"}}},
		}}), []byte{
			'M', 1, 'F', 12, 18, 0, 1,
			10, 4, 2, 'k', 2, 'v', 'v', 1, 1, 'a', 0,
		}},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s:\n got % x\nwant % x", tc.name, tc.got, tc.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	req := func(body ...byte) []byte { return append([]byte{'M', 1, 'P'}, body...) }
	resp := func(body ...byte) []byte { return append([]byte{'M', 1, 'A'}, body...) }
	fetch := func(body ...byte) []byte { return append([]byte{'M', 1, 'F'}, body...) }
	valid := AppendProduceRequest(nil, []ProduceRecord{{Key: []byte("k"), Value: []byte("value")}})
	// A count one over the limit, with enough bytes behind it that only
	// the limit, not the remaining bytes, rejects it.
	tooMany := AppendProduceResponse(nil, make([]ProduceResult, MaxRecords+1))
	manyHeaders := func() []byte {
		half := make([]Header, MaxHeaders/2+1)
		return AppendProduceRequest(nil, []ProduceRecord{{Headers: half}, {Headers: half}})
	}()

	for _, tc := range []struct {
		name   string
		decode func([]byte) error
		in     []byte
		want   string
	}{
		{"empty", decodeRequest, nil, "shorter than"},
		{"short preamble", decodeRequest, []byte{'M', 1}, "shorter than"},
		{"bad magic", decodeRequest, []byte{'X', 1, 'P', 0}, "magic"},
		{"bad version", decodeRequest, []byte{'M', 2, 'P', 0}, "version 2"},
		{"response as request", decodeRequest, AppendProduceResponse(nil, nil), "kind"},
		{"request as fetch", decodeFetch, AppendProduceRequest(nil, nil), "kind"},
		{"missing count", decodeRequest, req(), "truncated varint"},
		{"truncated varint", decodeRequest, req(0x80), "truncated varint"},
		{"overflowing varint", decodeRequest, req(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), "overflows"},
		{"count beyond input", decodeRequest, req(2, 0, 0, 0, 0, 0), "can hold"},
		{"huge count", decodeRequest, req(0xff, 0xff, 0xff, 0xff, 0x0f), "can hold"},
		{"partition -2", decodeRequest, req(1, 3, 0, 0, 0, 0), "partition -2"},
		{"partition over int32", decodeRequest, req(1, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, 0), "partition 2147483648"},
		{"key beyond input", decodeRequest, req(1, 1, 0, 9, 0, 0), "key: length 8"},
		{"value beyond input", decodeRequest, req(1, 1, 0, 0, 5, 'v', 0), "value: length 5"},
		{"header count beyond input", decodeRequest, req(1, 1, 0, 0, 0, 3, 0, 0), "header count 3"},
		{"header name not UTF-8", decodeRequest, req(1, 1, 0, 0, 0, 1, 1, 0xff, 0), "not valid UTF-8"},
		{"truncated record", decodeRequest, valid[:len(valid)-1], "record 0: header count: truncated varint"},
		{"trailing byte", decodeRequest, append(valid[:len(valid):len(valid)], 0), "1 trailing bytes"},
		{"too many headers", decodeRequest, manyHeaders, "over the limit of 1048576 headers"},
		{"result partition -2", decodeResponse, resp(1, 3, 0), "partition -2"},
		{"result offset -2", decodeResponse, resp(1, 0, 3), "offset -2"},
		{"too many results", decodeResponse, tooMany, "over the limit of 1048576"},
		{"response trailing byte", decodeResponse, resp(0, 0), "trailing"},
		{"negative next offset", decodeFetch, fetch(1, 0, 0, 0), "next offset -1"},
		{"negative high watermark", decodeFetch, fetch(0, 1, 0, 0), "high watermark -1"},
		{"negative log start", decodeFetch, fetch(0, 0, 1, 0), "log start offset -1"},
		{"negative record offset", decodeFetch, fetch(0, 0, 0, 1, 1, 0, 0, 0, 0), "offset -1"},
		{"fetch truncated", decodeFetch, fetch(0, 0, 0, 1, 0, 0, 0, 0), "can hold"},
	} {
		err := tc.decode(tc.in)
		if err == nil {
			t.Errorf("%s: decoded without error", tc.name)
			continue
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error does not wrap ErrMalformed: %v", tc.name, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
		if limit := strings.HasPrefix(tc.name, "too many"); errors.Is(err, ErrLimit) != limit {
			t.Errorf("%s: errors.Is(err, ErrLimit) = %v, want %v", tc.name, !limit, limit)
		}
	}
}

func decodeRequest(b []byte) error  { _, err := DecodeProduceRequest(b); return err }
func decodeResponse(b []byte) error { _, err := DecodeProduceResponse(b); return err }
func decodeFetch(b []byte) error    { _, err := DecodeFetchResponse(b); return err }

// TestAppendProduceRecordByRecord checks that a request built record by
// record, into a buffer with room to spare, decodes to its records.
func TestAppendProduceRecordByRecord(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 200 {
		recs := randProduceRequest(r)
		b := AppendProduceRequestStart(make([]byte, 0, 1<<16), len(recs))
		for j := range recs {
			b = AppendProduceRecord(b, &recs[j])
		}
		got, err := DecodeProduceRequest(b)
		if err != nil {
			t.Fatalf("%d: DecodeProduceRequest: %v", i, err)
		}
		if !reflect.DeepEqual(got, recs) || !sameKeys(got, recs) {
			t.Fatalf("%d: record-by-record request round trip:\n got %#v\nwant %#v", i, got, recs)
		}
	}
}

// TestAppendFetchRecordByRecord checks that a fetch response built record
// by record decodes to its records.
func TestAppendFetchRecordByRecord(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 200 {
		resp := randFetchResponse(r)
		b := AppendFetchResponseStart(nil, resp, len(resp.Records))
		for j := range resp.Records {
			b = AppendFetchRecord(b, &resp.Records[j])
		}
		if want := AppendFetchResponse(nil, resp); !bytes.Equal(b, want) {
			t.Fatalf("%d: record-by-record fetch response differs from AppendFetchResponse", i)
		}
		if _, err := DecodeFetchResponse(b); err != nil {
			t.Fatalf("%d: DecodeFetchResponse: %v", i, err)
		}
	}
}
