/*
Package tiering owns the life of a record in the bucket after its first
write, so that cost follows live data and recent work, never total history.

Background jobs: a Job (NewJob) runs a Pass every interval on whichever
node holds the job's lease in Redis (metadata.JobLease); every node runs
every job, one at a time does the work, and a dead node's job moves on once
its lease runs out. A Pass does bounded steps and calls renew between them;
renew fails once the node no longer holds the lease, and the pass stops.

Built:

  - retention (Retention, NewRetentionJob; job "retention"): trims each
    partition's oldest index entries once their chunk was written more
    than the topic's retention_ms ago (append time, decoded from the chunk
    id, as Kafka's LogAppendTime) or while the partition stays at or above
    retention_bytes without them, in steps of at most
    RetentionConfig.MaxTrim entries (metadata.Store.TopicHead, which
    reads the topic's retention again with the entries so that a PATCH
    takes effect at the next step, then metadata.Store.Trim). Ages are
    measured by Redis's clock (metadata.Store.Now, once per pass), as
    commit and garbage collection do. Trimming raises the log start offset and takes
    the entries off the topic's refs and bytes hashes; it deletes no
    object. The lease holder also publishes per-topic gauges (stored bytes,
    objects, log start age). See docs/operations.md, "Retention".
  - garbage collection (Collector, NewGCJob; job "gc"): deleting an object
    only after a grace period once nothing references it (chunks whose
    entries retention trimmed, deleted topics' chunks and configs, orphans
    of a PUT that was never committed); see "Garbage collection" below and
    docs/operations.md;
  - consumer group expiry (GroupJanitor; job "groups"): see below.

Still to come:

  - compaction: rewriting a node's small multi-topic L0 chunks into large
    per-partition segments with an offset index inside, and swapping their
    index entries in Redis atomically (the old chunks stay authoritative
    until the swap commits);
  - storage classes: moving old segments to colder classes where the backend
    has them.

Checkpoints and restore, which used to live here, are package recovery.

# Consumer group expiry

The group janitor (GroupJanitor, the job named "groups") keeps consumer
group state following the groups in use: each pass walks the groups set a
page at a time and deletes, with metadata.Store.ExpireGroup (one atomic
script that UNLINKs the group's keys), every group with no live member
whose last join, heartbeat, leave or offset commit is older than the
retention (--group-retention, 7 days by default; 0 disables expiry), age
and liveness measured by Redis's clock (TIME in the script), not the lease
holder's. It also removes from every group the committed offsets of topics
that no longer exist, comparing each offset with the value it read so that
one committed since is kept; that a topic does not exist is remembered
only for the page of offsets it was looked up for, so a topic created
again during the pass keeps the offsets committed to it since. It counts mamba_groups_expired_total and
mamba_group_offsets_removed_total.

# Garbage collection

The Collector deletes chunks that no index entry names any more (retention
trimmed them, their topic was deleted, or they were uploaded and never
committed) and topic config objects of incarnations Redis does not have.
A chunk is unreferenced when metadata.Store.Referenced is false for every
topic its directory (bucket.ReadChunkDirectory) holds batches of. Each
pass sweeps, then marks what trims handed over, then marks from its
listing:

  - sweep: pending objects (metadata GCPending) marked more than Grace ago,
    and, with CheckpointGate, before the newest checkpoint in the bucket,
    are checked again and deleted if still unreferenced; every one leaves
    the pending set (deleted, referenced again, or gone);
  - hand-over (handOver): up to Batch chunk ids that retention's trims
    left unreferenced are taken from the topics' lists
    (metadata.Store.TakeUnreferenced) and marked, with Redis's clock read
    after their references, when no topic they hold names them and they
    are past the commit age limit; the others are left to the listing;
  - mark: up to Batch chunks after the cursor (metadata GCCursor) that are
    older than the commit age limit (metadata.Store.CommitAgeLimit: younger
    ones may still be committed, and commit.lua refuses older ones) are
    examined; unreferenced ones are marked with Redis's clock read after
    their references were (not the pass's start time: a checkpoint taken
    before the read may still name the chunk, and must be older than the
    mark). The first
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
Batch handed-over and Batch listed chunks and deletes at most Batch
objects; the node running the job remembers the topics of up to 100 000
chunks; a topic's hand-over list
holds at most metadata.MaxUnreferenced ids. The listing's work over time
is not bounded by the garbage: each cycle of the cursor examines every
chunk past the commit age limit, live or not, so a cycle lasts about
w(R+G)/(g-w) (w chunks written per second, g = Batch per interval
examined, R the retention, G the grace), which is how long an orphan, a
deleted topic's chunk or a chunk not handed over waits to be marked;
docs/operations.md, "Cost and bounds", says when to raise Batch.
*/
package tiering
