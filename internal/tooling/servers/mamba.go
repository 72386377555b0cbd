package servers

import (
	"cmp"
	"context"
	"errors"
	"path/filepath"
	"strconv"
)

// MambaOptions changes how StartMamba runs a node.
type MambaOptions struct {
	// Binary is the mamba executable to run. Required: product code runs
	// the binary it is, tests the one they built.
	Binary string
	// Endpoint replaces the MinIO endpoint in the node's bucket URL, for
	// example with a fault-injecting proxy in front of MinIO. Empty means
	// MinIO's own endpoint.
	Endpoint string
	// Env adds KEY=value variables to the node's environment. They come
	// last, so they override the caller's environment and the MAMBA_* and
	// AWS_* variables StartMamba sets.
	Env []string
}

// Mamba is a mamba node (`mamba serve` or `mamba dev`) on loopback.
type Mamba struct {
	*Process
	// URL is the node's HTTP API, for example http://127.0.0.1:41234.
	URL string
}

// StartMamba starts `mamba serve` as node nodeID on the MinIO bucket and
// the Redis given, with extra flags, and its log in dir/mamba-<nodeID>.log
// (so several nodes can share dir). It returns once /readyz answers 200.
func StartMamba(dir string, m *MinIO, r *Redis, bucket, nodeID string, opts MambaOptions, extra ...string) (*Mamba, error) {
	if opts.Binary == "" {
		return nil, errors.New("start mamba: MambaOptions.Binary is empty")
	}
	env := append([]string{
		"MAMBA_BUCKET=s3://" + bucket + "?endpoint=" + cmp.Or(opts.Endpoint, m.Endpoint),
		"MAMBA_REDIS=redis://" + r.Addr + "/0",
		"AWS_ACCESS_KEY_ID=" + m.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
		"AWS_REGION=us-east-1",
	}, opts.Env...)
	return startMamba("mamba "+nodeID, opts.Binary, filepath.Join(dir, "mamba-"+nodeID+".log"), env,
		func(addr string) []string {
			return append([]string{"serve", "--listen", addr, "--node-id", nodeID}, extra...)
		})
}

// StartMambaDev starts `mamba dev` (a single node with an embedded store
// and metadata) on the data directory dataDir, with extra flags and its log
// in dir/mamba-dev.log. Kill and Start restart it on the same data
// directory and port, as a user restarting it would. It returns once
// /readyz answers 200.
func StartMambaDev(dir, bin, dataDir string, extra ...string) (*Mamba, error) {
	return startMamba("mamba dev", bin, filepath.Join(dir, "mamba-dev.log"), nil,
		func(addr string) []string {
			return append([]string{"dev", "--dir", dataDir, "--listen", addr}, extra...)
		})
}

// startMamba runs bin with the arguments args returns for the listen
// address, and waits for /readyz.
func startMamba(name, bin, logPath string, env []string, args func(addr string) []string) (*Mamba, error) {
	n := &Mamba{}
	var err error
	n.Process, err = startOnFreePort(name, func(port int) (*Process, error) {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		n.URL = "http://" + addr
		return &Process{
			Name:    name,
			path:    bin,
			args:    args(addr),
			env:     env,
			logPath: logPath,
			ready:   func(ctx context.Context) error { return httpOK(ctx, n.URL+"/readyz") },
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}
