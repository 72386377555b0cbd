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
worker does each job and a dead worker's job moves on: every one is a Job,
whose Pass renews the lease between bounded steps. Checkpoints and restore,
which used to live here, are package recovery.

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
