package servers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// NATSOptions configures a NATS server.
type NATSOptions struct {
	// SyncAlways makes JetStream fsync every write before it acknowledges
	// it (`sync_interval: always`). False keeps the server's default: writes
	// reach the OS at once and are fsynced every two minutes, so an
	// acknowledged message survives a killed server but not a lost machine.
	SyncAlways bool
}

// NATS is a single nats-server with JetStream on loopback.
type NATS struct {
	*Process
	// Addr is host:port of the client port; URL is the same as a NATS URL,
	// for example nats://127.0.0.1:41234.
	Addr, URL string
	// MonitorURL is the HTTP monitoring endpoint (/varz, /jsz, /healthz),
	// for example http://127.0.0.1:41235.
	MonitorURL string
	// StoreDir is JetStream's store_dir; the server keeps its file
	// storage in StoreDir/jetstream.
	StoreDir string
}

// StartNATS starts nats-server with JetStream file storage, its config in
// dir/nats.conf, its store in dir and its log in dir/nats.log; dir must
// exist. It returns once /healthz answers 200, which on a single server
// means JetStream is enabled and every stream on disk has been recovered,
// so a restarted server is ready only with its data.
func StartNATS(dir string, opts NATSOptions) (*NATS, error) {
	bin, err := Binary("nats-server")
	if err != nil {
		return nil, fmt.Errorf("start nats-server: %w", err)
	}
	n := &NATS{StoreDir: dir}
	conf := filepath.Join(dir, "nats.conf")
	n.Process, err = startOnFreePort("nats-server", func(port int) (*Process, error) {
		monitor, err := FreePort()
		if err != nil {
			return nil, err
		}
		n.Addr = "127.0.0.1:" + strconv.Itoa(port)
		n.URL = "nats://" + n.Addr
		n.MonitorURL = "http://127.0.0.1:" + strconv.Itoa(monitor)
		if err := os.WriteFile(conf, natsConfig(port, monitor, dir, opts), 0o644); err != nil {
			return nil, fmt.Errorf("write config: %w", err)
		}
		return &Process{
			Name:    "nats-server",
			path:    bin,
			args:    []string{"--config", conf},
			logPath: filepath.Join(dir, "nats.log"),
			ready:   func(ctx context.Context) error { return httpOK(ctx, n.MonitorURL+"/healthz") },
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// natsConfig is the server's config file: both ports on loopback only, and
// JetStream with file storage in storeDir.
func natsConfig(port, monitor int, storeDir string, opts NATSOptions) []byte {
	sync := ""
	if opts.SyncAlways {
		sync = "\n  sync_interval: always"
	}
	// strconv.Quote's escapes are the ones the NATS config parser reads.
	return fmt.Appendf(nil, `# Written by internal/tooling/servers; rewritten on every start.
listen: "127.0.0.1:%d"
http: "127.0.0.1:%d"
jetstream {
  store_dir: %s%s
}
`, port, monitor, strconv.Quote(storeDir), sync)
}
