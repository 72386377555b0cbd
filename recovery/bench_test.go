package recovery_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/recovery"
)

var (
	restoreChunks      = flag.Int("restore-chunks", 10000, "chunks in the bucket BenchmarkRestore restores from")
	restoreConcurrency = flag.Int("restore-concurrency", 0, "directory reads in flight in BenchmarkRestore (0: the default)")
)

// BenchmarkRestore builds a bucket of -restore-chunks small chunks (three
// batches in two topics each), all committed, with a checkpoint taken
// after half of them, and times restoring it into an empty Redis: the
// checkpoint is loaded and every chunk's directory is read, since all of
// them are younger than the replay margin; the first half is found in the
// checkpoint and the second half committed again.
//
//	go test ./recovery -run '^$' -bench BenchmarkRestore -benchtime 1x
func BenchmarkRestore(b *testing.B) {
	ctx := b.Context()
	store := newBucket(b)
	meta := newMeta(b)
	topics := []metadata.Topic{
		{Name: "orders", ID: "orders-1", Partitions: 8, CreatedMS: 1},
		{Name: "audit", ID: "audit-1", Partitions: 2, CreatedMS: 1},
	}
	for _, t := range topics {
		cfg, _ := json.Marshal(map[string]any{"name": t.Name, "id": t.ID, "partitions": t.Partitions, "retention_ms": 0, "created_ms": t.CreatedMS})
		if err := store.Put(ctx, bucket.TopicPrefix+t.Name+"/"+t.ID+".json", cfg); err != nil {
			b.Fatal(err)
		}
		if err := meta.CreateTopic(ctx, t); err != nil {
			b.Fatal(err)
		}
	}

	n := *restoreChunks
	start := time.Now()
	chunks := writeChunks(b, store, n)
	b.Logf("wrote %d chunks in %v", n, time.Since(start))

	start = time.Now()
	ckpt, err := recovery.NewCheckpointer(recovery.CheckpointConfig{NodeID: "bench"}, meta, store, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i, c := range chunks {
		if i == n/2 {
			info, err := ckpt.Checkpoint(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("checkpoint after %d chunks: %d bytes in %v", i, info.Bytes, info.Duration)
		}
		for t, batches := range c.batches {
			if _, err := meta.Commit(ctx, topics[t], c.id, batches); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Logf("committed %d chunks in %v", n, time.Since(start))

	fresh := newMeta(b)
	b.ResetTimer()
	for range b.N {
		sum, err := recovery.Restore(ctx, store, fresh, recovery.RestoreOptions{Force: true, Concurrency: *restoreConcurrency})
		if err != nil {
			b.Fatal(err)
		}
		if sum.ChunksScanned != n || sum.ChunksReplayed != n-n/2 {
			b.Fatalf("restore scanned %d chunks and replayed %d, want %d and %d", sum.ChunksScanned, sum.ChunksReplayed, n, n-n/2)
		}
		b.Logf("restored %d chunks (%d replayed, %d records indexed) in %v", sum.ChunksScanned, sum.ChunksReplayed, sum.RecordsIndexed, sum.Duration)
		b.ReportMetric(sum.Duration.Seconds(), "s/restore")
		b.ReportMetric(float64(n)/sum.Duration.Seconds(), "chunks/s")
	}
}

type benchChunk struct {
	id      string
	batches [2][]metadata.Batch // by topic: orders, audit
}

// writeChunks puts n small chunks into the bucket, 32 at a time, and
// returns them in id order.
func writeChunks(b *testing.B, store objectstore.Store, n int) []benchChunk {
	gen, err := chunkid.NewGenerator("bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	chunks := make([]benchChunk, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var mu sync.Mutex
	var firstErr error
	for i := range chunks {
		id, err := gen.New()
		if err != nil {
			b.Fatal(err)
		}
		w, err := chunk.NewWriter(id.String())
		if err != nil {
			b.Fatal(err)
		}
		specs := []struct {
			topic   int
			spec    chunk.BatchSpec
			records int
		}{
			{0, chunk.BatchSpec{Topic: "orders", Partition: int32(i % 8)}, 5},
			{0, chunk.BatchSpec{Topic: "orders", Partition: int32((i + 1) % 8), IdempotencyKey: fmt.Sprintf("req-%d", i)}, 3},
			{1, chunk.BatchSpec{Topic: "audit", Partition: int32(i % 2)}, 2},
		}
		for _, s := range specs {
			recs := make([]chunk.Record, s.records)
			for j := range recs {
				recs[j] = chunk.Record{Value: fmt.Appendf(nil, "chunk %d record %d", i, j), Timestamp: int64(i)}
			}
			if _, err := w.Add(s.spec, recs); err != nil {
				b.Fatal(err)
			}
		}
		data, infos, err := w.Finish()
		if err != nil {
			b.Fatal(err)
		}
		c := benchChunk{id: id.String()}
		for k, s := range specs {
			c.batches[s.topic] = append(c.batches[s.topic], metadata.Batch{
				Partition: infos[k].Partition, Records: infos[k].Records, Offset: infos[k].Offset, Length: infos[k].Length,
				IdempotencyKey: infos[k].IdempotencyKey, Layout: metadata.BatchOrderLayout([]int32{infos[k].Partition}, []int{infos[k].Records}),
			})
			if infos[k].IdempotencyKey == "" {
				c.batches[s.topic][len(c.batches[s.topic])-1].Layout = ""
			}
		}
		chunks[i] = c
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := store.Put(b.Context(), bucket.ChunkPrefix+c.id, data); err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return chunks
}
