package ingest

import (
	"errors"
	"testing"

	"github.com/mambamq/mamba/chunk"
)

// The record size limit counts key + value + 16 + (name + value + 4) per
// header, as docs/api.md states: a record exactly at the limit is taken,
// one byte more is refused.
func TestRecordSizeLimitIsExact(t *testing.T) {
	c := newCluster(t)
	const limit = 1000
	n := c.node(Config{NodeID: "size", MaxRecordBytes: limit}, nil)
	ctx := t.Context()
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 10)
	headers := []chunk.Header{{Name: "trace-id", Value: make([]byte, 32)}}
	for _, tc := range []struct {
		name    string
		key     []byte
		headers []chunk.Header
		max     int // largest value taken
	}{
		{"no key, no header", nil, nil, limit - 16},
		{"10-byte key", key, nil, limit - 16 - 10},
		{"10-byte key and a header", key, headers, limit - 16 - 10 - (8 + 32 + 4)},
	} {
		rec := ProduceRecord{Key: tc.key, Headers: tc.headers, Value: make([]byte, tc.max)}
		if _, err := n.Produce(ctx, "t", []ProduceRecord{rec}, ProduceOptions{}); err != nil {
			t.Errorf("%s: value of %d bytes: %v, want it taken", tc.name, tc.max, err)
		}
		rec.Value = make([]byte, tc.max+1)
		if _, err := n.Produce(ctx, "t", []ProduceRecord{rec}, ProduceOptions{}); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: value of %d bytes: err = %v, want ErrTooLarge", tc.name, tc.max+1, err)
		}
	}
}
