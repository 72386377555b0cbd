/*
Package envelope encrypts objects at rest with keys the node holds: every
object a Store writes (chunks, checkpoints, topic configs) is sealed with
AES-256-GCM under a fresh random data key, and the data key is wrapped
(AES-256-GCM) by a master key from a Keyring. A copy of the bucket is
unreadable without the master key, whatever the object store does.

Objects are sealed in fixed-size segments, each authenticated on its own, so
a ranged read of plaintext bytes [off, off+n) fetches only the segments that
cover them: a fetch that reads one batch of a chunk stays one ranged GET
(after the object's header, read once per object and cached). Offsets seen
by callers are plaintext offsets, so chunk directories and index entries
are the same whether or not a chunk is sealed.

# Layout

An envelope is a header followed by one or more segments:

	+----------------+-------------------+-------------------+-----+
	| header (104 B) | segment 0 (S+16)  | segment 1 (S+16)  | ... |
	+----------------+-------------------+-------------------+-----+

All integers are big-endian. The header has a fixed size of HeaderSize
(104) bytes:

	offset size field
	0      4    magic: the ASCII bytes "MMBE"
	4      1    version: 1
	5      1    algorithm: 1 (AES-256-GCM for the key wrap and the segments)
	6      1    segment shift: the segment size S is 2^shift, 10..24
	            (writers use SegmentShift, 14: 16 KiB)
	7      1    key id length L, 1..MaxKeyIDLen (32)
	8      32   key id: L bytes of [A-Za-z0-9._-], then zero padding
	40     12   wrap nonce: random
	52     48   wrapped data key: AES-256-GCM of the 32-byte data key under
	            the master key named by the key id, with the wrap nonce; its
	            associated data is header bytes [0, 40) followed by the
	            object's key
	100    4    CRC-32C (Castagnoli) of header bytes [0, 100)

A plaintext of P bytes is cut into max(1, ceil(P/S)) segments of S bytes,
the last one holding the remaining 0..S bytes (0 only when P is 0). Segment
i is the AES-256-GCM sealing of its plaintext under the data key, with no
associated data and the 12-byte nonce

	offset size field
	0      8    i
	8      3    zero
	11     1    1 for the last segment, else 0

and is stored as its ciphertext followed by the 16-byte tag (TagSize). The
stored size is thus 104 + P + 16*segments, and PlainSize computes P back
from it.

# What is authenticated

The CRC catches accidental damage of the header before any key is used, so
a corrupt header is told apart from a wrong key. The key wrap authenticates
the header's fields and binds the envelope to its object key: an object
copied to another key does not open (ErrWrongKey). Each data key is random
and used for one object only, so segment nonces never repeat under a key;
the index in the nonce keeps segments in place and the last-segment flag
makes a truncated object fail (ErrCorrupt) instead of reading short.

# Keys

A Keyring holds up to MaxKeys master keys by id; the first is the active
one, used for every new object, and all of them open objects. Rotating a
key is adding a new one to every process's keyring, then making it the
first; objects sealed under the old key stay readable while the old key is
in the ring. A sealed object whose key id the ring lacks fails with
ErrUnknownKey naming the id; key material never appears in an error.

Objects that do not start with the magic are read as they are, so a bucket
written before encryption was turned on keeps working (mixed buckets). An
object whose plaintext begins with "MMBE" would be taken for a sealed one;
Mamba's objects begin with other magics or with JSON.

# Versioning

The version, algorithm and segment shift are checked before anything else
is trusted; decoders reject values they do not know. Any change of the
layout increments the version.
*/
package envelope
