/*
Package bucket owns the layout of Mamba's bucket: every object key and key
prefix, the listings of chunks, checkpoints and topic configs, the topic
config object, the whole-bucket Usage report (objects and bytes by prefix,
for benchmarks and operators), and the instrumented objectstore.Store
through which every object-store call of the product goes. No other package spells a key; they
ask this one (Tempo's tempodb/backend and Loki's object client play the same
part).

# Layout

Keys are relative to the store, which may itself sit under a prefix of a
shared bucket (objectstore.WithPrefix).

	prefix        key                                          written by  removed by
	chunks/       chunks/<chunk id>                            ingest      garbage collection (package tiering)
	topics/       topics/<topic name>/<incarnation id>.json    ingest      ingest, when the topic is deleted; garbage collection
	checkpoints/  checkpoints/<unix ms, 20 digits>-<node>.ckpt  recovery    the checkpointer, all but the newest few

Chunks are read by ingest (fetches), by restore and by dr status; topic
configs by restore; checkpoints by restore and dr status. Ping asks about the
key "readyz", which need not exist.

A chunk id (package internal/chunkid) is a ULID followed by "-" and the
writer's node id. The ULID's text starts with its millisecond timestamp and
sorts like its bytes, so chunk keys sort by creation time and ListChunks
yields chunks in the order they were written. Checkpoint keys sort by the
time of their snapshot for the same reason: the newest checkpoint is the
last one a listing returns.

The chunk format is documented in package chunk, the checkpoint format in
package recovery. A topic config object is the JSON encoding of TopicConfig,
written before the topic is registered in Redis, so that the bucket alone
knows every topic that may own chunks.

Only garbage collection deletes chunks (DeleteChunk), once no index entry
names them; ReadChunkDirectory reads the batch directory it and restore
need, and ChunksAfter lists from its cursor. Objects under these prefixes
whose keys do not parse are foreign: listings report them (ErrForeignKey),
readers skip them, and nothing deletes them.

# Metrics

Instrument wraps a Store and counts, per operation (get, get_range, put,
stat, delete, list, replication_status), the requests by result (ok,
not_found, error), their latency, and the bytes read and written; see
docs/operations.md for the metric names.
*/
package bucket
