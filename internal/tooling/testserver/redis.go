package testserver

import (
	"testing"

	"github.com/mambamq/mamba/internal/tooling/servers"
)

// RedisOptions configures a test Redis server.
type RedisOptions = servers.RedisOptions

// Redis is a redis-server on loopback with its own data directory.
type Redis = servers.Redis

// StartRedis starts redis-server for the test and kills it when the test
// ends. Restarting it (Kill, then Start) reloads the append-only file, if
// one is configured.
func StartRedis(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	r, err := servers.StartRedis(t.TempDir(), opts)
	if err != nil {
		notStarted(t, err)
	}
	killAtEnd(t, r.Process)
	return r
}
