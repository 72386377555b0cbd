package chunk

import (
	"errors"
	"fmt"
	"hash/crc32"
)

// Format constants. Changing any of them changes the format: see the
// versioning rule in the package documentation.
const (
	// HeaderSize is the size of the fixed chunk header.
	HeaderSize = 32
	// BatchHeaderSize is the size of the header that starts every batch.
	BatchHeaderSize = 20
	// MaxBatchBytes bounds both the uncompressed and the stored payload of
	// one batch.
	MaxBatchBytes = 64 << 20
	// MaxBatchRecords bounds the number of records in one batch.
	MaxBatchRecords = 1 << 20
	// MaxBatchHeaders bounds the number of record headers, summed over all
	// records, in one batch. With MaxBatchRecords it bounds the memory a
	// decoded batch takes, however small its records are.
	MaxBatchHeaders = 1 << 20
	// MaxBatches bounds the number of batches in one chunk.
	MaxBatches = 1 << 20
	// MaxTopicLen is the longest topic name, in bytes.
	MaxTopicLen = 249
	// MaxIDLen is the longest chunk id, in bytes.
	MaxIDLen = 128
	// MaxIdempotencyKeyLen is the longest idempotency key, in bytes.
	MaxIdempotencyKeyLen = 1024
)

const (
	magic        = "MMBC"
	version      = 1
	batchVersion = 1

	// minRecordSize is the smallest encoded record: one byte each for the
	// timestamp, the key length, the value length and the header count.
	minRecordSize = 4
	// minHeaderSize is the smallest encoded record header: one byte each
	// for the name length and the value length.
	minHeaderSize = 2
	// maxZstdRatio is the most a standard zstd payload can expand: a block
	// yields at most 128 KiB and costs at least 4 bytes.
	maxZstdRatio = 32768

	// entryFixedSize is the size of a directory entry without its topic
	// and idempotency key.
	entryFixedSize = 1 + 4 + 4 + 2 + 1 + 8 + 4 + 4 + 8 + 8
	minEntrySize   = entryFixedSize + 1
	maxEntrySize   = entryFixedSize + MaxTopicLen + MaxIdempotencyKeyLen
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by every error that decoding returns for input that
// is not a valid chunk or batch: truncated, corrupted or hostile bytes, an
// unknown version, flag or codec. Test for it with errors.Is.
var ErrCorrupt = errors.New("corrupt chunk data")

// ErrInvalid is wrapped by every error the Writer returns for input it
// cannot encode: a bad chunk id, topic, partition, idempotency key or codec,
// an empty batch, or a batch or chunk over a limit.
var ErrInvalid = errors.New("invalid chunk input")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Codec identifies how a batch's payload is stored.
type Codec uint8

const (
	// CodecNone stores the payload as is.
	CodecNone Codec = 0
	// CodecZstd stores the payload as zstd-compressed bytes.
	CodecZstd Codec = 1
)

// String returns the codec's name, "none" or "zstd", or "codec(N)" for a
// number this package does not know.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

func (c Codec) known() bool { return c == CodecNone || c == CodecZstd }

// Header is one record header. Names need not be unique; their order is
// kept.
type Header struct {
	// Name is valid UTF-8.
	Name string
	// Value is opaque; nil and empty encode the same and decode as nil.
	Value []byte
}

// Record is one message. Decoded records alias the bytes they were decoded
// from (the input for CodecNone, the decompressed payload for CodecZstd):
// those bytes must not be modified while the record is in use.
type Record struct {
	// Key is opaque. A nil Key means the record has no key, which is
	// distinct from an empty one; decoding keeps the distinction.
	Key []byte
	// Value is opaque; nil and empty encode the same and decode as nil.
	Value []byte
	// Headers are kept in order. An empty slice decodes as nil.
	Headers []Header
	// Timestamp is in Unix milliseconds.
	Timestamp int64
}

// BatchInfo describes one batch of a chunk: one directory entry.
type BatchInfo struct {
	Topic     string
	Partition int32
	// Records is the number of records, at least 1.
	Records int
	// IdempotencyKey is empty when the producer gave none.
	IdempotencyKey string
	Codec          Codec
	// Offset and Length give the batch's byte range in the chunk,
	// [Offset, Offset+Length). Offset counts from the start of the chunk.
	Offset, Length int64
	// CRC is the batch's CRC-32C, as stored in the batch header.
	CRC uint32
	// MinTimestamp and MaxTimestamp are the least and greatest record
	// timestamps, in Unix milliseconds.
	MinTimestamp, MaxTimestamp int64
}

// Batch is a decoded batch.
type Batch struct {
	Codec Codec
	// Records holds at least one record. They alias the decoded bytes: see
	// Record.
	Records []Record
}

// ValidateID reports whether id can name a chunk: 1 to MaxIDLen bytes of
// [0-9A-Za-z._-]. The error wraps ErrInvalid.
func ValidateID(id string) error {
	if len(id) == 0 || len(id) > MaxIDLen || !validName(id) {
		return invalid("chunk id %q: want 1 to %d bytes of [0-9A-Za-z._-]", id, MaxIDLen)
	}
	return nil
}

// ValidateTopic reports whether topic is a valid topic name: 1 to
// MaxTopicLen bytes of [A-Za-z0-9._-]. The error wraps ErrInvalid.
func ValidateTopic(topic string) error {
	if len(topic) == 0 || len(topic) > MaxTopicLen || !validName(topic) {
		return invalid("topic %q: want 1 to %d bytes of [A-Za-z0-9._-]", topic, MaxTopicLen)
	}
	return nil
}

// validName reports whether every byte of s is in [0-9A-Za-z._-], the
// alphabet of both chunk ids and topic names.
func validName[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
