package bench

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/internal/tooling/testserver"
)

func TestRunRedisStreams(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rc.Close() })
	const key = "bench-test"
	testRunner(t, runnerTarget{
		system:      "redis-streams-always",
		sampleBytes: 1024,
		pacedAcks:   200,
		fresh: func(t *testing.T) (runFunc, func() int64) {
			// An entry left by an earlier run, which the runner must delete.
			if err := rc.Del(t.Context(), key).Err(); err != nil {
				t.Fatal(err)
			}
			if err := rc.XAdd(t.Context(), &redis.XAddArgs{Stream: key, ID: "1-1", Values: []any{"v", "old"}}).Err(); err != nil {
				t.Fatalf("seed stream: %v", err)
			}
			run := func(ctx context.Context, cfg BaselineConfig) (SystemResult, error) {
				return RunRedisStreams(ctx, RedisStreamsConfig{BaselineConfig: cfg, Addr: r.Addr, Key: key, AppendFsync: "always"})
			}
			stored := func() int64 {
				old, err := rc.XRange(t.Context(), key, "1-1", "1-1").Result()
				if err != nil || len(old) != 0 {
					t.Errorf("entry of an earlier run: %v, %v; want it deleted", old, err)
				}
				n, err := rc.XLen(t.Context(), key).Result()
				if err != nil {
					t.Fatalf("XLEN: %v", err)
				}
				return n
			}
			return run, stored
		},
	})
}

func TestRunRedisStreamsRefusesWrongFsync(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})
	_, err := RunRedisStreams(t.Context(), RedisStreamsConfig{
		BaselineConfig: BaselineConfig{Duration: time.Second},
		Addr:           r.Addr, AppendFsync: "everysec",
	})
	if err == nil || !strings.Contains(err.Error(), "appendfsync always") {
		t.Fatalf("run against an appendfsync always server claiming everysec = %v, want an error naming the server's policy", err)
	}
}

func TestRunRedisStreamsUnreachable(t *testing.T) {
	port := testserver.FreePort(t)
	_, err := RunRedisStreams(t.Context(), RedisStreamsConfig{
		BaselineConfig: BaselineConfig{Duration: time.Minute},
		Addr:           "127.0.0.1:" + strconv.Itoa(port),
	})
	if err == nil {
		t.Fatal("run against a closed port succeeded")
	}
}

func TestRunRedisStreamsStopsWhenNothingSucceeds(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rc.Close() })
	// Every XADD is refused (OOM); the DEL before the run still works.
	if err := rc.ConfigSet(t.Context(), "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := RunRedisStreams(t.Context(), RedisStreamsConfig{
		BaselineConfig: BaselineConfig{Producers: 2, Duration: time.Minute},
		Addr:           r.Addr,
	})
	if err == nil || !strings.Contains(err.Error(), "none was acknowledged") || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("run against a server refusing every write = %v, want it to stop with the server's error", err)
	}
}
