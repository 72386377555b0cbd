package testserver

import (
	"testing"

	"github.com/mambamq/mamba/internal/tooling/servers"
)

// NATSOptions configures a test NATS server.
type NATSOptions = servers.NATSOptions

// NATS is a nats-server with JetStream on loopback with its own store.
type NATS = servers.NATS

// StartNATS starts nats-server with JetStream file storage for the test
// and kills it when the test ends. Restarting it (Kill, then Start) reloads
// its streams from the store.
func StartNATS(t testing.TB, opts NATSOptions) *NATS {
	t.Helper()
	n, err := servers.StartNATS(t.TempDir(), opts)
	if err != nil {
		notStarted(t, err)
	}
	killAtEnd(t, n.Process)
	return n
}
