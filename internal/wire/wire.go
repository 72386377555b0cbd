package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// ContentType is the media type of every message of this package.
const ContentType = "application/vnd.mamba.v1+binary"

// Limits on one message; see the package documentation.
const (
	// MaxRecords bounds the records of a produce request or fetch
	// response, and the results of a produce response.
	MaxRecords = 1 << 20
	// MaxHeaders bounds the headers of one message, summed over its
	// records.
	MaxHeaders = 1 << 20
)

var (
	// ErrMalformed is wrapped by every error the Decode functions return.
	ErrMalformed = errors.New("malformed binary message")
	// ErrLimit is wrapped, together with ErrMalformed, by the errors for
	// messages over MaxRecords or MaxHeaders, so that a server can tell
	// "too large" apart from "corrupt".
	ErrLimit = errors.New("over the limit")
)

const (
	magic   = 0x4D // 'M'
	version = 1

	kindProduceRequest  = 'P'
	kindProduceResponse = 'A'
	kindFetchResponse   = 'F'

	preambleSize = 3
	// Smallest encodings, used to bound counts by the bytes that remain:
	// a record is at least one byte for each of its five fields, a
	// produce result one for each of its two, a header one for each of
	// its two lengths.
	minRecordSize = 5
	minResultSize = 2
	minHeaderSize = 2
)

// Header is one record header. Names need not be unique; order is kept.
type Header struct {
	// Name must be valid UTF-8.
	Name  string
	Value []byte
}

// ProduceRecord is one record of a produce request.
type ProduceRecord struct {
	// Partition is the target partition, or -1 to let the server choose.
	Partition int32
	// Timestamp in Unix milliseconds; 0 means the time the server
	// received the record.
	Timestamp int64
	// Key is nil for a record without a key, which is distinct from an
	// empty key.
	Key     []byte
	Value   []byte
	Headers []Header
}

// ProduceResult is where one produced record went. Offset is -1 when it
// is not known yet (ack=buffered); Partition is -1 when the server has
// not chosen it yet.
type ProduceResult struct {
	Partition int32
	Offset    int64
}

// FetchRecord is one record of a fetch response.
type FetchRecord struct {
	Offset    int64
	Timestamp int64
	// Key is nil for a record without a key.
	Key     []byte
	Value   []byte
	Headers []Header
}

// FetchResponse is the answer to a fetch.
type FetchResponse struct {
	// NextOffset is the offset to fetch next.
	NextOffset     int64
	HighWatermark  int64
	LogStartOffset int64
	Records        []FetchRecord
}

func appendPreamble(dst []byte, kind byte) []byte {
	return append(dst, magic, version, kind)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendKey(dst, key []byte) []byte {
	if key == nil {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(key))+1)
	return append(dst, key...)
}

func appendHeaders(dst []byte, hs []Header) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(hs)))
	for _, h := range hs {
		dst = binary.AppendUvarint(dst, uint64(len(h.Name)))
		dst = append(dst, h.Name...)
		dst = appendBytes(dst, h.Value)
	}
	return dst
}

// AppendProduceRequest appends the encoding of a produce request holding
// records to dst and returns the extended slice.
func AppendProduceRequest(dst []byte, records []ProduceRecord) []byte {
	dst = AppendProduceRequestStart(dst, len(records))
	for i := range records {
		dst = AppendProduceRecord(dst, &records[i])
	}
	return dst
}

// AppendProduceRequestStart appends the start of a produce request of n
// records to dst; AppendProduceRecord then appends each record, exactly n
// times. Together they encode what AppendProduceRequest does, without a
// slice of all records.
func AppendProduceRequestStart(dst []byte, n int) []byte {
	dst = appendPreamble(dst, kindProduceRequest)
	return binary.AppendUvarint(dst, uint64(n))
}

// AppendProduceRecord appends one record of a produce request started
// with AppendProduceRequestStart.
func AppendProduceRecord(dst []byte, r *ProduceRecord) []byte {
	dst = binary.AppendVarint(dst, int64(r.Partition))
	dst = binary.AppendVarint(dst, r.Timestamp)
	dst = appendKey(dst, r.Key)
	dst = appendBytes(dst, r.Value)
	return appendHeaders(dst, r.Headers)
}

// AppendProduceResponse appends the encoding of a produce response to dst
// and returns the extended slice.
func AppendProduceResponse(dst []byte, results []ProduceResult) []byte {
	dst = appendPreamble(dst, kindProduceResponse)
	dst = binary.AppendUvarint(dst, uint64(len(results)))
	for _, r := range results {
		dst = binary.AppendVarint(dst, int64(r.Partition))
		dst = binary.AppendVarint(dst, r.Offset)
	}
	return dst
}

