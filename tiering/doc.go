/*
Package tiering owns the life of a record in the bucket after its first
write, so that cost follows live data and recent work, never total history:

  - compaction: rewriting a node's small multi-topic L0 chunks into large
    per-partition segments with an offset index inside, and swapping their
    index entries in Redis atomically (the old chunks stay authoritative
    until the swap commits);
  - retention by time and bytes: advancing each partition's log start offset
    and trimming its index in small bounded steps;
  - garbage collection (Collector, NewGCJob): deleting an object only after
    a grace period once nothing references it;
  - storage classes: moving old segments to colder classes where the backend
    has them.

Background jobs here are Jobs: each takes a lease in Redis
(metadata.JobLease) so that one worker does it and a dead worker's job
moves on, and its Pass renews the lease between bounded steps.

# Garbage collection

The Collector deletes chunks that no index entry names any more (retention
trimmed them, their topic was deleted, or they were uploaded and never
committed) and topic config objects of incarnations Redis does not have.
A chunk is unreferenced when metadata.Store.Referenced is false for every
topic its directory (bucket.ReadChunkDirectory) holds batches of. Each
pass first sweeps, then marks:

  - sweep: pending objects (metadata GCPending) marked more than Grace ago,
    and, with CheckpointGate, before the newest checkpoint in the bucket,
    are checked again and deleted if still unreferenced; every one leaves
    the pending set (deleted, referenced again, or gone);
  - mark: up to Batch chunks after the cursor (metadata GCCursor) that are
    older than the commit age limit (metadata.Store.CommitAgeLimit: younger
    ones may still be committed, and commit.lua refuses older ones) are
    examined; unreferenced ones are marked with Redis's clock. The first
    chunk too young, or the end of the listing, sends the cursor back to
    the start, and then the topic configs are examined too.

Invariants: an object is deleted only if it was unreferenced at its mark
and still is at the sweep; only chunks past the commit age limit are
marked, and nothing can reference such a chunk again (no commit accepts
it; restore runs with no node serving); with CheckpointGate, the newest
checkpoint was taken after the mark, so it does not name the object.
Corrupt chunks and foreign keys are never deleted. Two nodes running a
pass at once (a lease is not a fence) only repeat work: marks keep the
first time, and deleting twice is harmless.

Bounds: the pending set holds at most MaxPending objects plus the topic
configs (a pass marks nothing while it is full); a pass examines at most
Batch chunks and deletes at most Batch objects; the node running the job
remembers the topics of up to 100 000 chunks.
*/
package tiering
