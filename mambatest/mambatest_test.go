package mambatest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/mambatest"
)

// A producer and a group consumer go through the in-process node: every
// record produced is consumed once, with its key and value.
func TestProduceAndConsume(t *testing.T) {
	srv := mambatest.Start(t, mambatest.WithTopic("orders", 3))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	d, err := srv.Client.DescribeTopic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.PartitionStats) != 3 {
		t.Fatalf("topic has %d partitions, want 3", len(d.PartitionStats))
	}
	p, err := srv.Client.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	futures := make([]*client.Future, n)
	for i := range n {
		futures[i] = p.ProduceAsync(client.Record{Topic: "orders", Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i, f := range futures {
		if _, err := f.Result(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}

	g, err := srv.Client.NewGroupConsumer("billing", []string{"orders"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	seen := map[string]string{}
	for rec, err := range g.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		k, v := string(rec.Key), string(rec.Value)
		if prev, dup := seen[k]; dup {
			t.Fatalf("key %s read twice (%s, %s)", k, prev, v)
		}
		seen[k] = v
		if len(seen) == n {
			break
		}
	}
	if len(seen) != n {
		t.Fatalf("consumed %d records before the deadline, want %d", len(seen), n)
	}
	for i := range n {
		if got, want := seen[fmt.Sprintf("k%d", i)], fmt.Sprintf("v%d", i); got != want {
			t.Errorf("key k%d has value %q, want %q", i, got, want)
		}
	}
}

// Two servers are independent: a topic of one does not exist in the other.
func TestServersAreIsolated(t *testing.T) {
	a := mambatest.Start(t, mambatest.WithTopic("orders", 1))
	b := mambatest.Start(t)
	if a.URL == b.URL {
		t.Fatalf("both servers listen on %s", a.URL)
	}
	if _, err := b.Client.DescribeTopic(t.Context(), "orders"); !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("describe orders on the second server: err = %v, want ErrTopicNotFound", err)
	}
}

// A bad topic fails Start with the node's error, through Fatalf (caught
// here by a testing.TB that records it instead of ending this test).
func TestStartReportsBadTopic(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		mambatest.Start(rec, mambatest.WithTopic("bad name", 1))
	}()
	<-done
	if !strings.Contains(rec.msg, "create topic bad name") || !strings.Contains(rec.msg, "invalid_request") {
		t.Fatalf("Start with a bad topic name: Fatalf said %q", rec.msg)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records its message and
// ends the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