// AppendFetchResponse appends the encoding of resp to dst and returns the
// extended slice.
func AppendFetchResponse(dst []byte, resp FetchResponse) []byte {
	dst = AppendFetchResponseStart(dst, resp, len(resp.Records))
	for i := range resp.Records {
		dst = AppendFetchRecord(dst, &resp.Records[i])
	}
	return dst
}

// AppendFetchResponseStart appends the start of a fetch response with
// resp's offsets and n records (resp.Records is not read);
// AppendFetchRecord then appends each record, exactly n times.
func AppendFetchResponseStart(dst []byte, resp FetchResponse, n int) []byte {
	dst = appendPreamble(dst, kindFetchResponse)
	dst = binary.AppendVarint(dst, resp.NextOffset)
	dst = binary.AppendVarint(dst, resp.HighWatermark)
	dst = binary.AppendVarint(dst, resp.LogStartOffset)
	return binary.AppendUvarint(dst, uint64(n))
}

// AppendFetchRecord appends one record of a fetch response started with
// AppendFetchResponseStart.
func AppendFetchRecord(dst []byte, r *FetchRecord) []byte {
	dst = binary.AppendVarint(dst, r.Offset)
	dst = binary.AppendVarint(dst, r.Timestamp)
	dst = appendKey(dst, r.Key)
	dst = appendBytes(dst, r.Value)
	return appendHeaders(dst, r.Headers)
}

