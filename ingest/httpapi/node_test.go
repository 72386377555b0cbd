package httpapi

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore/miniostore"
)

// startNode runs an ingest node on its own MinIO and Redis and drains it
// when the test ends. A zero FlushInterval is 20ms here.
func startNode(t *testing.T, cfg ingest.Config) *ingest.Node {
	t.Helper()
	m := testserver.StartMinIO(t)
	r := testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})
	store, err := miniostore.New(miniostore.Config{
		Endpoint: m.Endpoint, Bucket: m.CreateBucket(t, "mamba"), PathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	if cfg.NodeID == "" {
		cfg.NodeID = fmt.Sprintf("node-%d", time.Now().UnixNano())
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 20 * time.Millisecond
	}
	n, err := ingest.New(cfg, metadata.New(rdb, metadata.Options{}), store, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		if err := n.Close(dctx); err != nil {
			t.Errorf("close node: %v", err)
		}
		cancel()
		<-done
	})
	return n
}

// readAll reads every partition of topic from n, from its log start to
// its high watermark.
func readAll(t *testing.T, n *ingest.Node, topic string) map[int32][]ingest.FetchedRecord {
	t.Helper()
	desc, err := n.DescribeTopic(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32][]ingest.FetchedRecord{}
	for _, ps := range desc.PartitionStats {
		for off := ps.LogStartOffset; off < ps.HighWatermark; {
			res, err := n.Fetch(t.Context(), ingest.FetchRequest{Topic: topic, Partition: ps.Partition, Offset: off, MaxRecords: 97})
			if err != nil {
				t.Fatalf("fetch %s/%d at %d: %v", topic, ps.Partition, off, err)
			}
			if len(res.Records) == 0 || res.NextOffset <= off {
				t.Fatalf("fetch %s/%d at %d below high watermark %d returned nothing", topic, ps.Partition, off, ps.HighWatermark)
			}
			out[ps.Partition] = append(out[ps.Partition], res.Records...)
			off = res.NextOffset
		}
	}
	return out
}
