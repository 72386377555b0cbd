package recovery

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/metadata"
)

// sampleSnapshot has something in every field of the encoding.
func sampleSnapshot() *metadata.Snapshot {
	return &metadata.Snapshot{
		Time: time.UnixMilli(1_763_700_000_123),
		Topics: []metadata.TopicSnapshot{
			{
				Topic: metadata.Topic{Name: "orders", ID: "01JD3V8Q3E5Z4W9K2M7N6P0R1S", Partitions: 3, RetentionMS: 86_400_000, CreatedMS: 1_763_600_000_000},
				Partitions: []metadata.PartitionSnapshot{
					{Partition: 0, HighWatermark: 7, Index: []metadata.IndexEntry{
						{BaseOffset: 0, Records: 3, ChunkID: "01JD3V8Q3E5Z4W9K2M7N6P0R1S-node-a", Offset: 120, Length: 80},
						{BaseOffset: 3, Records: 4, ChunkID: "01JD3V8Q3E5Z4W9K2M7N6P0R1T-node-b", Offset: 99, Length: 1 << 40},
					}},
					{Partition: 1},
					{Partition: 2, LogStartOffset: 1 << 50, HighWatermark: math.MaxInt64, Index: []metadata.IndexEntry{
						{BaseOffset: 1 << 50, Records: math.MaxInt32, ChunkID: "c", Offset: 1, Length: 1},
					}},
				},
				Commits: []metadata.CommitMarker{
					{ChunkID: "01JD3V8Q3E5Z4W9K2M7N6P0R1S-node-a", Result: "0,-1\n0:7\nk\t0|0;0*3", TTL: 599_999 * time.Millisecond},
					{ChunkID: "forever", Result: "", TTL: 0},
				},
				Idempotency: []metadata.IdempotencyRecord{
					{TopicID: "01JD3V8Q3E5Z4W9K2M7N6P0R1S", Key: "req:1", Value: "0|0;0*3", TTL: time.Minute},
				},
			},
			{
				Topic:      metadata.Topic{Name: "a.b_c-d", ID: "x", Partitions: 1, CreatedMS: -5},
				Partitions: []metadata.PartitionSnapshot{{Partition: 0}},
			},
		},
		Groups: []metadata.GroupSnapshot{
			{Name: "billing", Lease: 42, Offsets: []metadata.GroupOffset{{Topic: "orders", Partition: 0, Offset: 7}, {Topic: "orders", Partition: 2, Offset: -1}}},
			{Name: "idle"},
		},
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	for _, snap := range []*metadata.Snapshot{sampleSnapshot(), {Time: time.UnixMilli(0)}} {
		b, err := EncodeCheckpoint(snap)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeCheckpoint(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, snap) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, snap)
		}
	}
}

// resign returns b with both CRCs recomputed, so that a test can change a
// header field and reach the check behind the CRC.
func resign(b []byte) []byte {
	b = slices.Clone(b)
	if len(b) < CheckpointHeaderSize {
		return b
	}
	binary.BigEndian.PutUint32(b[8:], crc32.Checksum(b[CheckpointHeaderSize:], castagnoli))
	binary.BigEndian.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
	return b
}

// wrapRaw makes a checkpoint whose payload compresses raw, whatever raw
// holds, so that tests and the fuzzer reach the snapshot decoder.
func wrapRaw(raw []byte) []byte {
	enc, _ := zstdEncoder()
	b := enc.EncodeAll(raw, make([]byte, CheckpointHeaderSize))
	copy(b, checkpointMagic)
	b[4] = checkpointVersion
	binary.BigEndian.PutUint64(b[12:], uint64(len(b)-CheckpointHeaderSize))
	binary.BigEndian.PutUint64(b[20:], uint64(len(raw)))
	return resign(b)
}

func TestDecodeCheckpointRejects(t *testing.T) {
	good, err := EncodeCheckpoint(sampleSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	raw := appendSnapshot(nil, sampleSnapshot())
	edit := func(f func(b []byte)) []byte {
		b := slices.Clone(good)
		f(b)
		return resign(b)
	}
	for name, tc := range map[string]struct {
		b    []byte
		want string
	}{
		"empty":           {nil, "shorter than"},
		"header only":     {good[:CheckpointHeaderSize], "payload is 0 bytes"},
		"magic":           {edit(func(b []byte) { b[0] = 'X' }), "bad magic"},
		"version":         {edit(func(b []byte) { b[4] = 3 }), "unknown version"},
		"flags":           {edit(func(b []byte) { b[5] = 1 }), "unknown flags"},
		"reserved":        {edit(func(b []byte) { b[7] = 1 }), "reserved"},
		"header crc":      {func() []byte { b := slices.Clone(good); b[13] ^= 1; return b }(), "header crc32c"},
		"payload crc":     {func() []byte { b := slices.Clone(good); b[len(b)-1] ^= 1; return b }(), "payload crc32c"},
		"truncated":       {resign(good[:len(good)-1]), "header says"},
		"trailing byte":   {resign(append(slices.Clone(good), 0)), "header says"},
		"hostile raw len": {edit(func(b []byte) { binary.BigEndian.PutUint64(b[20:], MaxSnapshotBytes) }), "impossible"},
		"zero raw len":    {edit(func(b []byte) { binary.BigEndian.PutUint64(b[20:], 0) }), "impossible"},
		"short raw len":   {edit(func(b []byte) { binary.BigEndian.PutUint64(b[20:], uint64(len(raw)-1)) }), "decompress"},
		"long raw len":    {edit(func(b []byte) { binary.BigEndian.PutUint64(b[20:], uint64(len(raw)+1)) }), "decompressed to"},
		"not zstd": {edit(func(b []byte) {
			copy(b[CheckpointHeaderSize:], bytes.Repeat([]byte{7}, len(b)-CheckpointHeaderSize))
		}), "decompress"},
		"truncated raw":    {wrapRaw(raw[:len(raw)-1]), "truncated"},
		"trailing raw":     {wrapRaw(append(slices.Clone(raw), 0)), "after the last group"},
		"hostile count":    {wrapRaw([]byte{0, 0xff, 0xff, 0xff, 0xff, 0x0f}), "topic count"},
		"string past end":  {wrapRaw([]byte{0, 1, 7, 't'}), "string length count 7 exceeds the 1 bytes left"},
		"no partitions":    {wrapRaw([]byte{0, 1, 1, 't', 1, 'i', 0, 0, 0, 0, 0}), "partition count 0"},
		"invalid snapshot": {wrapRaw([]byte{0, 1, 1, ' ', 1, 'i', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}), "name"},
		"bad varint":       {wrapRaw(bytes.Repeat([]byte{0xff}, 11)), "varint"},
	} {
		_, err := DecodeCheckpoint(tc.b)
		if err == nil {
			t.Errorf("%s: decoded", name)
			continue
		}
		if !errors.Is(err, ErrCorruptCheckpoint) {
			t.Errorf("%s: error does not wrap ErrCorruptCheckpoint: %v", name, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", name, err, tc.want)
		}
	}
}

func TestEncodeCheckpointValidates(t *testing.T) {
	snap := sampleSnapshot()
	snap.Topics[0].Partitions = snap.Topics[0].Partitions[:2]
	if _, err := EncodeCheckpoint(snap); err == nil {
		t.Fatal("encoded a snapshot with a partition missing")
	}
}
