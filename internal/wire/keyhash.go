package wire

// This file is the key-to-partition hash; its algorithm is specified in
// doc.go ("Key to partition").

import (
	"fmt"
	"math"
)

const (
	offsetBasis uint32 = 2166136261
	prime       uint32 = 16777619
)

// KeyHash returns the FNV-1a 32-bit hash of key.
func KeyHash(key []byte) uint32 {
	h := offsetBasis
	for _, b := range key {
		h ^= uint32(b)
		h *= prime
	}
	return h
}

// Partition returns the partition, in [0, partitions), of a record with the
// given key: KeyHash(key) mod partitions. It panics if partitions is not in
// [1, math.MaxInt32], which no topic can have.
func Partition(key []byte, partitions int) int32 {
	if partitions < 1 || partitions > math.MaxInt32 {
		panic(fmt.Sprintf("wire: partition count %d out of range", partitions))
	}
	return int32(KeyHash(key) % uint32(partitions))
}
