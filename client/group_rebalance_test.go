package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
)

const (
	rebalanceRecords    = 100_000
	rebalancePartitions = 4
	rebalanceBatch      = 500 // WithMaxRecords: one fetch batch
)

// handed is what one member was handed: per partition, every offset, in
// order, repeats included.
type handed struct {
	mu   sync.Mutex
	offs map[int32][]int64
}

func (h *handed) add(recs ...client.ConsumedRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range recs {
		h.offs[r.Partition] = append(h.offs[r.Partition], r.Offset)
	}
}

// seen counts the distinct records handed to any member.
type seen struct {
	mu   sync.Mutex
	set  map[[2]int64]bool
	done chan struct{}
}

func (s *seen) add(recs ...client.ConsumedRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		s.set[[2]int64{int64(r.Partition), r.Offset}] = true
	}
	if len(s.set) == rebalanceRecords {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
	}
}

// rebalanceResult sums up a run of two members.
type rebalanceResult struct {
	handed, distinct, duplicates int
	// moved are the partitions both members were handed records of.
	moved int
}

// runTwoMembers starts two members of a fresh group together on topic,
// each running consume, until every record was handed to one of them and
// the group committed every partition to its high watermark; then it
// closes them and compares what each was handed.
func runTwoMembers(t *testing.T, c *client.Client, topic, group string, opts []client.GroupOpt,
	consume func(ctx context.Context, g *client.GroupConsumer, h *handed, s *seen) error) rebalanceResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s := &seen{set: map[[2]int64]bool{}, done: make(chan struct{})}
	members := [2]*handed{{offs: map[int32][]int64{}}, {offs: map[int32][]int64{}}}
	gs := [2]*client.GroupConsumer{}
	for i := range gs {
		gs[i] = newGroupConsumer(t, c, group, []string{topic}, opts...)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errs := make(chan error, 2)
	start := time.Now()
	for i := range gs {
		go func() { errs <- consume(runCtx, gs[i], members[i], s) }()
	}
	select {
	case <-s.done:
	case err := <-errs:
		t.Fatalf("member stopped early: %v", err)
	case <-ctx.Done():
		t.Fatalf("only %d of %d records handed within a minute", len(s.set), rebalanceRecords)
	}
	// Every record was handed; wait for the commits to cover them, so
	// that a record read again after a late move would show up.
	for {
		d, err := c.DescribeGroup(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		lag := int64(0)
		for _, o := range d.Offsets {
			lag += o.Lag
		}
		if len(d.Offsets) == rebalancePartitions && lag == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s never committed everything: %+v", group, d.Offsets)
		case <-time.After(20 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	stop()
	for range gs {
		if err := <-errs; err != nil {
			t.Fatalf("member: %v", err)
		}
	}
	for _, g := range gs {
		if err := g.Close(ctx); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
	var res rebalanceResult
	for p := int32(0); p < rebalancePartitions; p++ {
		both := true
		for _, m := range members {
			res.handed += len(m.offs[p])
			both = both && len(m.offs[p]) > 0
		}
		if both {
			res.moved++
		}
	}
	res.distinct = len(s.set)
	res.duplicates = res.handed - res.distinct
	t.Logf("%d records handed, %d distinct, %d duplicates, %d partitions read by both members, in %v",
		res.handed, res.distinct, res.duplicates, res.moved, elapsed.Round(time.Millisecond))
	if res.distinct != rebalanceRecords {
		t.Fatalf("%d of %d records handed", res.distinct, rebalanceRecords)
	}
	if res.moved == 0 {
		t.Fatalf("no partition moved between the members while records were left: the test measured nothing")
	}
	return res
}

// work stands for the application's processing of a batch, so that the
// members are still reading when the group moves partitions.
func work() { time.Sleep(2 * time.Millisecond) }

// Two members started together on 4 partitions of 100,000 records: with
// the cooperative hand-over, none is read twice when each member commits
// before each fetch, and at most one fetch batch per moved partition with
// Records and auto-commit.
func TestGroupRebalanceDuplicates(t *testing.T) {
	c, topic, p := startWithTopic(t, rebalancePartitions)
	ctx := t.Context()
	value := []byte("0123456789abcdef")
	for i := range rebalanceRecords {
		p.ProduceAsync(client.Record{Topic: topic, Value: value, Partition: new(int32(i % rebalancePartitions))})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	opts := []client.GroupOpt{client.WithHeartbeatInterval(200 * time.Millisecond), client.WithMaxRecords(rebalanceBatch),
		client.WithMaxWait(200 * time.Millisecond)}

	t.Run("explicit commits before each fetch", func(t *testing.T) {
		res := runTwoMembers(t, c, topic, "explicit", opts, func(ctx context.Context, g *client.GroupConsumer, h *handed, s *seen) error {
			for ctx.Err() == nil {
				recs, err := g.Fetch(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				h.add(recs...)
				s.add(recs...)
				work()
				if err := g.Commit(ctx); err != nil && ctx.Err() == nil {
					return fmt.Errorf("commit: %w", err)
				}
			}
			return nil
		})
		if res.duplicates != 0 {
			t.Fatalf("%d records handed twice, want none", res.duplicates)
		}
	})

	t.Run("Records with auto-commit", func(t *testing.T) {
		res := runTwoMembers(t, c, topic, "auto", append(opts, client.WithAutoCommit(time.Second)),
			func(ctx context.Context, g *client.GroupConsumer, h *handed, s *seen) error {
				n := 0
				for rec, err := range g.Records(ctx) {
					if err != nil {
						return err
					}
					h.add(rec)
					s.add(rec)
					if n++; n%rebalanceBatch == 0 {
						work()
					}
				}
				return nil
			})
		if bound := rebalanceBatch * res.moved; res.duplicates > bound {
			t.Fatalf("%d records handed twice, want at most one fetch batch (%d) per moved partition (%d)", res.duplicates, rebalanceBatch, bound)
		}
	})
}
