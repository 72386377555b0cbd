// Package mambatest starts an in-process Mamba for the tests of code that
// uses the Go SDK, with one call:
//
//	srv := mambatest.Start(t, mambatest.WithTopic("orders", 4))
//	p, err := srv.Client.NewProducer()
//
// It runs the real ingest node and HTTP API, as mamba dev does, on an
// embedded Redis-compatible server and an in-memory bucket, served on a
// free loopback port; nothing needs to be installed or running. Each call
// starts a node of its own, so tests may run in parallel. The node is
// drained and stopped, and its data dropped, when the test ends.
package mambatest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/ingest/httpapi"
	"github.com/mambamq/mamba/internal/embedredis"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

// FlushInterval is the node's flush interval: a durable produce is
// answered within about this, plus the in-memory write and commit.
const FlushInterval = 5 * time.Millisecond

// closeTimeout bounds the drain of the node when the test ends.
const closeTimeout = 30 * time.Second

// Server is a running in-process Mamba.
type Server struct {
	// URL is the node's address, such as "http://127.0.0.1:40123", for
	// client.New or the CLI's --url.
	URL string
	// Client is a client of the node, made with the WithClientOptions
	// given to Start.
	Client *client.Client
}

type topic struct {
	name       string
	partitions int
}

type config struct {
	topics     []topic
	clientOpts []client.Opt
	log        *slog.Logger
}

// Option configures Start.
type Option func(*config)

// WithTopic creates a topic with this many partitions before Start
// returns. It may be given several times.
func WithTopic(name string, partitions int) Option {
	return func(c *config) { c.topics = append(c.topics, topic{name, partitions}) }
}

// WithClientOptions are the options of Server.Client.
func WithClientOptions(opts ...client.Opt) Option {
	return func(c *config) { c.clientOpts = append(c.clientOpts, opts...) }
}

// WithLogger makes the node log to l; by default it logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.log = l }
}

// Start starts a node and returns once it serves and the topics of
// WithTopic exist. Any failure fails the test at once. The node stops
// when the test ends (t.Cleanup), after cleanups registered later, such
// as closing the test's producers and consumers: it first ends open
// requests, then drains every record it accepted.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	srv, err := start(t, opts)
	if err != nil {
		t.Fatalf("mambatest: %v", err)
	}
	return srv
}

func start(t testing.TB, opts []Option) (*Server, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	rs, err := embedredis.Start("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t.Cleanup(rs.Close)
	meta := metadata.New(rs.Client, metadata.Options{})
	reg := prometheus.NewRegistry()
	node, err := ingest.New(ingest.Config{NodeID: "mambatest", FlushInterval: FlushInterval}, meta, objectstore.NewMemory(), reg, cfg.log)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(runCtx) }()
	hs := httptest.NewServer(httpapi.NewHandler(node, httpapi.Options{}, reg, reg, cfg.log))
	t.Cleanup(func() {
		// Long-polls would hold Close for their whole wait.
		hs.CloseClientConnections()
		hs.Close()
		ctx, cancelClose := context.WithTimeout(context.Background(), closeTimeout)
		defer cancelClose()
		if err := node.Close(ctx); err != nil {
			t.Errorf("mambatest: drain the node: %v", err)
		}
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("mambatest: node stopped: %v", err)
		}
	})
	c, err := client.New(hs.URL, cfg.clientOpts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(c.CloseIdleConnections)
	ctx, cancelCreate := context.WithTimeout(context.Background(), closeTimeout)
	defer cancelCreate()
	for _, tp := range cfg.topics {
		if _, err := c.CreateTopic(ctx, tp.name, tp.partitions); err != nil {
			return nil, fmt.Errorf("create topic %s: %w", tp.name, err)
		}
	}
	return &Server{URL: hs.URL, Client: c}, nil
}
