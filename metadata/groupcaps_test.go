package metadata_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
)

// capsTopic is the one topic of the group at the caps: every partition
// the group may hold.
var capsTopic = topic("big", metadata.MaxGroupPartitions)

// redisCPU is the CPU time Redis's main thread has used so far (INFO
// cpu). Scripts run on that thread, so the difference across one script
// call is the call's work, whatever else runs on the machine.
func redisCPU(t *testing.T, rdb *redis.Client) time.Duration {
	t.Helper()
	info, err := rdb.Info(t.Context(), "cpu").Result()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	found := 0
	for line := range strings.SplitSeq(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		if k == "used_cpu_sys_main_thread" || k == "used_cpu_user_main_thread" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("INFO cpu %s: %v", line, err)
			}
			sum += f
			found++
		}
	}
	if found != 2 {
		t.Fatalf("INFO cpu has no main thread times (Redis 6.2 or later has): %q", info)
	}
	return time.Duration(sum * float64(time.Second))
}

// seedGroupAtCaps writes group g as members joins and heartbeats would
// leave it: members m0000... subscribed to capsTopic, whose partitions
// they hold round-robin, nothing revoking. Member i expires at
// expires(i).
func seedGroupAtCaps(t *testing.T, rdb *redis.Client, members int, expires func(i int) time.Time) {
	t.Helper()
	ctx := t.Context()
	p := rdb.Pipeline()
	var fields []any
	for i := range members {
		m := fmt.Sprintf("m%04d", i)
		sum := sha256.Sum256([]byte(keyOf(m)))
		fields = append(fields, m, "big|60000|"+hex.EncodeToString(sum[:]))
		p.ZAdd(ctx, groupKeys+"expiry", redis.Z{Score: float64(expires(i).UnixMilli()), Member: m})
	}
	p.HSet(ctx, groupKeys+"members", fields...)
	fields = fields[:0]
	for part := range capsTopic.Partitions {
		fields = append(fields, fmt.Sprintf("big/%d", part), fmt.Sprintf("m%04d|%d", int(part)%members, part+1))
	}
	p.HSet(ctx, groupKeys+"owners", fields...)
	p.HSet(ctx, groupKeys+"topics", "big", capsTopic.Partitions)
	p.Set(ctx, groupKeys+"lease", capsTopic.Partitions, 0)
	p.SAdd(ctx, "mamba:groups", "g")
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// probe pings Redis until stop is closed and returns the slowest answer:
// what any other client waited at worst while the group's scripts ran.
func probe(ctx context.Context, rdb *redis.Client, stop <-chan struct{}) (worst time.Duration, err error) {
	for {
		select {
		case <-stop:
			return worst, nil
		default:
		}
		start := time.Now()
		if err := rdb.Ping(ctx).Err(); err != nil {
			return worst, err
		}
		worst = max(worst, time.Since(start))
	}
}

// TestGroupScriptsAtTheCaps runs group_sync.lua on a group at the limits,
// 1,000 members and 10,000 partitions, and checks the Redis CPU time of
// each call (CPU, not wall time, so that other load on the machine does
// not count). A heartbeat that touches only the member's partitions
// takes under a millisecond; one that walked the group, as every
// heartbeat did before the index, takes over 100 ms, and fails the 5 ms
// bound. A rebalance (a join, the expiry of half the members at once:
// 5,000 partitions freed over 500 members) is bounded at 300 ms, about
// twice what it takes; handing the freed partitions out by scanning the
// members for each, O(partitions x members), took 470 ms and fails it.
// docs/benchmarks.md has the numbers. A concurrent PING's worst latency
// is logged.
func TestGroupScriptsAtTheCaps(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	s := metadata.New(rdb, metadata.Options{})
	ctx := t.Context()
	if err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, capsTopic)
	members := metadata.MaxGroupMembers - 1
	// The odd members expire at t0+20s, the even ones live on.
	seedGroupAtCaps(t, rdb, members, func(i int) time.Time {
		if i%2 == 1 {
			return t0.Add(20 * time.Second)
		}
		return t0.Add(time.Hour)
	})

	measure := func(what string, limit time.Duration, call func() error) {
		t.Helper()
		stop := make(chan struct{})
		var worst time.Duration
		var probeErr error
		var wg sync.WaitGroup
		other := redis.NewClient(&redis.Options{Addr: r.Addr})
		defer other.Close()
		wg.Go(func() { worst, probeErr = probe(ctx, other, stop) })
		before := redisCPU(t, rdb)
		start := time.Now()
		err := call()
		took := time.Since(start)
		cpu := redisCPU(t, rdb) - before
		close(stop)
		wg.Wait()
		if err != nil || probeErr != nil {
			t.Fatalf("%s: %v (probe: %v)", what, err, probeErr)
		}
		t.Logf("%s: Redis CPU %v, call %v, slowest concurrent PING %v", what, cpu, took, worst)
		if cpu > limit {
			t.Errorf("%s: Redis CPU %v, want at most %v", what, cpu, limit)
		}
	}
	heartbeat := func(m string, at time.Time) func() error {
		return func() error {
			_, err := s.Heartbeat(ctx, "g", m, keyOf(m), at)
			return err
		}
	}
	const rebalance, fast = 300 * time.Millisecond, 5 * time.Millisecond
	measure("first heartbeat (rebalance, writes the index)", rebalance, heartbeat("m0000", t0))
	measure("heartbeat of a settled group", fast, heartbeat("m0002", t0))
	measure("join of the 1,000th member", rebalance, func() error {
		_, err := s.JoinGroup(ctx, "g", "m0999", keyOf("m0999"), []metadata.Topic{capsTopic}, time.Minute, t0)
		return err
	})
	measure("heartbeat while partitions are revoking", fast, heartbeat("m0004", t0))
	measure("heartbeat expiring 500 members", rebalance, heartbeat("m0000", t0.Add(30*time.Second)))

	// Every partition is held, by a live member, and the 500 left hold
	// their fair share each (some still revoking towards m0999).
	count := map[string]int{}
	for tp, v := range rdb.HGetAll(ctx, groupKeys+"owners").Val() {
		m, _, _ := strings.Cut(v, "|")
		if n, _ := strconv.Atoi(m[1:]); n%2 == 1 && m != "m0999" {
			t.Fatalf("%s held by %s, which expired", tp, m)
		}
		count[m]++
	}
	total := 0
	for m, n := range count {
		total += n
		if m != "m0999" && (n < 19 || n > 21) {
			t.Errorf("%s holds %d partitions, want about 10,000/501", m, n)
		}
	}
	if total != int(capsTopic.Partitions) || len(count) < 500 {
		t.Fatalf("%d partitions held by %d members, want %d by 500 or 501", total, len(count), capsTopic.Partitions)
	}
}
