// Package faultsuite is Mamba's zero-loss fault suite: producers record
// every record they send and every acknowledgement they are given, faults
// are injected into real processes (kill -9 and SIGTERM of ingest nodes,
// MinIO and Redis outages, a failing object store behind a proxy), and a
// checker then reads every partition to its end and compares what the
// producers were told with what is in the log.
//
// The invariants checked are those of docs/api.md ("What an
// acknowledgement means"): every acknowledged record is in the log exactly
// once, at the offset it was acknowledged with, with the bytes that were
// sent; each partition's offsets run contiguously from 0; and nothing is
// in the log that no producer sent.
//
// The tests in this package are the suite; the non-test files are its
// ledger, checker and fault-injecting proxy. See docs/reliability.md.
package faultsuite

import (
	"context"
	"crypto/rand"
	"fmt"
	"hash/crc32"
	"sync"
	"time"
)

// RecordID names one record a producer sent: the producer and the
// record's sequence number within it. Both are embedded in the payload.
type RecordID struct {
	Producer int
	Seq      int64
}

func (id RecordID) String() string { return fmt.Sprintf("p%d#%d", id.Producer, id.Seq) }

// Ack is what a producer was told about one record.
type Ack struct {
	Partition int32
	// Offset is where the record was acknowledged. A durable
	// acknowledgement always carries one (>= 0); the checker counts one
	// without as misplaced.
	Offset int64
	// Buffered marks an ack=buffered acknowledgement, which promises no
	// offset: Offset is -1 and only the record's presence is checked.
	Buffered bool
}

// payloadPrefix is the fixed-width head of every payload; random bytes
// follow it.
const payloadPrefix = "mamba-fault p%06d s%012d |"

// Payload returns the value of record id: its producer and sequence, then
// n random bytes, and the value's checksum.
func Payload(id RecordID, n int) ([]byte, uint32) {
	v := fmt.Appendf(nil, payloadPrefix, id.Producer, id.Seq)
	tail := make([]byte, n)
	_, _ = rand.Read(tail)
	v = append(v, tail...)
	return v, Checksum(v)
}

// Checksum is the checksum the ledger keeps of a payload.
func Checksum(v []byte) uint32 { return crc32.Checksum(v, crc32.MakeTable(crc32.Castagnoli)) }

// ParsePayload returns the record id embedded in a payload.
func ParsePayload(v []byte) (RecordID, bool) {
	var id RecordID
	n, err := fmt.Sscanf(string(v[:min(len(v), 40)]), payloadPrefix, &id.Producer, &id.Seq)
	return id, err == nil && n == 2
}

// Ledger records, for every producer, what it sent, what was acknowledged
// and what failed, and when each acknowledgement arrived. It is safe for
// concurrent use.
type Ledger struct {
	mu      sync.Mutex
	sent    map[RecordID]uint32 // checksum of the payload
	acked   map[RecordID]Ack
	failed  map[RecordID]error
	last    map[int]time.Time // producer -> last success (or start)
	gap     map[int]time.Duration
	perProd map[int]int // producer -> acknowledgements
	changed chan struct{}
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{
		sent: map[RecordID]uint32{}, acked: map[RecordID]Ack{}, failed: map[RecordID]error{},
		last: map[int]time.Time{}, gap: map[int]time.Duration{}, perProd: map[int]int{},
		changed: make(chan struct{}),
	}
}

// Start marks the moment producer p starts, from which its first gap
// without acknowledgements is measured.
func (l *Ledger) Start(p int, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last[p] = now
}

// Sent records a record before it is handed to the producer.
func (l *Ledger) Sent(id RecordID, sum uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent[id] = sum
}

// Acked records a successful acknowledgement received at now.
func (l *Ledger) Acked(id RecordID, a Ack, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked[id] = a
	l.perProd[id.Producer]++
	if last, ok := l.last[id.Producer]; ok {
		l.gap[id.Producer] = max(l.gap[id.Producer], now.Sub(last))
	}
	l.last[id.Producer] = now
	close(l.changed)
	l.changed = make(chan struct{})
}

// Failed records a send that ended in an error: it was never
// acknowledged, and may or may not be in the log.
func (l *Ledger) Failed(id RecordID, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed[id] = err
}

// AckCounts returns the acknowledgements so far of each producer.
func (l *Ledger) AckCounts() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[int]int, len(l.perProd))
	for p, n := range l.perProd {
		m[p] = n
	}
	return m
}

// WaitAcks waits until ok holds for the acknowledgement counts of the
// producers, re-checking after every acknowledgement, or ctx ends.
func (l *Ledger) WaitAcks(ctx context.Context, ok func(map[int]int) bool) error {
	for {
		l.mu.Lock()
		counts := make(map[int]int, len(l.perProd))
		for p, n := range l.perProd {
			counts[p] = n
		}
		ch := l.changed
		l.mu.Unlock()
		if ok(counts) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for acknowledgements (have %v): %w", counts, ctx.Err())
		}
	}
}

// LongestUnavailability is the longest time any producer waited between
// two successful acknowledgements (or from its start to its first).
func (l *Ledger) LongestUnavailability() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var d time.Duration
	for _, g := range l.gap {
		d = max(d, g)
	}
	return d
}
