package chunk

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	big := textValue(r, 3<<20)
	random := make([]byte, 1<<20)
	for i := range random {
		random[i] = byte(r.Uint32())
	}

	manyPartitions := func() []testBatch {
		var bs []testBatch
		for p := range 40 {
			bs = append(bs, testBatch{
				spec: BatchSpec{
					Topic:     fmt.Sprintf("topic-%d", p%5),
					Partition: int32(p),
					Codec:     Codec(p % 2),
				},
				records: sampleRecords(r, 1+p%7, 10+p),
			})
		}
		return bs
	}

	tests := []struct {
		name    string
		id      string
		batches []testBatch
	}{
		{
			name: "one record, no key, no value",
			id:   "c1",
			batches: []testBatch{{
				spec:    BatchSpec{Topic: "t", Partition: 0},
				records: []Record{{}},
			}},
		},
		{
			name: "nil and empty keys and values",
			id:   "01HZX5K2T9ZQ8J6R4N7M3W2V1A",
			batches: []testBatch{
				{spec: BatchSpec{Topic: "keys", Codec: CodecNone}, records: []Record{
					{Key: nil, Value: []byte("v")},
					{Key: []byte{}, Value: []byte{}},
					{Key: []byte("k"), Value: nil},
					{Key: []byte{0}, Value: []byte{0, 0}},
				}},
				{spec: BatchSpec{Topic: "keys", Codec: CodecZstd}, records: []Record{
					{Key: []byte{}, Value: nil},
					{Key: nil, Value: []byte{}},
				}},
			},
		},
		{
			name: "headers",
			id:   "headers.chunk_1-a",
			batches: []testBatch{{
				spec: BatchSpec{Topic: "h", Partition: 3, Codec: CodecZstd},
				records: []Record{
					{Headers: []Header{{Name: "", Value: nil}}},
					{Headers: []Header{{Name: "a", Value: []byte("1")}, {Name: "a", Value: []byte("2")}, {Name: "ünïcødé ✓", Value: []byte{0xff, 0x00}}}},
					{Headers: []Header{}},
					{Key: []byte("k"), Value: []byte("v"), Headers: []Header{{Name: "only", Value: bytes.Repeat([]byte("x"), 300)}}},
				},
			}},
		},
		{
			name: "timestamp extremes",
			id:   "ts",
			batches: []testBatch{
				{spec: BatchSpec{Topic: "ts"}, records: []Record{{Timestamp: math.MinInt64}, {Timestamp: math.MaxInt64}, {Timestamp: 0}, {Timestamp: -1}}},
				{spec: BatchSpec{Topic: "ts", Codec: CodecZstd}, records: []Record{{Timestamp: 1_700_000_000_000}}},
			},
		},
		{
			name:    "many topics and partitions",
			id:      "many",
			batches: manyPartitions(),
		},
		{
			name: "idempotency keys and limits",
			id:   strings.Repeat("i", MaxIDLen),
			batches: []testBatch{
				{spec: BatchSpec{Topic: strings.Repeat("T", MaxTopicLen), Partition: math.MaxInt32, IdempotencyKey: strings.Repeat("\xff", MaxIdempotencyKeyLen)}, records: sampleRecords(r, 3, 20)},
				{spec: BatchSpec{Topic: "a", IdempotencyKey: "producer-7:seq-42", Codec: CodecZstd}, records: sampleRecords(r, 2, 5)},
				{spec: BatchSpec{Topic: "a", IdempotencyKey: ""}, records: sampleRecords(r, 1, 0)},
			},
		},
		{
			name: "large values",
			id:   "large",
			batches: []testBatch{
				{spec: BatchSpec{Topic: "big", Codec: CodecZstd}, records: []Record{{Value: big}, {Value: random}}},
				{spec: BatchSpec{Topic: "big", Codec: CodecNone}, records: []Record{{Value: random, Key: big[:1000]}}},
				{spec: BatchSpec{Topic: "big", Partition: 1, Codec: CodecZstd}, records: sampleRecords(r, 2000, 1024)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, infos := buildChunk(t, tt.id, tt.batches)
			checkChunk(t, b, tt.id, infos, tt.batches)
		})
	}
}

