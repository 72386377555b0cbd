package httpapi

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/wire"
)

// FuzzDecodeJSONRecords checks the streaming JSON produce decoder against
// encoding/json decoding the whole body: whatever the input, it never
// panics, every error is a 400 or 413, and a body it accepts is one the
// whole-body decoder accepts too, with the same records.
func FuzzDecodeJSONRecords(f *testing.F) {
	for _, s := range []string{
		`{"records":[{"value":"v"}]}`,
		`{"records":[{"key":"k","value":"v","headers":{"a":"b"},"partition":1,"timestamp":5}]}`,
		`{"records":[{"key":null,"value":"","headers":[{"key":"a","value":"b"},{"key":"a","value":"c"}]}]}`,
		`{"records":null}`,
		`{"records":[]}`,
		`{"records":[{"value":"dg=="}]}`,
		`{"records":[{"value":5}]}`,
		`[]`,
		`{"records":[{}],"extra":1}`,
		`{"records":[{"value":"a"}]} x`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, b64 bool) {
		got, err := decodeJSONRecords(body, b64, nil)
		if err != nil {
			if !errors.Is(err, ingest.ErrInvalidRequest) && !errors.Is(err, ingest.ErrTooLarge) {
				t.Fatalf("error %v is neither invalid_request nor payload_too_large", err)
			}
			return
		}
		if len(got) > wire.MaxRecords {
			t.Fatalf("%d records accepted, over %d", len(got), wire.MaxRecords)
		}
		var req apiProduceRequest
		if err := decodeJSONBody(body, &req); err != nil {
			t.Fatalf("streaming decoder accepted %q, whole-body decoder refused it: %v", body, err)
		}
		if len(req.Records) != len(got) {
			t.Fatalf("%d records, whole-body decoder has %d", len(got), len(req.Records))
		}
		for i, in := range req.Records {
			want, err := decodeJSONRecord(in, b64, i)
			if err != nil {
				t.Fatalf("record %d: whole-body conversion failed: %v", i, err)
			}
			if !reflect.DeepEqual(normalize(want), normalize(got[i])) {
				t.Fatalf("record %d: %+v, whole-body decoder %+v", i, got[i], want)
			}
		}
	})
}

// normalize makes empty and nil byte slices compare equal, as the node
// treats them (only a key tells nil from empty).
func normalize(r ingest.ProduceRecord) ingest.ProduceRecord {
	if len(r.Value) == 0 {
		r.Value = nil
	}
	if r.Key != nil && len(r.Key) == 0 {
		r.Key = []byte{}
	}
	return r
}

// TestJSONRecordCountRefusedWhileDecoding checks that a JSON body of more
// records than a request may hold, or more headers, is refused with 413
// without decoding past the limit.
func TestJSONRecordCountRefusedWhileDecoding(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`{"records":[`)
	for i := range wire.MaxRecords + 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{}`)
	}
	b.WriteString(`]}`)
	if _, err := decodeJSONRecords(b.Bytes(), false, nil); !errors.Is(err, ingest.ErrTooLarge) || !strings.Contains(err.Error(), "records") {
		t.Errorf("%d records: %v, want payload_too_large", wire.MaxRecords+1, err)
	}

	b.Reset()
	b.WriteString(`{"records":[`)
	for r := range 11 {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"headers":[`)
		for h := range 100_000 {
			if h > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"key":"h","value":""}`)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}`)
	if _, err := decodeJSONRecords(b.Bytes(), false, nil); !errors.Is(err, ingest.ErrTooLarge) || !strings.Contains(err.Error(), "records[10]") {
		t.Errorf("1.1 M headers: %v, want payload_too_large at records[10]", err)
	}
}

// BenchmarkDecodeJSONRecords compares the streaming decoder with decoding
// the whole body first (what the node did before), on a body of 1,000
// keyed records of 100-byte values with one header each.
func BenchmarkDecodeJSONRecords(b *testing.B) {
	var body bytes.Buffer
	body.WriteString(`{"records":[`)
	for i := range 1000 {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(`{"key":"customer-` + strings.Repeat("7", 4) + `","value":"` + strings.Repeat("v", 100) + `","headers":{"source":"web"}}`)
	}
	body.WriteString(`]}`)
	b.Run("streaming", func(b *testing.B) {
		b.SetBytes(int64(body.Len()))
		for b.Loop() {
			if _, err := decodeJSONRecords(body.Bytes(), false, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("whole-body", func(b *testing.B) {
		b.SetBytes(int64(body.Len()))
		for b.Loop() {
			var req apiProduceRequest
			if err := decodeJSONBody(body.Bytes(), &req); err != nil {
				b.Fatal(err)
			}
			out := make([]ingest.ProduceRecord, len(req.Records))
			for i, in := range req.Records {
				rec, err := decodeJSONRecord(in, false, i)
				if err != nil {
					b.Fatal(err)
				}
				out[i] = rec
			}
		}
	})
}
