package faultsuite

import (
	"context"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// tieringArgs run retention and garbage collection every 250 ms with
// short limits, so that both trim and delete while the producers work: a
// chunk is collected once it is older than --max-commit-age, unreferenced
// for --gc-grace, and older than the newest checkpoint.
var tieringArgs = []string{
	"--retention-interval", "250ms",
	"--gc-interval", "250ms", "--gc-grace", "1s",
	"--max-commit-age", "4s", "--write-timeout", "2s",
	"--checkpoint-interval", "500ms",
}

const (
	gcDeleted        = "mamba_gc_deleted_objects_total"
	retentionTrimmed = "mamba_retention_trimmed_entries_total"
)

// tieringScenario is a scenario on a topic keeping records for 2 s, with
// retention and GC at work, checked with trimming allowed.
func tieringScenario(name string, fault func(ctx context.Context, t *testing.T, c *cluster, sz size)) scenario {
	return scenario{
		name: name, fault: fault,
		nodeArgs:  tieringArgs,
		topicOpts: []client.TopicOpt{client.WithRetention(2 * time.Second)},
		load:      15 * time.Second,
		check:     CheckOptions{Trimmed: true},
	}
}

var tieringScenarios = []scenario{
	tieringScenario("kill-9-gc-holder", func(ctx context.Context, t *testing.T, c *cluster, _ size) {
		killJobHolder(ctx, t, c, gcDeleted)
	}),
	tieringScenario("kill-9-retention-holder", func(ctx context.Context, t *testing.T, c *cluster, _ size) {
		killJobHolder(ctx, t, c, retentionTrimmed)
	}),
	tieringScenario("kill-9-redis-during-gc", func(ctx context.Context, t *testing.T, c *cluster, _ size) {
		waitProgress(ctx, t, c, gcDeleted, nil)
		c.redis.Kill()
		mustStart(t, c.redis.Process)
		waitProgress(ctx, t, c, gcDeleted, counters(c, gcDeleted))
	}),
}

// counters reads metric on every node (-1 for a node without it).
func counters(c *cluster, metric string) []float64 {
	v := make([]float64, len(c.nodes))
	for i, n := range c.nodes {
		v[i] = metricSum(n.URL, metric, "")
	}
	return v
}

// waitProgress waits until some node's metric is above its value in base
// (above 0 when base is nil) and returns that node.
func waitProgress(ctx context.Context, t *testing.T, c *cluster, metric string, base []float64) *testserver.Mamba {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		for i, v := range counters(c, metric) {
			b := 0.0
			if base != nil {
				b = max(base[i], 0)
			}
			if v > b {
				return c.nodes[i]
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no node's %s rose above %v", metric, base)
		case <-tick.C:
		}
	}
}

// killJobHolder kills with SIGKILL the node doing the job whose work
// metric counts, once it has done some, restarts it, and waits until a
// node does that work again: the job moved on or came back.
func killJobHolder(ctx context.Context, t *testing.T, c *cluster, metric string) {
	t.Helper()
	holder := waitProgress(ctx, t, c, metric, nil)
	holder.Kill()
	mustStart(t, holder.Process)
	waitProgress(ctx, t, c, metric, counters(c, metric))
}

// TestTieringFaults kills the nodes doing retention and garbage collection,
// and Redis, while producers work on a topic whose records expire after
// 2 s: every acknowledged record at or above its partition's log start is
// read back exactly once, at its offset, and nothing below it is readable.
func TestTieringFaults(t *testing.T) {
	sz := suiteSize()
	for _, sc := range tieringScenarios {
		t.Run(sc.name, func(t *testing.T) {
			res := runScenario(t, sc, "", sz)
			report(t, res)
			requireOK(t, sc, res)
			if res.Acked == 0 || res.Expired == 0 || res.Read == 0 {
				t.Errorf("%s: acked %d, expired %d, read %d: the scenario must both keep and expire acknowledged records",
					sc.name, res.Acked, res.Expired, res.Read)
			}
		})
	}
}
