package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/mambamq/mamba/internal/tooling/servers"
)

// LocalOptions configures the servers of `mamba bench --local`.
type LocalOptions struct {
	// Binary is the mamba executable the node runs (`<Binary> serve`).
	Binary string
	// Dir holds the servers' data and logs; empty means a temporary
	// directory, removed by Close.
	Dir string
	// RedisFsync is Redis's appendfsync policy: always, everysec or no.
	RedisFsync string
	// NodeArgs are extra `mamba serve` flags.
	NodeArgs []string
	// Pprof serves the node's pprof on a loopback port (for ProfileNode).
	Pprof bool
}

// Local is a MinIO, a Redis and one node on loopback, started for a
// benchmark.
type Local struct {
	MinIO  *servers.MinIO
	Redis  *servers.Redis
	Node   *servers.Mamba
	Bucket string
	// Dir holds the servers' data and logs.
	Dir       string
	removeDir bool
	pprofAddr string
}

// LocalBucket is the bucket a local set-up's node writes to.
const LocalBucket = "mamba-bench"

// StartLocal starts the servers and returns once the node is ready.
func StartLocal(ctx context.Context, opts LocalOptions) (l *Local, err error) {
	l = &Local{Bucket: LocalBucket, Dir: opts.Dir}
	if l.Dir == "" {
		if l.Dir, err = os.MkdirTemp("", "mamba-bench-"); err != nil {
			return nil, err
		}
		l.removeDir = true
	}
	defer func() {
		if err != nil {
			l.Close()
			l = nil
		}
	}()
	sub := func(name string) (string, error) {
		d := filepath.Join(l.Dir, name)
		return d, os.MkdirAll(d, 0o755)
	}
	minioDir, err := sub("minio")
	if err != nil {
		return l, err
	}
	if l.MinIO, err = servers.StartMinIO(minioDir); err != nil {
		return l, err
	}
	if err = l.MinIO.MakeBucket(ctx, l.Bucket); err != nil {
		return l, fmt.Errorf("create bucket %s: %w", l.Bucket, err)
	}
	redisDir, err := sub("redis")
	if err != nil {
		return l, err
	}
	if l.Redis, err = servers.StartRedis(redisDir, servers.RedisOptions{AppendFsync: opts.RedisFsync}); err != nil {
		return l, err
	}
	nodeDir, err := sub("node")
	if err != nil {
		return l, err
	}
	args := opts.NodeArgs
	if opts.Pprof {
		port, err := servers.FreePort()
		if err != nil {
			return l, err
		}
		l.pprofAddr = "127.0.0.1:" + strconv.Itoa(port)
		args = append([]string{"--pprof-listen", l.pprofAddr}, args...)
	}
	l.Node, err = servers.StartMamba(nodeDir, l.MinIO, l.Redis, l.Bucket, "bench-node",
		servers.MambaOptions{Binary: opts.Binary}, args...)
	return l, err
}

// Configure points a workload at the local node, its process and Redis.
func (l *Local) Configure(cfg *MambaConfig) {
	cfg.URL = l.Node.URL
	cfg.MetricsURL = ""
	cfg.Token = "" // the local node runs without --auth
	cfg.NodePid = l.Node.Pid()
	cfg.RedisAddr = l.Redis.Addr
}

// ProfileNode records the node's CPU profile from warmup after now for
// duration into path, in the background; stop waits for it and returns
// its error.
func (l *Local) ProfileNode(ctx context.Context, path string, warmup, duration time.Duration) (stop func() error, err error) {
	if l.pprofAddr == "" {
		return nil, errors.New("bench: the local node was started without pprof")
	}
	secs := max(int(duration.Seconds()), 1)
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", l.pprofAddr, secs)
	done := make(chan error, 1)
	go func() {
		if !sleepUntil(ctx, time.Now().Add(warmup)) {
			done <- ctx.Err()
			return
		}
		done <- fetchToFile(ctx, url, path)
	}()
	return func() error { return <-done }, nil
}

func fetchToFile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// RemoveObjects deletes every object of the local bucket under the
// prefixes.
func (l *Local) RemoveObjects(ctx context.Context, prefixes ...string) error {
	mc, err := l.MinIO.NewClient()
	if err != nil {
		return err
	}
	for _, prefix := range prefixes {
		objects := mc.ListObjects(ctx, l.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true})
		for rerr := range mc.RemoveObjects(ctx, l.Bucket, objects, minio.RemoveObjectsOptions{}) {
			return fmt.Errorf("remove %s: %w", rerr.ObjectName, rerr.Err)
		}
	}
	return nil
}

// Close stops the servers (the node gracefully) and removes a temporary
// directory.
func (l *Local) Close() {
	if l.Node != nil {
		l.Node.Stop()
	}
	if l.Redis != nil {
		l.Redis.Kill()
	}
	if l.MinIO != nil {
		l.MinIO.Kill()
	}
	if l.removeDir {
		_ = os.RemoveAll(l.Dir)
	}
}
