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
    RetentionConfig.MaxTrim entries (metadata.Store.Head, then
    metadata.Store.Trim). Trimming raises the log start offset and takes
    the entries off the topic's refs and bytes hashes; it deletes no
    object. The lease holder also publishes per-topic gauges (stored bytes,
    objects, log start age). See docs/operations.md, "Retention".

Still to come:

  - compaction: rewriting a node's small multi-topic L0 chunks into large
    per-partition segments with an offset index inside, and swapping their
    index entries in Redis atomically (the old chunks stay authoritative
    until the swap commits);
  - garbage collection: deleting an object only after a grace period once
    nothing references it (compacted L0 chunks, chunks whose entries
    retention trimmed, deleted topics' chunks, orphans of a PUT that was
    never committed);
  - storage classes: moving old segments to colder classes where the backend
    has them.

Checkpoints and restore, which used to live here, are package recovery.

The group janitor (GroupJanitor, the job named "groups") keeps consumer
group state following the groups in use: each pass walks the groups set a
page at a time and deletes, with metadata.Store.ExpireGroup (one atomic
script that UNLINKs the group's keys), every group with no live member
whose last join, heartbeat, leave or offset commit is older than the
retention (--group-retention, 7 days by default; 0 disables expiry). It
also removes from every group the committed offsets of topics that no
longer exist, comparing each offset with the value it read so that one
committed since is kept. It counts mamba_groups_expired_total and
mamba_group_offsets_removed_total.
*/
package tiering
