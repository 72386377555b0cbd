/*
Package chunk owns the byte format of a Mamba chunk: one immutable object in
the object store that holds record batches for many topic-partitions.

An ingest node builds a chunk with a Writer (Reserve when it knows the sizes,
then Add once per batch, then Finish) and uploads the bytes as one object. A
reader fetches a chunk in up to three ranged reads: the fixed header
(ReadHeader), the batch directory (DecodeDirectory), and then only the byte
range of each batch it wants (BatchInfo.Decode or DecodeBatch). Each batch is
self-contained, so one ranged read of [Offset, Offset+Length) is enough to
verify and decode it. Decode takes a whole chunk at once. A reader that keeps
batches in memory and decodes them often checks each once (CheckBatch) and
then decodes it with DecodeCheckedBatch, which skips the CRC.

# Layout

A chunk is a header, a directory and a data section, back to back:

	+----------------+------------------+-------------------------------+
	| header (32 B)  | directory (D B)  | data: batch 0, batch 1, ...   |
	+----------------+------------------+-------------------------------+
	0                32                 32+D                            32+D+dataLen

All integers are unsigned and big-endian unless marked otherwise. CRCs are
CRC-32C (Castagnoli polynomial), as computed by hash/crc32 with
crc32.Castagnoli.

# Header

The header has a fixed size of HeaderSize (32) bytes:

	offset size field
	0      4    magic: the ASCII bytes "MMBC"
	4      1    version: 1
	5      1    flags: 0
	6      2    reserved: 0
	8      4    directory length D
	12     4    batch count N
	16     8    data length: the sum of all batch lengths
	24     4    CRC of the D directory bytes
	28     4    CRC of header bytes [0, 28)

The chunk's total size is 32 + D + data length. The header is checked on its
own, so a reader can trust D and N before it fetches the directory:
1 <= N <= MaxBatches, D lies between the smallest and largest directory that
N entries can make, and the data length lies between N*BatchHeaderSize and
N*(BatchHeaderSize+MaxBatchBytes).

# Directory

The directory starts with the chunk id and is followed by exactly N entries.
It must be exactly D bytes long: trailing bytes are corruption.

	size field
	1    chunk id length I, 1..128
	I    chunk id: bytes of [0-9A-Za-z._-], opaque to this package

Each entry describes one batch (T is the topic length, K the idempotency key
length; an entry is 44+T+K bytes):

	offset  size field
	0       1    topic length T, 1..MaxTopicLen (249)
	1       T    topic: bytes of [A-Za-z0-9._-]
	1+T     4    partition, 0..2^31-1
	5+T     4    record count, 1..MaxBatchRecords
	9+T     2    idempotency key length K, 0..MaxIdempotencyKeyLen (1024)
	11+T    K    idempotency key: any bytes; empty means none
	11+T+K  1    codec: 0 none, 1 zstd
	12+T+K  8    offset of the batch from the start of the chunk
	20+T+K  4    length of the batch, BatchHeaderSize..BatchHeaderSize+MaxBatchBytes
	24+T+K  4    CRC: equal to the CRC field of the batch header
	28+T+K  8    minimum record timestamp (signed, two's complement)
	36+T+K  8    maximum record timestamp (signed), >= the minimum

Batches are stored in directory order with no gaps: the first starts at
32+D, each next one starts where the previous one ends, and the last one
ends at 32+D+data length. The codec and record count in an entry equal those
in the batch header, and the timestamps equal the least and greatest record
timestamps of the batch.

# Batch

A batch is BatchHeaderSize (20) bytes of header followed by its stored
payload. It carries everything needed to check and decode it without the
rest of the chunk:

	offset size field
	0      1    batch version: 1
	1      1    codec: 0 none, 1 zstd
	2      2    reserved: 0
	4      4    record count R, 1..MaxBatchRecords
	8      4    uncompressed payload length U, 4*R..MaxBatchBytes
	12     4    stored payload length S, equal to the batch length - 20 and <= MaxBatchBytes
	16     4    CRC of batch bytes [0, 16) followed by the S stored payload bytes
	20     S    stored payload

With codec none the stored payload is the uncompressed payload and S = U.
With codec zstd the stored payload is zstd-compressed and decompresses to
exactly U bytes. U must not exceed 32768*S: a standard zstd block yields at
most 128 KiB and costs at least 4 bytes, so no valid payload expands further,
and a decoder can reject a hostile U before it allocates U bytes.

# Records

The uncompressed payload is exactly R records back to back, with no trailing
bytes. Varints are those of encoding/binary: "varint" is zigzag-encoded
signed (binary.AppendVarint), "uvarint" unsigned (binary.AppendUvarint).

	varint   timestamp, Unix milliseconds
	uvarint  key length + 1; 0 means no key (nil), 1 an empty key
	         key bytes
	uvarint  value length
	         value bytes
	uvarint  header count H
	H times:
	  uvarint  header name length
	           header name: valid UTF-8
	  uvarint  header value length
	           header value bytes

A record takes at least 4 bytes, and a header at least 2, which bounds what a
declared count can make a decoder allocate. A batch holds at most
MaxBatchHeaders headers over all its records.

# Checksums and limits

The header CRC covers the header (the directory CRC included), the
directory CRC the directory, and each batch CRC its own header and stored
payload. Every byte of a chunk is thus either a CRC or covered by one, and
Decode, which checks them all, detects any single corrupted byte. A reader
that fetches ranges checks the CRC of each range it fetches.

Every length read from the input is checked against the bytes that remain,
or against a constant limit of this package, before anything is sized by
it; record and header counts are checked against the least space that many
records or headers take. What decoding one batch allocates is thus bounded
by constants: the uncompressed payload (at most MaxBatchBytes, and at most
32768 times the stored length), one Record per record (at most
MaxBatchRecords), one Header per header (at most MaxBatchHeaders) and the
header names. Decoding never panics on any input.

Decoded records alias the bytes they were decoded from: the caller's input
for CodecNone, a fresh decompressed buffer for CodecZstd.

# Encryption at rest

This layout is the plaintext of a chunk. A node started with encryption
keys (--encryption-key-file) stores every chunk sealed in an envelope of
package objectstore/envelope: a 104-byte header naming the master key id
and holding the chunk's own data key, wrapped by that master key, then the
chunk's bytes in 16 KiB segments, each sealed with AES-256-GCM under the
data key with a nonce made of the segment's index and a last-segment flag.
The envelope is below this format, in the store: every offset here (the
directory's batch offsets, the index entries in Redis) is an offset into
the plaintext, and a ranged read of one batch reads only the segments that
hold it. A stored chunk therefore starts either with "MMBC" (in the clear,
written without keys) or with "MMBE" (sealed); readers with keys read both.
The envelope's byte layout is in that package's documentation, and its
fuzz targets (FuzzOpen, FuzzSealedChunk) decode sealed chunks with this
package's Decode.

# Versioning

The chunk version and the batch version are 1, the only versions that exist.
Any change to the layout, to the meaning of a field or to a limit a decoder
enforces increments the version of the part it affects; decoders reject
versions they do not know instead of guessing. Flags and reserved bytes are
zero in version 1 and decoders reject anything else, so a later version can
give them meaning without an old decoder misreading it. Codecs are numbered
the same way: a decoder rejects a codec number it does not know.
*/
package chunk
