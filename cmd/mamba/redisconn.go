package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"

	"github.com/mambamq/mamba/internal/certfile"
)

// redisTLSOptions are the TLS files of a rediss:// connection: a CA to
// trust instead of the system's roots, and a client certificate for a
// Redis started with tls-auth-clients.
type redisTLSOptions struct {
	caFile, certFile, keyFile string
}

// addRedisTLSFlags adds --redis-ca-file, --redis-cert-file and
// --redis-key-file to a command that takes --redis.
func addRedisTLSFlags(f *pflag.FlagSet, o *redisTLSOptions) {
	f.StringVar(&o.caFile, "redis-ca-file", "", "with a rediss:// --redis: PEM CA bundle that signed Redis's certificate, trusted instead of the system's roots")
	f.StringVar(&o.certFile, "redis-cert-file", "", "with a rediss:// --redis: PEM client certificate, for a Redis that requires them (tls-auth-clients); reloaded when the file changes")
	f.StringVar(&o.keyFile, "redis-key-file", "", "PEM private key of --redis-cert-file")
}

// set reports whether any TLS file is given.
func (o redisTLSOptions) set() bool { return o.caFile != "" || o.certFile != "" || o.keyFile != "" }

// redisOptions parses a Redis URL (go-redis's ParseURL: redis:// or
// rediss:// for TLS) and applies the TLS files, which need rediss://.
func redisOptions(rawURL string, o redisTLSOptions, log *slog.Logger) (*redis.Options, error) {
	ropts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("--redis: %w", err)
	}
	if !o.set() {
		return ropts, nil
	}
	if ropts.TLSConfig == nil {
		return nil, errors.New("--redis-ca-file, --redis-cert-file and --redis-key-file need a rediss:// --redis (TLS)")
	}
	if (o.certFile == "") != (o.keyFile == "") {
		return nil, errors.New("--redis-cert-file and --redis-key-file go together: give both, or neither")
	}
	cfg := ropts.TLSConfig.Clone()
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if o.caFile != "" {
		if cfg.RootCAs, err = certfile.CAPool(o.caFile, nil); err != nil {
			return nil, fmt.Errorf("--redis-ca-file: %w", err)
		}
	}
	if o.certFile != "" {
		kp, err := certfile.LoadKeyPair(o.certFile, o.keyFile, log)
		if err != nil {
			return nil, fmt.Errorf("--redis-cert-file: %w", err)
		}
		cfg.GetClientCertificate = kp.GetClientCertificate
	}
	ropts.TLSConfig = cfg
	return ropts, nil
}

// openRedis is a client of the Redis at rawURL with the TLS files of o.
func openRedis(rawURL string, o redisTLSOptions, log *slog.Logger) (*redis.Client, error) {
	ropts, err := redisOptions(rawURL, o, log)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(ropts), nil
}
