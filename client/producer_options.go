// The producer's options (ProducerOpt) and their defaults.

package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/mambamq/mamba/internal/wire"
)

// Defaults of the producer options.
const (
	// DefaultLinger is how long a record may wait for others to share its
	// request.
	DefaultLinger = 5 * time.Millisecond
	// DefaultMaxBatchBytes bounds the records (keys, values and headers)
	// of one produce request: 4 MiB. A partition has one request in
	// flight and a durable ack takes up to a flush interval plus a PUT
	// (a few hundred milliseconds), so one partition takes at most one
	// batch per ack from a producer: 4 MiB per ack is some 10 MiB/s.
	// Large requests also fill the node's chunks (8 MiB) sooner, which
	// seals them before the flush interval and shortens the ack.
	DefaultMaxBatchBytes = 4 << 20
	// DefaultMaxBatchRecords bounds the records of one produce request.
	DefaultMaxBatchRecords = 10_000
	// DefaultMaxBufferedBytes bounds the records a producer holds before
	// they are acknowledged: 64 MiB.
	DefaultMaxBufferedBytes = 64 << 20
	// DefaultMaxInFlight is how many produce requests a producer has
	// outstanding at once: enough that a producer writing to many
	// partitions keeps going while earlier requests wait for their
	// durable acks. (At most one per partition is in flight anyway.)
	DefaultMaxInFlight = 16
	// DefaultDeliveryTimeout bounds the time from producing a record to
	// its acknowledgement, retries included.
	DefaultDeliveryTimeout = 2 * time.Minute
)

// recordOverhead is what the producer counts for one record on top of
// its key, value and headers, for the batch and buffer limits: roughly
// its framing in a request.
const recordOverhead = 16

// ProducerOpt configures a Producer.
type ProducerOpt func(*producerConfig)

type producerConfig struct {
	linger          time.Duration
	maxBatchBytes   int64
	maxBatchRecords int
	maxBuffered     int64
	maxInFlight     int
	deliveryTimeout time.Duration
	maxAttempts     int
	ackBuffered     bool
	json            bool
	onError         func(Record, error)
	onAck           func(Record, Result)
	errs            []error
}

// WithLinger sets how long a record may wait for more records to share
// its request. Zero sends as soon as a request slot is free. Default
// DefaultLinger.
func WithLinger(d time.Duration) ProducerOpt {
	return func(c *producerConfig) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("WithLinger: %v is negative", d))
		}
		c.linger = d
	}
}

// WithMaxBatchBytes bounds the bytes of records (keys, values, headers)
// in one produce request; a record larger than this is refused with
// ErrPayloadTooLarge. The node refuses requests over 16 MiB and records
// over 1 MiB by default. Default DefaultMaxBatchBytes.
func WithMaxBatchBytes(n int) ProducerOpt {
	return func(c *producerConfig) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithMaxBatchBytes: %d is below 1", n))
		}
		c.maxBatchBytes = int64(n)
	}
}

// WithMaxBatchRecords bounds the records in one produce request. Default
// DefaultMaxBatchRecords.
func WithMaxBatchRecords(n int) ProducerOpt {
	return func(c *producerConfig) {
		if n < 1 || n > wire.MaxRecords {
			c.errs = append(c.errs, fmt.Errorf("WithMaxBatchRecords: %d is not in [1, %d]", n, wire.MaxRecords))
		}
		c.maxBatchRecords = n
	}
}

// WithMaxBufferedBytes bounds the bytes of records the producer holds
// until they are acknowledged or failed. When it is full, Produce and
// ProduceAsync block and TryProduce fails with ErrBufferFull. It must be
// at least the max batch bytes. Default DefaultMaxBufferedBytes.
func WithMaxBufferedBytes(n int64) ProducerOpt {
	return func(c *producerConfig) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithMaxBufferedBytes: %d is below 1", n))
		}
		c.maxBuffered = n
	}
}

// WithMaxInFlight bounds the produce requests outstanding at once, over
// all topics. Default DefaultMaxInFlight.
func WithMaxInFlight(n int) ProducerOpt {
	return func(c *producerConfig) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithMaxInFlight: %d is below 1", n))
		}
		c.maxInFlight = n
	}
}

// WithDeliveryTimeout bounds how long a record may take from being
// produced to being acknowledged, waiting in the buffer and retries
// included. A record not acknowledged in time fails with an error
// wrapping ErrDeliveryTimeout and the last error. Default
// DefaultDeliveryTimeout.
func WithDeliveryTimeout(d time.Duration) ProducerOpt {
	return func(c *producerConfig) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithDeliveryTimeout: %v is not positive", d))
		}
		c.deliveryTimeout = d
	}
}

// WithProduceAttempts bounds the attempts of one produce request, on top
// of the delivery timeout. Zero, the default, retries until the delivery
// timeout.
func WithProduceAttempts(n int) ProducerOpt {
	return func(c *producerConfig) {
		if n < 0 {
			c.errs = append(c.errs, fmt.Errorf("WithProduceAttempts: %d is negative", n))
		}
		c.maxAttempts = n
	}
}

// WithAckBuffered asks the node to answer as soon as the records are in
// its memory (ack=buffered) instead of once they are durable: a node
// crash before its next flush loses them, and nobody is told. Offsets are
// then unknown and every Result has Offset -1. Off by default; use it
// only when losing records is acceptable.
func WithAckBuffered() ProducerOpt {
	return func(c *producerConfig) { c.ackBuffered = true }
}

// WithJSON sends produce requests as JSON (with base64 bytes) instead of
// the binary content type. It costs more on both ends; it exists for
// proxies that only pass JSON. Headers are sent as a list, so their order
// and repeated names are kept as with the binary type.
func WithJSON() ProducerOpt {
	return func(c *producerConfig) { c.json = true }
}

// WithErrorHandler calls fn for every record produced with ProduceAsync
// or TryProduce that fails, in addition to its future's error. Calls are
// made one at a time from the producer's goroutines; fn must not block
// for long, nor call the producer's Flush or Close.
func WithErrorHandler(fn func(Record, error)) ProducerOpt {
	return func(c *producerConfig) {
		if fn == nil {
			c.errs = append(c.errs, errors.New("WithErrorHandler: nil handler"))
		}
		c.onError = fn
	}
}

// WithAckHandler calls fn for every record produced with ProduceAsync or
// TryProduce once it is acknowledged, with where it was stored, in
// addition to completing its future: the callback style of producing, with
// no goroutine waiting per record. Calls are made one at a time from the
// producer's goroutines, a request's records in their order; fn must not
// block for long (it holds up other acknowledgements), nor call the
// producer's Flush or Close.
func WithAckHandler(fn func(Record, Result)) ProducerOpt {
	return func(c *producerConfig) {
		if fn == nil {
			c.errs = append(c.errs, errors.New("WithAckHandler: nil handler"))
		}
		c.onAck = fn
	}
}