// checkChunk checks that b decodes to id and batches along every read path:
// the whole chunk, and header, directory and each batch range on their own.
func checkChunk(t *testing.T, b []byte, id string, infos []BatchInfo, batches []testBatch) {
	t.Helper()
	if len(infos) != len(batches) {
		t.Fatalf("Finish returned %d infos for %d batches", len(infos), len(batches))
	}
	for i, info := range infos {
		spec := batches[i].spec
		want := BatchInfo{Topic: spec.Topic, Partition: spec.Partition, Records: len(batches[i].records), IdempotencyKey: spec.IdempotencyKey, Codec: spec.Codec}
		want.MinTimestamp, want.MaxTimestamp = timestampRange(batches[i].records)
		if d := diffInfo(info, want); d != "" {
			t.Errorf("info %d: %s", i, d)
		}
	}

	c, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if c.ID() != id {
		t.Errorf("ID() = %q, want %q", c.ID(), id)
	}
	if !slices.Equal(c.Batches(), infos) {
		t.Errorf("Batches() = %+v, want %+v", c.Batches(), infos)
	}
	for i := range batches {
		got, err := c.Batch(i)
		if err != nil {
			t.Fatalf("Batch(%d): %v", i, err)
		}
		if got.Codec != batches[i].spec.Codec {
			t.Errorf("Batch(%d).Codec = %s, want %s", i, got.Codec, batches[i].spec.Codec)
		}
		if d := diffRecords(got.Records, batches[i].records); d != "" {
			t.Errorf("Batch(%d): %s", i, d)
		}
	}
	if _, err := c.Batch(len(batches)); err == nil {
		t.Errorf("Batch(%d) of %d batches succeeded", len(batches), len(batches))
	}

	// The ranged path: each read gets a fresh copy of only its range, so
	// nothing can reach outside it.
	h, err := ReadHeader(slices.Clone(b[:HeaderSize]))
	if err != nil {
		t.Fatalf("ReadHeader: %v", err)
	}
	if h.Size() != int64(len(b)) || h.Batches != len(batches) {
		t.Errorf("ReadHeader = %+v for a %d-byte chunk of %d batches", h, len(b), len(batches))
	}
	gotID, dir, err := DecodeDirectory(h, slices.Clone(b[HeaderSize:HeaderSize+h.DirectoryLength]))
	if err != nil {
		t.Fatalf("DecodeDirectory: %v", err)
	}
	if gotID != id || !slices.Equal(dir, infos) {
		t.Errorf("DecodeDirectory = %q, %+v; want %q, %+v", gotID, dir, id, infos)
	}
	for i, info := range dir {
		rng := slices.Clone(b[info.Offset : info.Offset+info.Length])
		for _, decode := range []func([]byte) (*Batch, error){DecodeBatch, info.Decode} {
			got, err := decode(rng)
			if err != nil {
				t.Fatalf("decode batch %d from its range: %v", i, err)
			}
			if d := diffRecords(got.Records, batches[i].records); d != "" {
				t.Errorf("batch %d from its range: %s", i, d)
			}
		}
	}
}

func TestDecodedRecordsDoNotOverlap(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			records := []Record{
				{Key: []byte("k1"), Value: []byte("v1"), Headers: []Header{{Name: "a", Value: []byte("x")}}},
				{Key: []byte("k2"), Value: []byte("v2"), Headers: []Header{{Name: "b", Value: []byte("y")}}},
			}
			b, _ := buildChunk(t, "c", []testBatch{{spec: BatchSpec{Topic: "t", Codec: codec}, records: records}})
			c, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Batch(0)
			if err != nil {
				t.Fatal(err)
			}
			// Appending to one decoded field must not overwrite the
			// next field or record.
			first := &got.Records[0]
			_ = append(first.Key, "XXXX"...)
			_ = append(first.Value, "XXXX"...)
			_ = append(first.Headers, Header{Name: "z"})
			_ = append(first.Headers[0].Value, "XXXX"...)
			if d := diffRecords(got.Records, records); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestWriterValidation(t *testing.T) {
	ok := BatchSpec{Topic: "t"}
	one := []Record{{Value: []byte("v")}}
	mib := make([]byte, 1<<20)
	tooBig := make([]Record, MaxBatchBytes>>20)
	for i := range tooBig {
		tooBig[i].Value = mib
	}
	half := make([]Header, MaxBatchHeaders/2+1)
	tooManyHeaders := []Record{{Headers: half}, {Headers: half}}

	for _, id := range []string{"", strings.Repeat("a", MaxIDLen+1), "a/b", "a b", "é", "a\x00"} {
		if _, err := NewWriter(id); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewWriter(%q) = %v, want ErrInvalid", id, err)
		}
	}

	tests := []struct {
		name    string
		spec    BatchSpec
		records []Record
	}{
		{"empty topic", BatchSpec{}, one},
		{"long topic", BatchSpec{Topic: strings.Repeat("t", MaxTopicLen+1)}, one},
		{"topic with slash", BatchSpec{Topic: "a/b"}, one},
		{"topic with space", BatchSpec{Topic: "a b"}, one},
		{"non-ascii topic", BatchSpec{Topic: "tøpic"}, one},
		{"negative partition", BatchSpec{Topic: "t", Partition: -1}, one},
		{"long idempotency key", BatchSpec{Topic: "t", IdempotencyKey: strings.Repeat("k", MaxIdempotencyKeyLen+1)}, one},
		{"unknown codec", BatchSpec{Topic: "t", Codec: 2}, one},
		{"no records", ok, nil},
		{"empty records", ok, []Record{}},
		{"too many records", ok, make([]Record, MaxBatchRecords+1)},
		{"payload over limit", ok, tooBig},
		{"zstd payload over limit", BatchSpec{Topic: "t", Codec: CodecZstd}, tooBig},
		{"header name not utf-8", ok, []Record{{Headers: []Header{{Name: "\xff"}}}}},
		{"too many headers", ok, tooManyHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWriter("c")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Add(ok, one); err != nil {
				t.Fatal(err)
			}
			before := w.Len()
			want, _, err := w.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Add(tt.spec, tt.records); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Add = %v, want ErrInvalid", err)
			}
			if w.Len() != before || w.Batches() != 1 {
				t.Errorf("failed Add changed the Writer: Len %d -> %d, %d batches", before, w.Len(), w.Batches())
			}
			got, _, err := w.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Error("failed Add changed the chunk")
			}
		})
	}

	w, err := NewWriter("empty")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Finish(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Finish with no batches = %v, want ErrInvalid", err)
	}
	if err := w.Reset("bad id"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Reset(bad id) = %v, want ErrInvalid", err)
	}
}

