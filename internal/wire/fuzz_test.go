package wire

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/mambamq/mamba/internal/tooling/fuzzcorpus"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the committed fuzz seed corpus under testdata/fuzz")

// seed is one committed fuzz input. Seeds named valid-* must decode, and
// every other seed must fail to decode.
type seed struct {
	name string
	data []byte
}

func produceRequestSeeds() []seed {
	one := AppendProduceRequest(nil, []ProduceRecord{{Partition: -1, Key: []byte("k"), Value: []byte("v")}})
	mixed := AppendProduceRequest(nil, []ProduceRecord{
		{Partition: -1, Value: []byte("no key")},
		{Partition: 0, Key: []byte{}, Value: []byte("empty key"), Timestamp: 1700000000000},
		{Partition: math.MaxInt32, Key: []byte{0xff, 0}, Timestamp: math.MinInt64, Headers: []Header{{Name: "trace", Value: []byte("abc")}, {Name: "trace"}, {Name: "ü", Value: []byte{0xfe}}}},
		{Partition: 3, Timestamp: math.MaxInt64, Value: []byte(strings.Repeat("x", 300))},
	})
	return []seed{
		{"valid-empty-list", AppendProduceRequest(nil, nil)},
		{"valid-one-record", one},
		{"valid-mixed", mixed},
		{"edge-empty", nil},
		{"edge-preamble-only", mixed[:preambleSize]},
		{"edge-other-kind", AppendFetchResponse(nil, FetchResponse{})},
		{"edge-truncated", mixed[:len(mixed)-1]},
		{"edge-trailing-byte", append(one[:len(one):len(one)], 0)},
		{"edge-hostile-count", []byte{'M', 1, 'P', 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0}},
		{"edge-partition-below-any", []byte{'M', 1, 'P', 1, 3, 0, 0, 0, 0}},
		{"edge-header-name-not-utf8", []byte{'M', 1, 'P', 1, 1, 0, 0, 0, 1, 1, 0xff, 0}},
	}
}

func produceResponseSeeds() []seed {
	some := AppendProduceResponse(nil, []ProduceResult{{Partition: 0, Offset: 0}, {Partition: 7, Offset: 1 << 40}, {Partition: math.MaxInt32, Offset: math.MaxInt64}})
	return []seed{
		{"valid-empty-list", AppendProduceResponse(nil, nil)},
		{"valid-some", some},
		{"valid-buffered", AppendProduceResponse(nil, []ProduceResult{{Partition: 2, Offset: -1}, {Partition: -1, Offset: -1}})},
		{"edge-empty", nil},
		{"edge-truncated", some[:len(some)-1]},
		{"edge-trailing-byte", append(some[:len(some):len(some)], 0)},
		{"edge-hostile-count", []byte{'M', 1, 'A', 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0}},
		{"edge-offset-below-minus-one", []byte{'M', 1, 'A', 1, 0, 3}},
	}
}

func fetchResponseSeeds() []seed {
	full := AppendFetchResponse(nil, FetchResponse{NextOffset: 103, HighWatermark: 200, LogStartOffset: 50, Records: []FetchRecord{
		{Offset: 100, Timestamp: 1700000000000, Key: []byte("k"), Value: []byte("v")},
		{Offset: 101, Key: []byte{}, Headers: []Header{{Name: "a", Value: []byte("1")}, {Name: "a", Value: []byte("2")}}},
		{Offset: 102, Timestamp: -5, Value: []byte{0, 0xff, 0xfe}},
	}})
	return []seed{
		{"valid-no-records", AppendFetchResponse(nil, FetchResponse{NextOffset: 7, HighWatermark: 7, LogStartOffset: 0})},
		{"valid-records", full},
		{"edge-empty", nil},
		{"edge-truncated", full[:len(full)-1]},
		{"edge-trailing-byte", append(full[:len(full):len(full)], 0)},
		{"edge-negative-offset", []byte{'M', 1, 'F', 1, 0, 0, 0}},
		{"edge-hostile-count", []byte{'M', 1, 'F', 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0}},
		{"edge-hostile-header-count", []byte{'M', 1, 'F', 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	}
}

func FuzzDecodeProduceRequest(f *testing.F) {
	for _, s := range produceRequestSeeds() {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := DecodeProduceRequest(b)
		if err != nil {
			checkMalformed(t, err)
			return
		}
		enc := AppendProduceRequest(nil, recs)
		again, err := DecodeProduceRequest(enc)
		if err != nil {
			t.Fatalf("decode re-encoded produce request: %v", err)
		}
		if !reflect.DeepEqual(again, recs) {
			t.Fatalf("re-encoded produce request decodes differently:\n got %#v\nwant %#v", again, recs)
		}
		if !bytes.Equal(AppendProduceRequest(nil, again), enc) {
			t.Fatal("encoding is not canonical: re-encoding the decoded produce request gives other bytes")
		}
	})
}

func FuzzDecodeProduceResponse(f *testing.F) {
	for _, s := range produceResponseSeeds() {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := DecodeProduceResponse(b)
		if err != nil {
			checkMalformed(t, err)
			return
		}
		enc := AppendProduceResponse(nil, res)
		again, err := DecodeProduceResponse(enc)
		if err != nil {
			t.Fatalf("decode re-encoded produce response: %v", err)
		}
		if !reflect.DeepEqual(again, res) {
			t.Fatalf("re-encoded produce response decodes differently:\n got %#v\nwant %#v", again, res)
		}
		if !bytes.Equal(AppendProduceResponse(nil, again), enc) {
			t.Fatal("encoding is not canonical: re-encoding the decoded produce response gives other bytes")
		}
	})
}

func FuzzDecodeFetchResponse(f *testing.F) {
	for _, s := range fetchResponseSeeds() {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := DecodeFetchResponse(b)
		if err != nil {
			checkMalformed(t, err)
			return
		}
		enc := AppendFetchResponse(nil, resp)
		again, err := DecodeFetchResponse(enc)
		if err != nil {
			t.Fatalf("decode re-encoded fetch response: %v", err)
		}
		if !reflect.DeepEqual(again, resp) {
			t.Fatalf("re-encoded fetch response decodes differently:\n got %#v\nwant %#v", again, resp)
		}
		if !bytes.Equal(AppendFetchResponse(nil, again), enc) {
			t.Fatal("encoding is not canonical: re-encoding the decoded fetch response gives other bytes")
		}
	})
}

func checkMalformed(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("decode error does not wrap ErrMalformed: %v", err)
	}
}

// TestFuzzCorpus checks the committed seed corpus: every seed the seed
// functions make is committed, valid-* seeds decode and the others do not.
// With -update-corpus it first rewrites the corpus from those functions.
func TestFuzzCorpus(t *testing.T) {
	for _, target := range []struct {
		name   string
		seeds  []seed
		decode func([]byte) error
	}{
		{"FuzzDecodeProduceRequest", produceRequestSeeds(), decodeRequest},
		{"FuzzDecodeProduceResponse", produceResponseSeeds(), decodeResponse},
		{"FuzzDecodeFetchResponse", fetchResponseSeeds(), decodeFetch},
	} {
		seeds := make([]fuzzcorpus.Seed, len(target.seeds))
		for i, sd := range target.seeds {
			seeds[i] = fuzzcorpus.Seed{Name: sd.name, Data: sd.data}
		}
		fuzzcorpus.Check(t, target.name, seeds, *updateCorpus, target.decode, ErrMalformed)
	}
}
