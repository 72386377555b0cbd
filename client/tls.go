package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/mambamq/mamba/internal/certfile"
)

// tlsFiles are the PEM files named by WithCAFile and
// WithClientCertificate, read by New.
type tlsFiles struct {
	caFiles           []string
	certFile, keyFile string
}

// WithCAFile trusts the CA certificates in the PEM file at path, in
// addition to the system's roots (or to the RootCAs of WithTLSConfig):
// for a node whose certificate a private CA signed. It may be given
// several times. New fails if the file cannot be read or holds no
// certificate.
func WithCAFile(path string) Opt {
	return func(c *clientConfig) {
		if path == "" {
			c.errs = append(c.errs, errors.New("WithCAFile: empty path"))
			return
		}
		c.tlsFiles.caFiles = append(c.tlsFiles.caFiles, path)
	}
}

// WithClientCertificate presents the certificate and key in the PEM files
// certFile and keyFile to nodes that require client certificates (mutual
// TLS). The files are read by New, which fails if they do not hold a
// matching pair, and read again when they change (checked at most once a
// second, on a new connection), so a renewed certificate is used without
// a new client; a pair that fails to load then keeps the previous one in
// use and is logged at warn level (WithLogger).
func WithClientCertificate(certFile, keyFile string) Opt {
	return func(c *clientConfig) {
		if certFile == "" || keyFile == "" {
			c.errs = append(c.errs, errors.New("WithClientCertificate: want both a certificate file and a key file"))
			return
		}
		c.tlsFiles.certFile, c.tlsFiles.keyFile = certFile, keyFile
	}
}

// applyTLSFiles reads the files of WithCAFile and WithClientCertificate
// into c.tls (a copy of WithTLSConfig's, or a new configuration).
func (c *clientConfig) applyTLSFiles() error {
	f := c.tlsFiles
	if len(f.caFiles) == 0 && f.certFile == "" {
		return nil
	}
	if c.hc != nil {
		return errors.New("WithCAFile and WithClientCertificate cannot be combined with WithHTTPClient; set the TLS configuration on that client's transport")
	}
	cfg := &tls.Config{}
	if c.tls != nil {
		cfg = c.tls.Clone()
	}
	var errs []error
	if len(f.caFiles) > 0 {
		roots := cfg.RootCAs
		if roots == nil {
			var err error
			if roots, err = x509.SystemCertPool(); err != nil {
				roots = x509.NewCertPool() // no system roots here: the files' alone
			}
		}
		for _, path := range f.caFiles {
			pool, err := certfile.CAPool(path, roots)
			if err != nil {
				errs = append(errs, fmt.Errorf("WithCAFile: %w", err))
				continue
			}
			roots = pool
		}
		cfg.RootCAs = roots
	}
	if f.certFile != "" {
		kp, err := certfile.LoadKeyPair(f.certFile, f.keyFile, c.log)
		if err != nil {
			errs = append(errs, fmt.Errorf("WithClientCertificate: %w", err))
		} else {
			cfg.Certificates = nil
			cfg.GetClientCertificate = kp.GetClientCertificate
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.tls = cfg
	return nil
}

// tlsRefused says whether err is a TLS handshake that failed for good:
// the server's certificate was not trusted, the server refused the
// client's (a TLS alert), or the server does not speak TLS. Retrying
// unchanged cannot help.
func tlsRefused(err error) bool {
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return true
	}
	// net/http replaces the RecordHeaderError of an HTTP answer to a TLS
	// hello by an error of its own, with nothing to match but its text.
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return true
	}
	op, ok := errors.AsType[*net.OpError](err)
	return ok && op.Op == "remote error" // an alert from the server, such as "tls: certificate required"
}
