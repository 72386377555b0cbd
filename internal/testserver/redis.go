package testserver

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RedisOptions configures a test Redis server.
type RedisOptions struct {
	// AppendFsync enables the append-only file with this fsync policy
	// ("always", "everysec" or "no"). Empty runs without persistence.
	AppendFsync string
}

// Redis is a redis-server on loopback with its own data directory.
type Redis struct {
	*Process
	Addr    string
	DataDir string
}

// StartRedis starts redis-server for the test and stops it when the test
// ends. Restarting it (Kill, then Start) reloads the append-only file, if
// one is configured.
func StartRedis(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	bin := RequireBinary(t, "redis-server")
	base := t.TempDir()
	r := &Redis{DataDir: base}
	r.Process = start(t, func(port int) *Process {
		r.Addr = "127.0.0.1:" + strconv.Itoa(port)
		args := []string{
			"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--dir", base, "--save", "", "--daemonize", "no",
			"--protected-mode", "yes", "--logfile", "",
		}
		if opts.AppendFsync != "" {
			args = append(args, "--appendonly", "yes", "--appendfsync", opts.AppendFsync)
		} else {
			args = append(args, "--appendonly", "no")
		}
		return &Process{
			Name:    "redis-server",
			path:    bin,
			args:    args,
			logPath: filepath.Join(base, "redis.log"),
			ready:   func(ctx context.Context) error { return redisPing(ctx, r.Addr) },
		}
	})
	return r
}

// redisPing succeeds once the server answers PING with PONG (not while it
// is still loading its data).
func redisPing(ctx context.Context, addr string) error {
	reply, err := redisInline(ctx, addr, "PING")
	if err != nil {
		return err
	}
	if reply != "+PONG" {
		return fmt.Errorf("PING answered %q", reply)
	}
	return nil
}

// redisInline sends one inline command and returns the first line of the
// reply. It needs no client library, so the helper works before any Redis
// client is set up.
func redisInline(ctx context.Context, addr, command string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(command + "\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line), err
}