// DecodeProduceRequest decodes a whole produce request. The records alias
// b: see the package documentation.
func DecodeProduceRequest(b []byte) ([]ProduceRecord, error) {
	d := decoder{b: b}
	d.preamble(kindProduceRequest)
	n := d.count("record count", minRecordSize, MaxRecords)
	var records []ProduceRecord
	if n > 0 {
		records = make([]ProduceRecord, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		var r ProduceRecord
		r.Partition = int32(d.varint("partition", -1, math.MaxInt32))
		r.Timestamp = d.varint("timestamp", math.MinInt64, math.MaxInt64)
		r.Key = d.key()
		r.Value = d.bytes("value")
		r.Headers = d.headers()
		if d.err != nil {
			d.err = fmt.Errorf("record %d: %w", i, d.err)
		}
		records = append(records, r)
	}
	if err := d.finish(); err != nil {
		return nil, fmt.Errorf("%w: produce request: %w", ErrMalformed, err)
	}
	return records, nil
}

// ProduceRequestCount returns the record count a produce request
// announces, checked as DecodeProduceRequest checks it, without decoding
// the records: a caller learns what decoding will allocate before it
// does.
func ProduceRequestCount(b []byte) (int, error) {
	d := decoder{b: b}
	d.preamble(kindProduceRequest)
	n := d.count("record count", minRecordSize, MaxRecords)
	if d.err != nil {
		return 0, fmt.Errorf("%w: produce request: %w", ErrMalformed, d.err)
	}
	return n, nil
}

// DecodeProduceResponse decodes a whole produce response.
func DecodeProduceResponse(b []byte) ([]ProduceResult, error) {
	d := decoder{b: b}
	d.preamble(kindProduceResponse)
	n := d.count("result count", minResultSize, MaxRecords)
	var results []ProduceResult
	if n > 0 {
		results = make([]ProduceResult, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		var r ProduceResult
		r.Partition = int32(d.varint("partition", -1, math.MaxInt32))
		r.Offset = d.varint("offset", -1, math.MaxInt64)
		if d.err != nil {
			d.err = fmt.Errorf("result %d: %w", i, d.err)
		}
		results = append(results, r)
	}
	if err := d.finish(); err != nil {
		return nil, fmt.Errorf("%w: produce response: %w", ErrMalformed, err)
	}
	return results, nil
}

// DecodeFetchResponse decodes a whole fetch response. The records alias b:
// see the package documentation.
func DecodeFetchResponse(b []byte) (FetchResponse, error) {
	d := decoder{b: b}
	d.preamble(kindFetchResponse)
	var resp FetchResponse
	resp.NextOffset = d.varint("next offset", 0, math.MaxInt64)
	resp.HighWatermark = d.varint("high watermark", 0, math.MaxInt64)
	resp.LogStartOffset = d.varint("log start offset", 0, math.MaxInt64)
	n := d.count("record count", minRecordSize, MaxRecords)
	if n > 0 {
		resp.Records = make([]FetchRecord, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		var r FetchRecord
		r.Offset = d.varint("offset", 0, math.MaxInt64)
		r.Timestamp = d.varint("timestamp", math.MinInt64, math.MaxInt64)
		r.Key = d.key()
		r.Value = d.bytes("value")
		r.Headers = d.headers()
		if d.err != nil {
			d.err = fmt.Errorf("record %d: %w", i, d.err)
		}
		resp.Records = append(resp.Records, r)
	}
	if err := d.finish(); err != nil {
		return FetchResponse{}, fmt.Errorf("%w: fetch response: %w", ErrMalformed, err)
	}
	return resp, nil
}

// decoder reads fields from b in order. After the first error every read
// returns a zero value and err keeps that first error, so callers check it
// once per record; the Decode functions wrap it in ErrMalformed.
// Invariant: 0 <= off <= len(b).
type decoder struct {
	b   []byte
	off int
	err error
	// nheaders counts the headers decoded so far, against MaxHeaders.
	nheaders int
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) preamble(kind byte) {
	if len(d.b) < preambleSize {
		d.fail("%d bytes is shorter than the %d-byte preamble", len(d.b), preambleSize)
		return
	}
	switch {
	case d.b[0] != magic:
		d.fail("bad magic byte %#02x, want %#02x", d.b[0], magic)
	case d.b[1] != version:
		d.fail("unsupported version %d, want %d", d.b[1], version)
	case d.b[2] != kind:
		d.fail("message kind %q, want %q", d.b[2], kind)
	}
	d.off = preambleSize
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		if n == 0 {
			d.fail("%s: truncated varint at offset %d", field, d.off)
		} else {
			d.fail("%s: varint overflows 64 bits at offset %d", field, d.off)
		}
		return 0
	}
	d.off += n
	return v
}

// varint reads a signed varint and checks that it lies in [lo, hi].
func (d *decoder) varint(field string, lo, hi int64) int64 {
	if d.err != nil {
		return 0
	}
	off := d.off
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		if n == 0 {
			d.fail("%s: truncated varint at offset %d", field, off)
		} else {
			d.fail("%s: varint overflows 64 bits at offset %d", field, off)
		}
		return 0
	}
	d.off += n
	if v < lo || v > hi {
		d.fail("%s %d at offset %d is outside [%d, %d]", field, v, off, lo, hi)
		return 0
	}
	return v
}

// count reads a uvarint count of items that take at least minSize bytes
// each, and checks it against both the bytes that remain and max, so that
// a caller may allocate count items.
func (d *decoder) count(field string, minSize, max int) int {
	off := d.off
	v := d.uvarint(field)
	if d.err != nil {
		return 0
	}
	if limit := uint64(d.remaining() / minSize); v > limit {
		d.fail("%s %d at offset %d is more than the %d bytes that remain can hold", field, v, off, d.remaining())
		return 0
	}
	if v > uint64(max) {
		d.err = fmt.Errorf("%s %d at offset %d: %w of %d", field, v, off, ErrLimit, max)
		return 0
	}
	return int(v)
}

// take returns the next n bytes, n <= remaining, with capacity clipped.
func (d *decoder) take(n int) []byte {
	b := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

// length reads a uvarint length and checks it against the bytes that
// remain.
func (d *decoder) length(field string, v uint64, off int) int {
	if v > uint64(d.remaining()) {
		d.fail("%s: length %d at offset %d exceeds the %d bytes that remain", field, v, off, d.remaining())
		return -1
	}
	return int(v)
}

// bytes reads a length-prefixed byte string; the empty string is nil.
func (d *decoder) bytes(field string) []byte {
	off := d.off
	v := d.uvarint(field)
	if d.err != nil {
		return nil
	}
	n := d.length(field, v, off)
	if n <= 0 {
		return nil
	}
	return d.take(n)
}

// key reads a key: 0 for none, else its length plus one.
func (d *decoder) key() []byte {
	off := d.off
	v := d.uvarint("key")
	if d.err != nil || v == 0 {
		return nil
	}
	n := d.length("key", v-1, off)
	if n < 0 {
		return nil
	}
	return d.take(n)
}

func (d *decoder) headers() []Header {
	off := d.off
	n := d.count("header count", minHeaderSize, MaxHeaders)
	if n == 0 {
		return nil
	}
	if d.nheaders += n; d.nheaders > MaxHeaders {
		d.err = fmt.Errorf("header count %d at offset %d: %w of %d headers in one message", n, off, ErrLimit, MaxHeaders)
		return nil
	}
	hs := make([]Header, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		off = d.off
		name := d.bytes("header name")
		if d.err == nil && !utf8.Valid(name) {
			d.fail("header %d: name at offset %d is not valid UTF-8", i, off)
		}
		value := d.bytes("header value")
		hs = append(hs, Header{Name: string(name), Value: value})
	}
	return hs
}

// finish reports the first error, or an error if bytes remain.
func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes at offset %d", len(d.b)-d.off, d.off)
	}
	return d.err
}
