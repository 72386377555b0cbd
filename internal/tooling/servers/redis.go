package servers

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RedisOptions configures a Redis server.
type RedisOptions struct {
	// AppendFsync enables the append-only file with this fsync policy
	// ("always", "everysec" or "no"). Empty runs without persistence.
	AppendFsync string
	// TLS, if not nil, also serves TLS on a port of its own (Redis.TLSAddr).
	TLS *RedisTLS
}

// RedisTLS is the server's certificate for its TLS port. Clients are
// asked for certificates (signed by CAFile) only if RequireClientCert.
type RedisTLS struct {
	CertFile, KeyFile, CAFile string
	RequireClientCert         bool
}

// Redis is a redis-server on loopback.
type Redis struct {
	*Process
	// Addr is host:port of the server.
	Addr string
	// TLSAddr is host:port of its TLS port, when RedisOptions.TLS is set.
	TLSAddr string
	// DataDir holds the append-only file, when one is configured.
	DataDir string
}

// StartRedis starts redis-server with its data and its log (redis.log) in
// dir, which must exist. It never writes RDB snapshots; restarting it (Kill,
// then Start) reloads the append-only file, if one is configured. It returns
// once the server answers PING.
func StartRedis(dir string, opts RedisOptions) (*Redis, error) {
	switch opts.AppendFsync {
	case "", "always", "everysec", "no":
	default:
		return nil, fmt.Errorf("start redis-server: AppendFsync %q is not always, everysec or no", opts.AppendFsync)
	}
	bin, err := Binary("redis-server")
	if err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &Redis{DataDir: dir}
	r.Process, err = startOnFreePort("redis-server", func(port int) (*Process, error) {
		r.Addr = "127.0.0.1:" + strconv.Itoa(port)
		args := []string{
			"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--dir", dir, "--save", "", "--daemonize", "no",
			"--protected-mode", "yes", "--logfile", "",
		}
		if opts.TLS != nil {
			tlsPort, err := FreePort()
			if err != nil {
				return nil, err
			}
			r.TLSAddr = "127.0.0.1:" + strconv.Itoa(tlsPort)
			args = append(args, "--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", opts.TLS.CertFile,
				"--tls-key-file", opts.TLS.KeyFile, "--tls-ca-cert-file", opts.TLS.CAFile, "--tls-auth-clients", tlsAuthClients(opts.TLS.RequireClientCert))
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
			logPath: filepath.Join(dir, "redis.log"),
			ready:   func(ctx context.Context) error { return redisPing(ctx, r.Addr) },
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// redisPing succeeds once the server answers PING with PONG (not while it
// is still loading its data). It speaks the inline protocol, so readiness
// needs no client library.
func redisPing(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if reply := strings.TrimSpace(line); reply != "+PONG" {
		return fmt.Errorf("PING answered %q", reply)
	}
	return nil
}

func tlsAuthClients(require bool) string {
	if require {
		return "yes"
	}
	return "no"
}
