package client

import (
	"strconv"
	"time"
)

// Header is one record header. Names need not be unique; their order is
// kept (except by a producer using WithJSON, where names must be unique
// and the node stores them sorted).
type Header struct {
	Name  string
	Value []byte
}

// Record is a record to produce.
//
// The producer keeps Key, Value and the header values, without copying
// them, until the record's future is done: do not modify them before.
type Record struct {
	// Topic is required.
	Topic string
	// Key chooses the partition (the FNV-1a hash (wire.Partition) of the key modulo the topic's
	// partition count), so that records with equal keys keep their order.
	// nil means no key, which is distinct from an empty key.
	Key   []byte
	Value []byte
	// Headers are optional; names must be valid UTF-8 and not empty.
	Headers []Header
	// Partition pins the record to a partition, overriding the key. nil
	// lets the producer choose: by key, or for a record
	// without a key the partition the producer is currently filling.
	// Set it with new(int32(3)).
	Partition *int32
	// Timestamp is stored with the record; the zero time means the time
	// the node receives it. It is kept to the millisecond.
	Timestamp time.Time
}

// Result is where a produced record was stored.
type Result struct {
	Topic     string
	Partition int32
	// Offset is the record's offset in its partition, or -1 under
	// WithAckBuffered, where offsets are not known when the node answers.
	Offset int64
}

// ConsumedRecord is a record read from a partition.
//
// Its byte slices belong to the caller: the consumer never reuses them.
type ConsumedRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is the producer's timestamp, or the time the node
	// received the record when the producer set none.
	Timestamp time.Time
	// Key is nil for a record without a key.
	Key     []byte
	Value   []byte
	Headers []Header
}

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string {
	return tp.Topic + "/" + strconv.Itoa(int(tp.Partition))
}
