package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// startNode starts MinIO, Redis and one `mamba serve` node for the test,
// with a short flush interval so that durable acks come quickly.
func startNode(t *testing.T, extra ...string) *testserver.Mamba {
	t.Helper()
	m := testserver.StartMinIO(t)
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	bucket := m.CreateBucket(t, "mamba")
	args := append([]string{"--flush-interval", "20ms", "--log-level", "warn"}, extra...)
	return testserver.StartMamba(t, m, r, bucket, "node-a", args...)
}

// testLogger logs to the test output when MAMBA_TEST_LOG is set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("MAMBA_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

func newClient(t *testing.T, url string, opts ...client.Opt) *client.Client {
	t.Helper()
	opts = append([]client.Opt{client.WithLogger(testLogger(t))}, opts...)
	c, err := client.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

var topicSeq atomic.Int64

// createTopic creates a topic with a fresh name.
func createTopic(t *testing.T, c *client.Client, partitions int) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e6, topicSeq.Add(1))
	if _, err := c.CreateTopic(t.Context(), name, partitions); err != nil {
		t.Fatal(err)
	}
	return name
}

// readAll reads every record of every partition of topic, from the log
// start to the high watermark, with partition consumers.
func readAll(t *testing.T, c *client.Client, topic string) map[int32][]client.ConsumedRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	d, err := c.DescribeTopic(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int32][]client.ConsumedRecord)
	for _, s := range d.PartitionStats {
		pc, err := c.NewPartitionConsumer(topic, s.Partition, client.OffsetOldest, client.WithMaxWait(0))
		if err != nil {
			t.Fatal(err)
		}
		for pc.Position() < s.HighWatermark {
			recs, err := pc.Fetch(ctx)
			if err != nil {
				t.Fatalf("read %s/%d at %d: %v", topic, s.Partition, pc.Position(), err)
			}
			out[s.Partition] = append(out[s.Partition], recs...)
		}
	}
	return out
}

// startWithTopic starts a node and returns a client of it, a fresh topic
// with the given partitions, and a producer closed when the test ends.
func startWithTopic(t *testing.T, partitions int) (*client.Client, string, *client.Producer) {
	t.Helper()
	node := startNode(t)
	c := newClient(t, node.URL)
	topic := createTopic(t, c, partitions)
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return c, topic, p
}
