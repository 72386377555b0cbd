// Package certfile reads TLS material from PEM files: CA pools, and key
// pairs that are reloaded when their files change, so that a node (or an
// SDK client) picks up a renewed certificate without a restart.
//
// A KeyPair is meant for tls.Config.GetCertificate (servers) and
// tls.Config.GetClientCertificate (clients). It checks the files' size
// and modification time at most once per CheckInterval, on a handshake;
// a pair that fails to load keeps the last good one in use and is logged
// at warn level, once per distinct state of the files.
package certfile

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CheckInterval is the least time between two looks at a KeyPair's files.
const CheckInterval = time.Second

// CAPool returns base (a new pool if base is nil) with the certificates of
// the PEM file at path added. base itself is not changed. It is an error
// if the file cannot be read or holds no certificate.
func CAPool(path string, base *x509.CertPool) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if base != nil {
		pool = base.Clone()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// stamp is what tells a file changed: its size and modification time.
type stamp struct {
	size, modNanos int64
}

func statStamp(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{size: fi.Size(), modNanos: fi.ModTime().UnixNano()}, nil
}

// KeyPair is a certificate and its private key read from two PEM files
// and reloaded when either file changes. It is safe for concurrent use.
type KeyPair struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	loaded  [2]stamp // the files' stamps when cert was read
	failed  [2]stamp // the stamps of the last pair that failed to load
	checked time.Time
}

// LoadKeyPair reads the pair at certFile and keyFile. Reload failures are
// logged to log (nil discards them).
func LoadKeyPair(certFile, keyFile string, log *slog.Logger) (*KeyPair, error) {
	return loadKeyPair(certFile, keyFile, log, time.Now)
}

func loadKeyPair(certFile, keyFile string, log *slog.Logger, now func() time.Time) (*KeyPair, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &KeyPair{certFile: certFile, keyFile: keyFile, log: log, now: now}
	cert, stamps, err := k.read()
	if err != nil {
		return nil, err
	}
	k.cert, k.loaded, k.checked = cert, stamps, now()
	return k, nil
}

// read loads the pair, taking the files' stamps before reading them: a
// file replaced in between is seen as changed at the next check.
func (k *KeyPair) read() (*tls.Certificate, [2]stamp, error) {
	var stamps [2]stamp
	var errs []error
	for i, path := range []string{k.certFile, k.keyFile} {
		s, err := statStamp(path)
		if err != nil {
			errs = append(errs, err)
		}
		stamps[i] = s
	}
	if err := errors.Join(errs...); err != nil {
		return nil, stamps, fmt.Errorf("load key pair: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return nil, stamps, fmt.Errorf("load key pair %s, %s: %w", k.certFile, k.keyFile, err)
	}
	if cert.Leaf == nil {
		return nil, stamps, fmt.Errorf("load key pair %s: no certificate", k.certFile)
	}
	return &cert, stamps, nil
}

// Certificate returns the current pair, first reloading it if the files
// changed since it was read and CheckInterval has passed since the last
// look.
func (k *KeyPair) Certificate() *tls.Certificate {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if now.Sub(k.checked) < CheckInterval {
		return k.cert
	}
	k.checked = now
	var stamps [2]stamp
	for i, path := range []string{k.certFile, k.keyFile} {
		stamps[i], _ = statStamp(path) // a missing file reads as changed; read reports it
	}
	if stamps == k.loaded || stamps == k.failed {
		return k.cert
	}
	cert, stamps, err := k.read()
	if err != nil {
		k.failed = stamps
		k.log.Warn("reload TLS certificate; keeping the previous one", "err", err, "serial", k.cert.Leaf.SerialNumber.String())
		return k.cert
	}
	k.cert, k.loaded, k.failed = cert, stamps, [2]stamp{}
	k.log.Info("reloaded TLS certificate", "cert", k.certFile, "serial", cert.Leaf.SerialNumber.String(), "not_after", cert.Leaf.NotAfter)
	return k.cert
}

// GetCertificate is for tls.Config.GetCertificate.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate.
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}
