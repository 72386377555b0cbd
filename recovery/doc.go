/*
Package recovery owns metadata checkpoints, restoring Redis from the
bucket, and comparing a bucket with its replica: everything needed to serve
again after Redis is lost, here or in another region from a replica bucket.

A Checkpointer runs on every node. Every interval the node that holds the
checkpoint job's lease in Redis (metadata.JobLease) takes a
metadata.Snapshot, writes it to the bucket as a checkpoint and deletes all
but the newest few checkpoints. Restore rebuilds an empty Redis from the
bucket: it loads the newest checkpoint that decodes, then replays the chunks
written since, so that everything acknowledged is readable again.

# Checkpoint objects

Package bucket owns every key name and listing, checkpoints included; this
package never spells a key. A checkpoint is stored at

	checkpoints/<unix ms, 20 digits, zero-padded>-<node id>.ckpt

(bucket.CheckpointKey) where the time is the snapshot's (Redis's clock when it began) and the node
is the writer's. Keys therefore sort by time, and the newest checkpoint is
the last one a listing returns.

# Checkpoint layout

A checkpoint is a fixed 32-byte header followed by the payload. Integers in
the header are unsigned and big-endian; CRCs are CRC-32C (Castagnoli).

	offset size field
	0      4    magic: the ASCII bytes "MMCP"
	4      1    version: 2 (1 is still read)
	5      1    flags: 0
	6      2    reserved: 0
	8      4    CRC of the P payload bytes
	12     8    payload length P, 1..MaxPayloadBytes
	20     8    snapshot length U: the payload decompressed, 1..MaxSnapshotBytes
	28     4    CRC of header bytes [0, 28)
	32     P    payload: zstd frames that decompress to exactly U bytes

The object is exactly 32+P bytes. U is at most 32768*P (a zstd block yields
at most 128 KiB and costs at least 4 bytes), so a decoder rejects a hostile
U before it allocates U bytes.

# Snapshot encoding

The decompressed payload encodes one metadata.Snapshot. "uvarint" and
"varint" are encoding/binary's unsigned and zigzag-signed varints; a
"string" is a uvarint length followed by that many bytes. Lists are a
uvarint count followed by the elements; every count is checked against the
bytes left (each element takes at least one byte) before anything is sized
by it.

	varint   snapshot time, unix ms
	uvarint  topic count, then per topic:
	  string   name
	  string   id (the topic's incarnation)
	  uvarint  partition count N, 1..metadata.MaxPartitions
	  varint   retention ms
	  varint   created ms
	  varint   retention bytes per partition (version 2 only; 0 in version 1)
	  N times, for partitions 0..N-1:
	    varint   log start offset
	    varint   high watermark
	    uvarint  index entry count, then per entry, in offset order:
	      varint   base offset
	      uvarint  record count
	      string   chunk id
	      varint   byte offset of the batch in the chunk
	      varint   byte length of the batch
	  uvarint  commit marker count, then per marker:
	    string   chunk id
	    string   stored commit result
	    uvarint  remaining TTL in ms (0: none)
	  uvarint  idempotency record count, then per record:
	    string   topic id
	    string   idempotency key
	    string   stored answer
	    uvarint  remaining TTL in ms (0: none)
	uvarint  group count, then per group:
	  string   name
	  varint   last lease handed out
	  uvarint  committed offset count, then per offset:
	    string   topic
	    uvarint  partition
	    varint   offset

No bytes follow the last group. The decoded snapshot must pass
metadata.Snapshot.Validate. Decoding never panics, whatever the input.

# Versioning

Version 2 added the retention bytes of each topic; decoders read
versions 1 and 2 and write 2. Any change to the header, the snapshot
encoding or a limit a decoder enforces makes a new version, and decoders
reject versions, flags and reserved bytes they do not know.

# Restore

Restore needs a Redis with no key under the prefix (or Force, which deletes
them first). It loads the newest checkpoint that decodes, reporting and
skipping corrupt ones, then replays every chunk whose id time is at least
the checkpoint's time minus the metadata store's commit age limit
(metadata.Store.CommitAgeLimit, ReplayMargin by default): no chunk older
than that can be committed after the checkpoint, and one of that window
committed before it has its commit marker in the checkpoint (markers live
at least as long as the limit), so a chunk that retention trimmed before
the checkpoint is not indexed again.

Before it changes the store (Force's wipe included), Restore checks that
the bucket holds every chunk the checkpoint's index names, listing only
from the oldest named chunk to the newest. A missing one fails the restore
with a *MissingChunksError (wrapping ErrMissingChunks) naming the count and
the first keys: a replica bucket may simply not have received it yet
(replication does not keep write order), and the collector never deletes a
chunk the newest checkpoint names, so dropping entries would lose
acknowledged records for good. With RestoreOptions.AllowMissingChunks the
entries are treated as trimmed instead: in each partition, entries up to
the last one naming a missing chunk are dropped and the log start moves
past them (RestoreSummary.ChunksMissing and EntriesDropped count them, the
log warns). The replay's listing starts after the key below its first
chunk (bucket.ChunkListing), so neither listing grows with the bucket's
history on stores with a "start after" (S3, MinIO). Chunks are replayed in id order;
each chunk's batches are committed with metadata.Commit under the topic
incarnation that existed when the chunk was written, except batches whose
commit the store already holds (an index entry or a commit marker for the
chunk and topic). Records committed after the checkpoint get offsets again,
which may differ from the offsets they were first given.

Reads of the bucket that fail transiently are retried with internal/retry:
at most five attempts, backing off from 50ms.

# Encryption at rest

The store given to the checkpointer and to Restore may seal objects
(objectstore/envelope): a checkpoint is then stored inside an envelope
whose header names the master key id, and the layout above is its
plaintext. A sealed checkpoint that fails authentication counts as
corrupt (the restore goes on to the one before it); one whose key id the
keyring lacks, or whose key does not match, stops the restore before it
changes the store, naming the key id.

# Replication status

CompareBuckets lists a bucket and its replica (the chunks and checkpoints,
through package bucket) and reports how far the replica is behind: what
mamba dr status prints, and what dr failover --wait-in-sync-with waits on.
*/
package recovery
