package recovery

import (
	"encoding/binary"
	"errors"
	"flag"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mambamq/mamba/internal/tooling/fuzzcorpus"
	"github.com/mambamq/mamba/metadata"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the committed fuzz seed corpus under testdata/fuzz")

// seed is one committed input of FuzzDecodeCheckpoint, which reads each
// input both as a checkpoint and as the snapshot encoding inside one:
// valid-* seeds decode one way or the other, and every other seed fails
// both ways.
type seed struct {
	name string
	data []byte
}

func checkpointSeeds(tb testing.TB) []seed {
	encode := func(snap *metadata.Snapshot) []byte {
		b, err := EncodeCheckpoint(snap)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	sample := encode(sampleSnapshot())
	raw := appendSnapshot(nil, sampleSnapshot())
	flipped := slices.Clone(sample)
	flipped[len(flipped)-1] ^= 1
	hostile := slices.Clone(sample)
	binary.BigEndian.PutUint64(hostile[20:], MaxSnapshotBytes)
	return []seed{
		{"valid-sample", sample},
		{"valid-empty", encode(&metadata.Snapshot{Time: time.UnixMilli(1)})},
		{"valid-raw-sample", raw},
		{"valid-raw-empty", []byte{2, 0, 0}},
		{"edge-empty", nil},
		{"edge-header-only", sample[:CheckpointHeaderSize]},
		{"edge-truncated", sample[:len(sample)-1]},
		{"edge-trailing-byte", append(slices.Clone(sample), 0)},
		{"edge-bad-payload-crc", flipped},
		{"edge-hostile-raw-length", resign(hostile)},
		{"edge-raw-truncated", raw[:len(raw)-1]},
		{"edge-raw-trailing-byte", append(slices.Clone(raw), 0)},
		{"edge-raw-hostile-count", []byte{0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"edge-raw-string-past-end", []byte("0\x02\a000000")},
		{"edge-raw-hostile-partitions", []byte{0, 1, 1, 't', 1, 'i', 0xff, 0xff, 0x03, 0, 0}},
	}
}

// decodeEither decodes b as a checkpoint, or failing that as a snapshot
// encoding of either version.
func decodeEither(b []byte) (*metadata.Snapshot, error) {
	snap, err := DecodeCheckpoint(b)
	if err == nil {
		return snap, nil
	}
	for _, v := range []byte{checkpointVersion, 1} {
		if snap, rerr := decodeSnapshot(b, v); rerr == nil {
			return snap, nil
		}
	}
	return nil, err
}

func FuzzDecodeCheckpoint(f *testing.F) {
	for _, s := range checkpointSeeds(f) {
		f.Add(s.data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		// Mutations rarely survive zstd and the CRCs: read b as the
		// snapshot inside a checkpoint too.
		if len(b) > 0 {
			checkDecode(t, wrapRaw(b))
		}
	})
}

// checkDecode decodes b and checks that a checkpoint that decodes encodes
// again to one that decodes to the same snapshot.
func checkDecode(t *testing.T, b []byte) {
	snap, err := DecodeCheckpoint(b)
	if err != nil {
		if !errors.Is(err, ErrCorruptCheckpoint) {
			t.Fatalf("error does not wrap ErrCorruptCheckpoint: %v", err)
		}
		return
	}
	again, err := EncodeCheckpoint(snap)
	if err != nil {
		t.Fatalf("encode a decoded checkpoint: %v", err)
	}
	snap2, err := DecodeCheckpoint(again)
	if err != nil {
		t.Fatalf("decode a re-encoded checkpoint: %v", err)
	}
	if !reflect.DeepEqual(snap, snap2) {
		t.Fatalf("re-encoded checkpoint differs:\n got %+v\nwant %+v", snap2, snap)
	}
}

// TestFuzzCorpus checks the committed seed corpus; -update-corpus
// rewrites it from checkpointSeeds.
func TestFuzzCorpus(t *testing.T) {
	var seeds []fuzzcorpus.Seed
	for _, sd := range checkpointSeeds(t) {
		seeds = append(seeds, fuzzcorpus.Seed{Name: sd.name, Data: sd.data})
	}
	fuzzcorpus.Check(t, "FuzzDecodeCheckpoint", seeds, *updateCorpus,
		func(b []byte) error { _, err := decodeEither(b); return err }, ErrCorruptCheckpoint)
}
