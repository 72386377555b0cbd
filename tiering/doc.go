/*
Package tiering will own the life of a record in the bucket after its first
write, so that cost follows live data and recent work, never total history:

  - compaction: rewriting a node's small multi-topic L0 chunks into large
    per-partition segments with an offset index inside, and swapping their
    index entries in Redis atomically (the old chunks stay authoritative
    until the swap commits);
  - retention by time and bytes: advancing each partition's log start offset
    and trimming its index in small bounded steps;
  - garbage collection: deleting an object only after a grace period once
    nothing references it (compacted L0 chunks, expired segments, deleted
    topics' chunks, orphans of a PUT that was never committed);
  - storage classes: moving old segments to colder classes where the backend
    has them.

Background jobs here take leases in Redis (metadata.JobLease) so that one
worker does each job and a dead worker's job moves on. None of this is built
yet: today nothing is ever deleted (see docs/operations.md). Checkpoints and
restore, which used to live here, are package recovery.
*/
package tiering
