package chunk

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// testBatch is one batch to add to a Writer.
type testBatch struct {
	spec    BatchSpec
	records []Record
}

// buildChunk encodes batches into one chunk named id.
func buildChunk(tb testing.TB, id string, batches []testBatch) ([]byte, []BatchInfo) {
	tb.Helper()
	w, err := NewWriter(id)
	if err != nil {
		tb.Fatalf("NewWriter(%q): %v", id, err)
	}
	for i, b := range batches {
		idx, err := w.Add(b.spec, b.records)
		if err != nil {
			tb.Fatalf("Add batch %d: %v", i, err)
		}
		if idx != i {
			tb.Fatalf("Add batch %d returned index %d", i, idx)
		}
	}
	want := w.Len()
	out, infos, err := w.Finish()
	if err != nil {
		tb.Fatalf("Finish: %v", err)
	}
	if len(out) != want {
		tb.Fatalf("Finish returned %d bytes, Len said %d", len(out), want)
	}
	return out, infos
}

// diffRecords describes the first difference between got and want, or
// returns "" when they hold the same records. A nil key differs from an
// empty one; nil and empty values and header lists do not.
func diffRecords(got, want []Record) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := &got[i], &want[i]
		switch {
		case g.Timestamp != w.Timestamp:
			return fmt.Sprintf("record %d: timestamp %d, want %d", i, g.Timestamp, w.Timestamp)
		case (g.Key == nil) != (w.Key == nil):
			return fmt.Sprintf("record %d: key nil=%t, want nil=%t", i, g.Key == nil, w.Key == nil)
		case !bytes.Equal(g.Key, w.Key):
			return fmt.Sprintf("record %d: key %q, want %q", i, g.Key, w.Key)
		case !bytes.Equal(g.Value, w.Value):
			return fmt.Sprintf("record %d: value of %d bytes differs from want's %d bytes", i, len(g.Value), len(w.Value))
		case len(g.Headers) != len(w.Headers):
			return fmt.Sprintf("record %d: %d headers, want %d", i, len(g.Headers), len(w.Headers))
		}
		for j := range g.Headers {
			gh, wh := g.Headers[j], w.Headers[j]
			if gh.Name != wh.Name || !bytes.Equal(gh.Value, wh.Value) {
				return fmt.Sprintf("record %d header %d: %q=%q, want %q=%q", i, j, gh.Name, gh.Value, wh.Name, wh.Value)
			}
		}
	}
	return ""
}

// diffInfo describes how got differs from want in the fields that do not
// depend on how the payload was encoded, or returns "".
func diffInfo(got, want BatchInfo) string {
	g, w := got, want
	g.Offset, g.Length, g.CRC = 0, 0, 0
	w.Offset, w.Length, w.CRC = 0, 0, 0
	if g != w {
		return fmt.Sprintf("got %+v, want %+v", got, want)
	}
	return ""
}

// textValue returns n bytes of log-like text that compresses about as well
// as real message payloads do.
func textValue(r *rand.Rand, n int) []byte {
	words := []string{"user", "order", "id", "status", "created", "ok", "error", "latency_ms", "region", "eu-west-1", "checkout", "cart", "true", "false"}
	var b strings.Builder
	b.Grow(n + 32)
	b.WriteByte('{')
	for b.Len() < n {
		fmt.Fprintf(&b, "%q:%d,%q:%q,", words[r.IntN(len(words))], r.IntN(100000), words[r.IntN(len(words))], words[r.IntN(len(words))])
	}
	return []byte(b.String()[:n])
}

// sampleRecords returns n varied records: keys alternate between nil, empty
// and set, and some records carry headers.
func sampleRecords(r *rand.Rand, n, valueSize int) []Record {
	records := make([]Record, n)
	for i := range records {
		rec := &records[i]
		rec.Timestamp = 1_700_000_000_000 + int64(r.IntN(100000)) - 50000
		switch i % 3 {
		case 1:
			rec.Key = []byte{}
		case 2:
			rec.Key = fmt.Appendf(nil, "key-%d", r.IntN(1000))
		}
		rec.Value = textValue(r, valueSize)
		if i%4 == 0 {
			rec.Headers = []Header{
				{Name: "trace-id", Value: fmt.Appendf(nil, "%016x", r.Uint64())},
				{Name: "empty", Value: nil},
				{Name: "trace-id", Value: []byte("duplicate names keep their order")},
			}
		}
	}
	return records
}
