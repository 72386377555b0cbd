/*
Package wire owns the contract Mamba's SDK and server share: the binary
HTTP content type (below), the key-to-partition hash (Partition, "Key to
partition") and the API's error codes (Codes). Its binary HTTP content type,
application/vnd.mamba.v1+binary (ContentType). The Go SDK sends produce
requests in it and asks for produce and fetch responses in it, which spares
both ends the cost of JSON and base64 for binary keys and values. The
package uses the standard library only, so that the SDK can import it
without pulling in any server code.

Each message has an Append function that encodes it onto a byte slice and a
Decode function that parses one whole message:

	AppendProduceRequest / DecodeProduceRequest    POST .../records body
	AppendProduceResponse / DecodeProduceResponse  its answer
	AppendFetchResponse / DecodeFetchResponse      GET .../records answer

Decoding never trusts the input: every length and count is checked against
the bytes that remain before anything is allocated, truncated input and
trailing bytes are errors, and every error wraps ErrMalformed (and ErrLimit
too when the message is over MaxRecords or MaxHeaders). Append encodes what
it is given; values that Decode rejects (a partition below -1, a negative
fetch offset, a header name that is not UTF-8, more than MaxRecords
records) produce a message that does not decode.

# Encoding

Integers are varints as written by encoding/binary: "uvarint" is an
unsigned LEB128 integer of at most 10 bytes (binary.AppendUvarint), and
"varint" is a signed integer zig-zag encoded into a uvarint
(binary.AppendVarint: 0, -1, 1, -2, ... become 0, 1, 2, 3, ...). Decoders
accept any uvarint that fits in 64 bits, so the encoding of a value is not
unique; encoders always write the shortest form.

Three compound fields recur:

	bytes     uvarint length L, then L bytes
	key       uvarint K: 0 means no key (nil); K >= 1 means a key of
	          K-1 bytes follows. The empty key is the single byte 0x01,
	          distinct from no key (0x00).
	headers   uvarint count H, then H times: bytes name (valid UTF-8),
	          bytes value. Order is kept; names may repeat.

# Preamble

Every message starts with three bytes:

	offset size field
	0      1    magic: 0x4D ('M')
	1      1    version: 1
	2      1    kind: 0x50 'P' produce request
	                  0x41 'A' produce response
	                  0x46 'F' fetch response

A decoder refuses a message of another kind or version, so a response can
never be taken for a request. A new version number is needed for any
change to the layout below.

# Produce request (kind 'P')

	uvarint  record count N, 0..MaxRecords
	N records, each:
	  varint   partition: -1 lets the server choose (by key hash when the
	           record has a key), otherwise 0..2^31-1
	  varint   timestamp in Unix milliseconds; 0 means time of receipt
	  key      key
	  bytes    value
	  headers  headers

# Produce response (kind 'A')

One result per record of the request, in request order:

	uvarint  result count N, 0..MaxRecords
	N results, each:
	  varint   partition, -1..2^31-1 (-1: not chosen yet)
	  varint   offset, -1..2^63-1 (-1: not assigned yet, as under
	           ack=buffered)

# Fetch response (kind 'F')

	varint   next offset, >= 0: the offset to fetch next
	varint   high watermark, >= 0
	varint   log start offset, >= 0
	uvarint  record count N, 0..MaxRecords
	N records, each:
	  varint   offset, >= 0
	  varint   timestamp in Unix milliseconds
	  key      key
	  bytes    value
	  headers  headers

# Limits

A message holds at most MaxRecords records (or results) and at most
MaxHeaders headers summed over all its records. Since every record takes at
least 5 bytes (2 for a produce result) and every header 2, the memory a
decoded message takes is bounded by its size as well.

# Decoded values

Decoded byte slices (keys, values, header values) alias the input, which
must not be modified while they are in use; each has its capacity clipped
to its length, so appending to one never overwrites the input. A value or
header value of length zero decodes as nil, a key keeps the distinction
between nil and empty, and an empty record, result or header list decodes
as nil.

# Key to partition

Partition maps a record key to a partition. Every producer that
chooses partitions itself (the ingest node, the Go SDK, clients in other
languages) must use this function, so that records with equal keys land
in the same partition whoever sends them.

The partition of key k in a topic with n partitions is

	FNV-1a-32(k) mod n

where FNV-1a-32 is the 32-bit Fowler–Noll–Vo hash, variant 1a, over the
key's bytes, taken as an unsigned 32-bit integer:

	h := uint32(2166136261)      // offset basis 0x811c9dc5
	for each byte b of k:
	    h = h XOR uint32(b)
	    h = h * 16777619         // prime 0x01000193, modulo 2^32
	partition = h mod n          // unsigned remainder

The key is hashed as raw bytes (a text key is hashed as its UTF-8 bytes),
with no length prefix and no terminator. The empty key hashes to the
offset basis, so it maps to 2166136261 mod n; only a record with no key at
all is free to go to any partition. Beware signed arithmetic: in languages
without an unsigned 32-bit type (Java, JavaScript), mask the product to 32
bits and take the remainder of the unsigned value. For example "orders-42"
hashes to 0xfeb697b5 (4273379253, negative as a signed 32-bit integer),
which is partition 5 of 8 and partition 9253 of 10000.

This is the same hash as Go's hash/fnv New32a. KeyHash computes it.
*/
package wire
