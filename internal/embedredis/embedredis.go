// Package embedredis runs the embedded Redis-compatible server (miniredis,
// which runs the same Lua scripts as Redis) that holds the metadata of a
// Mamba needing no servers: mamba dev and the mambatest package.
package embedredis

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Server is an embedded Redis-compatible server and a client of it.
type Server struct {
	mr *miniredis.Miniredis
	// Client talks to the server; Close closes it.
	Client *redis.Client
}

// Start starts a server on addr, a loopback address ("127.0.0.1:0" picks
// a free port).
func Start(addr string) (*Server, error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("start embedded Redis on %s: %w", addr, err)
	}
	return &Server{mr: mr, Client: redis.NewClient(&redis.Options{Addr: mr.Addr()})}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.mr.Addr() }

// Close closes the client and stops the server; its data is gone.
func (s *Server) Close() {
	_ = s.Client.Close()
	s.mr.Close()
}
