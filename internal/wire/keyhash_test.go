package wire

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"
)

func TestPartition(t *testing.T) {
	// Hashes of "", "a" and "foobar" are the published FNV-1a test vectors;
	// the partitions are fixed so that a change of algorithm fails here.
	for _, tc := range []struct {
		key        []byte
		sum        uint32
		partitions int
		want       int32
	}{
		{nil, 0x811c9dc5, 1, 0},
		{[]byte{}, 0x811c9dc5, 8, 5},
		{[]byte(""), 0x811c9dc5, 10000, 6261},
		{[]byte("a"), 0xe40c292c, 8, 4},
		{[]byte("a"), 0xe40c292c, 3, 1},
		{[]byte("foobar"), 0xbf9cf968, 8, 0},
		{[]byte("foobar"), 0xbf9cf968, 10000, 5720},
		{[]byte("orders-42"), 0xfeb697b5, 8, 5},
		{[]byte("orders-42"), 0xfeb697b5, 3, 0},
		{[]byte("orders-42"), 0xfeb697b5, 10000, 9253},
		{[]byte("user-1"), 0xf5537974, 8, 4},
		{[]byte("k"), 0xee0c38ea, 8, 2},
		{[]byte{0}, 0x050c5d1f, 8, 7},
		{[]byte{0xff, 0xfe}, 0xd01ebb10, 10000, 4896},
		{[]byte("orders-42"), 0xfeb697b5, math.MaxInt32, int32(0xfeb697b5 % math.MaxInt32)},
	} {
		if got := KeyHash(tc.key); got != tc.sum {
			t.Errorf("KeyHash(%q) = %#08x, want %#08x", tc.key, got, tc.sum)
		}
		if got := Partition(tc.key, tc.partitions); got != tc.want {
			t.Errorf("Partition(%q, %d) = %d, want %d", tc.key, tc.partitions, got, tc.want)
		}
	}
}

// TestMatchesHashFNV checks Sum32 against the standard library's FNV-1a on
// random keys, and that partitions are always in range.
func TestMatchesHashFNV(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		key := make([]byte, r.IntN(64))
		for i := range key {
			key[i] = byte(r.Uint32())
		}
		h := fnv.New32a()
		h.Write(key)
		if got, want := KeyHash(key), h.Sum32(); got != want {
			t.Fatalf("KeyHash(%x) = %#08x, hash/fnv says %#08x", key, got, want)
		}
		n := 1 + r.IntN(10000)
		if p := Partition(key, n); p < 0 || int(p) >= n || uint32(p) != h.Sum32()%uint32(n) {
			t.Fatalf("Partition(%x, %d) = %d", key, n, p)
		}
	}
}

func TestPartitionPanicsOnBadCount(t *testing.T) {
	for _, n := range []int{0, -1, math.MaxInt32 + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Partition(k, %d) did not panic", n)
				}
			}()
			Partition([]byte("k"), n)
		}()
	}
}
