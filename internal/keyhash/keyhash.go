// Package keyhash maps a record key to a partition. Every producer that
// chooses partitions itself (the ingest node, the Go SDK, clients in other
// languages) must use this function, so that records with equal keys land
// in the same partition whoever sends them.
//
// # Algorithm
//
// The partition of key k in a topic with n partitions is
//
//	FNV-1a-32(k) mod n
//
// where FNV-1a-32 is the 32-bit Fowler–Noll–Vo hash, variant 1a, over the
// key's bytes, taken as an unsigned 32-bit integer:
//
//	h := uint32(2166136261)      // offset basis 0x811c9dc5
//	for each byte b of k:
//	    h = h XOR uint32(b)
//	    h = h * 16777619         // prime 0x01000193, modulo 2^32
//	partition = h mod n          // unsigned remainder
//
// The key is hashed as raw bytes (a text key is hashed as its UTF-8 bytes),
// with no length prefix and no terminator. The empty key hashes to the
// offset basis, so it maps to 2166136261 mod n; only a record with no key at
// all is free to go to any partition. Beware signed arithmetic: in languages
// without an unsigned 32-bit type (Java, JavaScript), mask the product to 32
// bits and take the remainder of the unsigned value. For example "orders-42"
// hashes to 0xfeb697b5 (4273379253, negative as a signed 32-bit integer),
// which is partition 5 of 8 and partition 9253 of 10000.
//
// This is the same hash as Go's hash/fnv New32a.
package keyhash

import (
	"fmt"
	"math"
)

const (
	offsetBasis uint32 = 2166136261
	prime       uint32 = 16777619
)

// Sum32 returns the FNV-1a 32-bit hash of key.
func Sum32(key []byte) uint32 {
	h := offsetBasis
	for _, b := range key {
		h ^= uint32(b)
		h *= prime
	}
	return h
}

// Partition returns the partition, in [0, partitions), of a record with the
// given key: Sum32(key) mod partitions. It panics if partitions is not in
// [1, math.MaxInt32], which no topic can have.
func Partition(key []byte, partitions int) int32 {
	if partitions < 1 || partitions > math.MaxInt32 {
		panic(fmt.Sprintf("keyhash: partition count %d out of range", partitions))
	}
	return int32(Sum32(key) % uint32(partitions))
}
