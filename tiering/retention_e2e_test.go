package tiering_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/ingest/httpapi"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/tiering"
)

// TestRetentionEndToEnd produces through a node's HTTP API, shrinks the
// topic's retention with PATCH, runs the retention job once, and checks
// what a consumer and describe see: offset_out_of_range below the new log
// start, naming it, and fewer stored bytes.
func TestRetentionEndToEnd(t *testing.T) {
	ctx := t.Context()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	meta := metadata.New(rdb, metadata.Options{})
	mem := objectstore.NewMemory()
	reg := prometheus.NewRegistry()
	node, err := ingest.New(ingest.Config{NodeID: "node-a", FlushInterval: 10 * time.Millisecond}, meta, bucket.Instrument(mem, reg), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(runCtx) }()
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := node.Close(dctx); err != nil {
			t.Errorf("close node: %v", err)
		}
		stop()
		<-done
	})
	srv := httptest.NewServer(httpapi.NewHandler(node, httpapi.Options{}, reg, reg, nil))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic(ctx, "events", 1); err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	for i := range 4 { // one durable ack at a time: four chunks
		if _, err := p.Produce(ctx, client.Record{Topic: "events", Value: []byte(strings.Repeat(fmt.Sprint(i), 500))}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := c.DescribeTopic(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}

	job, err := tiering.NewRetentionJob(
		tiering.JobConfig{Name: tiering.RetentionJobName, Holder: "node-a", Interval: time.Minute, LeaseTTL: 10 * time.Second},
		tiering.RetentionConfig{}, meta, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Without retention, a pass trims nothing.
	if ran, err := job.RunOnce(ctx); err != nil || !ran {
		t.Fatalf("first pass: %v %v", ran, err)
	}
	if d, _ := c.DescribeTopic(ctx, "events"); d.PartitionStats[0].LogStartOffset != 0 {
		t.Fatalf("a topic without retention was trimmed: %+v", d.PartitionStats)
	}

	// Room for the newest two batches only.
	two := before.StoredBytes / 2
	if _, err := c.UpdateTopic(ctx, "events", client.WithRetentionBytes(two)); err != nil {
		t.Fatal(err)
	}
	if ran, err := job.RunOnce(ctx); err != nil || !ran {
		t.Fatalf("pass: %v %v", ran, err)
	}
	after, err := c.DescribeTopic(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	ps := after.PartitionStats[0]
	if ps.LogStartOffset != 2 || ps.HighWatermark != 4 || after.Objects != 2 || after.StoredBytes >= before.StoredBytes || after.StoredBytes < two {
		t.Fatalf("after retention: %+v (stored %d of %d, limit %d), want log start 2 and 2 objects", after, after.StoredBytes, before.StoredBytes, two)
	}
	want := `# HELP mamba_retention_trimmed_entries_total Index entries (batches) retention trimmed on this node.
# TYPE mamba_retention_trimmed_entries_total counter
mamba_retention_trimmed_entries_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "mamba_retention_trimmed_entries_total"); err != nil {
		t.Fatal(err)
	}

	// Below the log start: 400 offset_out_of_range naming the log start.
	resp, err := http.Get(srv.URL + "/v1/topics/events/partitions/0/records?offset=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 || body.Error.Code != "offset_out_of_range" || !strings.Contains(body.Error.Message, "log start 2") {
		t.Fatalf("fetch below the log start: %d %+v, want 400 offset_out_of_range naming log start 2", resp.StatusCode, body.Error)
	}
	pc, err := c.NewPartitionConsumer("events", 0, 2, client.WithMaxWait(0))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := pc.Fetch(ctx)
	if err != nil || len(recs) != 2 || recs[0].Offset != 2 {
		t.Fatalf("fetch from the log start: %d records, %v; want offsets 2 and 3", len(recs), err)
	}
	if err := pc.SetPosition(0); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Fetch(ctx); !errors.Is(err, client.ErrOffsetOutOfRange) {
		t.Fatalf("SDK fetch below the log start: %v, want ErrOffsetOutOfRange", err)
	}
}