func TestWriterReset(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	w, err := NewWriter("first")
	if err != nil {
		t.Fatal(err)
	}
	first := []testBatch{
		{spec: BatchSpec{Topic: "a", Codec: CodecZstd}, records: sampleRecords(r, 10, 100)},
		{spec: BatchSpec{Topic: "b"}, records: sampleRecords(r, 5, 100)},
	}
	for _, b := range first {
		if _, err := w.Add(b.spec, b.records); err != nil {
			t.Fatal(err)
		}
	}
	b1, infos1, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	saved := slices.Clone(b1)

	if err := w.Reset("second"); err != nil {
		t.Fatal(err)
	}
	second := []testBatch{{spec: BatchSpec{Topic: "c", Partition: 9}, records: sampleRecords(r, 50, 200)}}
	for _, b := range second {
		if _, err := w.Add(b.spec, b.records); err != nil {
			t.Fatal(err)
		}
	}
	b2, infos2, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, saved) {
		t.Fatal("Reset and reuse changed an earlier Finish result")
	}
	checkChunk(t, b1, "first", infos1, first)
	checkChunk(t, b2, "second", infos2, second)
}

func TestCodecString(t *testing.T) {
	for c, want := range map[Codec]string{CodecNone: "none", CodecZstd: "zstd", 7: "codec(7)"} {
		if got := c.String(); got != want {
			t.Errorf("Codec(%d).String() = %q, want %q", uint8(c), got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, topic := range []string{"a", "A-z_0.9", strings.Repeat("x", MaxTopicLen)} {
		if err := ValidateTopic(topic); err != nil {
			t.Errorf("ValidateTopic(%q) = %v", topic, err)
		}
	}
	for _, id := range []string{"a", "01HZX5K2T9ZQ8J6R4N7M3W2V1A", strings.Repeat("x", MaxIDLen)} {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
}

// TestWriterReserve checks that a chunk laid out in place, in room that
// Reserve left, is byte for byte the chunk a Writer without Reserve
// builds, whether the reservation was exact, too small or too large, and
// that nothing the Writer does afterwards changes a chunk it returned.
func TestWriterReserve(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	batches := []testBatch{
		{spec: BatchSpec{Topic: "orders", Partition: 1}, records: sampleRecords(r, 20, 300)},
		{spec: BatchSpec{Topic: "orders", Partition: 2, IdempotencyKey: "k-1"}, records: sampleRecords(r, 3, 50)},
		{spec: BatchSpec{Topic: "logs", Codec: CodecZstd}, records: sampleRecords(r, 30, 200)},
	}
	want, wantInfos := buildChunk(t, "c1", batches)
	exactDir := 0
	for _, b := range batches {
		exactDir += EntrySize(b.spec.Topic, b.spec.IdempotencyKey)
	}
	for _, tc := range []struct {
		name            string
		dirBytes, bytes int
	}{
		{"exact", exactDir, len(want)},
		{"large", exactDir + 1000, 2 * len(want)},
		{"small directory", exactDir - 1, 10},
		{"none", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWriter("c1")
			if err != nil {
				t.Fatal(err)
			}
			w.Reserve(tc.dirBytes, tc.bytes)
			for _, b := range batches {
				if _, err := w.Add(b.spec, b.records); err != nil {
					t.Fatal(err)
				}
			}
			got, infos, err := w.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) || !slices.Equal(infos, wantInfos) {
				t.Fatal("chunk differs from the one built without Reserve")
			}
			saved := slices.Clone(got)
			// More batches and a second Finish, then a new chunk in the
			// same Writer, with a fresh reservation.
			late := testBatch{spec: BatchSpec{Topic: "late"}, records: sampleRecords(r, 5, 100)}
			if _, err := w.Add(late.spec, late.records); err != nil {
				t.Fatal(err)
			}
			again, againInfos, err := w.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Reset("c2"); err != nil {
				t.Fatal(err)
			}
			w.Reserve(exactDir, len(want))
			for _, b := range batches {
				if _, err := w.Add(b.spec, b.records); err != nil {
					t.Fatal(err)
				}
			}
			third, thirdInfos, err := w.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, saved) {
				t.Fatal("a later Add, Finish, Reset or Reserve changed an earlier Finish result")
			}
			checkChunk(t, got, "c1", infos, batches)
			checkChunk(t, again, "c1", againInfos, append(slices.Clone(batches), late))
			checkChunk(t, third, "c2", thirdInfos, batches)
		})
	}
}
