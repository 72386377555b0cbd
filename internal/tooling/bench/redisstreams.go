package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for RedisStreamsConfig.
const (
	DefaultRedisStreamsKey      = "mamba-bench"
	DefaultRedisStreamsInFlight = 64
)

// RedisStreamsConfig configures RunRedisStreams.
type RedisStreamsConfig struct {
	BaselineConfig
	// Addr is the server's host:port.
	Addr string
	// Key is the stream. It is deleted before the run, so runs do not
	// accumulate, and left in place afterwards.
	Key string
	// AppendFsync is the server's appendfsync policy ("everysec" or
	// "always"). It names the result ("redis-streams-always") and says what
	// an acknowledgement means; the run fails if the server is configured
	// otherwise, so that the table never claims a durability it did not
	// measure. Empty names the result "redis-streams" and checks nothing.
	AppendFsync string
}

// Validate reports every bad field at once.
func (c RedisStreamsConfig) Validate() error {
	errs := []error{c.BaselineConfig.Validate()}
	if c.Addr == "" {
		errs = append(errs, errors.New("no Redis address"))
	}
	switch c.AppendFsync {
	case "", "always", "everysec", "no":
	default:
		errs = append(errs, fmt.Errorf("appendfsync %q is not always, everysec or no", c.AppendFsync))
	}
	return errors.Join(errs...)
}

// RunRedisStreams measures Redis Streams as a durable queue: each producer,
// with its own client, sends XADD key * v <payload> in pipelines of up to
// InFlight commands, one pipeline at a time, and a record counts once the
// pipeline's replies are back. With AOF on, Redis writes (and with
// appendfsync always, fsyncs) the pipeline's commands before it replies.
func RunRedisStreams(ctx context.Context, cfg RedisStreamsConfig) (SystemResult, error) {
	cfg.BaselineConfig = cfg.withDefaults(DefaultRedisStreamsInFlight)
	if cfg.Key == "" {
		cfg.Key = DefaultRedisStreamsKey
	}
	system := "redis-streams"
	if cfg.AppendFsync != "" {
		system += "-" + cfg.AppendFsync
	}
	if err := cfg.Validate(); err != nil {
		return SystemResult{}, fmt.Errorf("%s: %w", system, err)
	}
	if err := prepareStream(ctx, cfg); err != nil {
		return SystemResult{}, fmt.Errorf("%s: %w", system, err)
	}

	clients := make([]*redis.Client, cfg.Producers)
	for i := range clients {
		clients[i] = newBenchRedisClient(cfg.Addr, "mamba-bench-"+strconv.Itoa(i))
		defer clients[i].Close()
	}

	payload := randomPayload(cfg.MessageSize)
	w, runErr := drive(ctx, cfg.BaselineConfig, cfg.Producers, cfg.Rate, func(ctx context.Context, s *sender) {
		c := clients[s.id]
		// With ContextTimeoutEnabled a pipeline's reads end by themselves
		// at the window's deadline. A cancelled ctx does not reach them, so
		// then the client is closed under them. (Only then: go-redis logs
		// each connection closed in use.)
		defer closeOnDone(ctx, func() {
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				_ = c.Close()
			}
		})()
		pipelineXAdd(ctx, s, c, cfg.Key, payload, cfg.InFlight)
	})

	var durability string
	switch cfg.AppendFsync {
	case "always":
		durability = "AOF appendfsync always (fsync before the reply)"
	case "everysec":
		durability = "AOF appendfsync everysec (fsync once a second; up to ~1 s of acked writes can be lost)"
	case "no":
		durability = "AOF appendfsync no (written to the page cache; the OS decides when to fsync)"
	default:
		durability = "as configured on the server"
	}
	res, err := w.result(system, durability,
		fmt.Sprintf("%d producers, pipelines of up to %d XADDs each", cfg.Producers, cfg.InFlight))
	if runErr != nil {
		return res, fmt.Errorf("%s: %w", system, runErr)
	}
	return res, err
}

func newBenchRedisClient(addr, name string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:       addr,
		ClientName: name,
		// One pipeline at a time per producer; the second connection is
		// spare.
		PoolSize: 2,
		// A failed XADD is counted, not retried: a retried pipeline could
		// append its records twice.
		MaxRetries: -1,
		// Bound each pipeline's socket I/O by ctx, so the run's deadline
		// ends it.
		ContextTimeoutEnabled: true,
	})
}

// prepareStream checks the server's fsync policy against cfg.AppendFsync
// and deletes the stream.
func prepareStream(ctx context.Context, cfg RedisStreamsConfig) error {
	c := newBenchRedisClient(cfg.Addr, "mamba-bench-admin")
	defer c.Close()
	if cfg.AppendFsync != "" {
		conf, err := c.ConfigGet(ctx, "append*").Result()
		if err != nil {
			return fmt.Errorf("read the server's AOF settings: %w", err)
		}
		if conf["appendonly"] != "yes" || conf["appendfsync"] != cfg.AppendFsync {
			return fmt.Errorf("server runs with appendonly %s, appendfsync %s; want appendonly yes, appendfsync %s",
				conf["appendonly"], conf["appendfsync"], cfg.AppendFsync)
		}
	}
	if err := c.Del(ctx, cfg.Key).Err(); err != nil {
		return fmt.Errorf("delete stream %s: %w", cfg.Key, err)
	}
	return nil
}

// pipelineXAdd appends payload to the stream at key until ctx is done, in
// pipelines of at most inFlight commands. An unpaced sender fills every
// pipeline; a paced one sends, in each pipeline, the records due by then,
// so pacing never holds a record back to fill a batch. Each record's
// latency runs from its enqueue into the pipeline (or, paced, its intended
// send time) to the pipeline's replies.
func pipelineXAdd(ctx context.Context, s *sender, c *redis.Client, key string, payload []byte, inFlight int) {
	args := &redis.XAddArgs{Stream: key, ID: "*", Values: []any{"v", payload}}
	sent := make([]time.Time, 0, inFlight)
	for {
		first, ok := s.pace(ctx)
		if !ok {
			return
		}
		pipe := c.Pipeline()
		pipe.XAdd(ctx, args)
		sent = append(sent[:0], stamp(first))
		for len(sent) < inFlight {
			next, ok := s.ready(time.Now())
			if !ok {
				break
			}
			pipe.XAdd(ctx, args)
			sent = append(sent, stamp(next))
		}
		cmds, _ := pipe.Exec(ctx) // errors are per command
		at := time.Now()
		for i, cmd := range cmds {
			if err := cmd.Err(); err != nil {
				s.fail(ctx, err)
				continue
			}
			s.ack(sent[i], at, int64(len(payload)))
		}
	}
}
