package main

import (
	"crypto/tls"
	"errors"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/mambamq/mamba/internal/certfile"
)

// tlsOptions are the API's TLS settings (serve and dev).
type tlsOptions struct {
	cert, key, clientCA string
}

func addTLSFlags(f *pflag.FlagSet, o *tlsOptions) {
	f.StringVar(&o.cert, "tls-cert", "", "PEM certificate (chain) of the HTTPS API; with --tls-key, --listen serves HTTPS only; reloaded when the file changes")
	f.StringVar(&o.key, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&o.clientCA, "tls-client-ca", "", "PEM CA bundle: require every client to present a certificate signed by it (mutual TLS); needs --tls-cert")
}

// check reports a bad combination of the TLS flags, before anything
// starts.
func (o tlsOptions) check() error {
	var errs []error
	if (o.cert == "") != (o.key == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together: give both for HTTPS, or neither"))
	}
	if o.clientCA != "" && o.cert == "" {
		errs = append(errs, errors.New("--tls-client-ca needs --tls-cert and --tls-key: client certificates are checked only over HTTPS"))
	}
	return errors.Join(errs...)
}

// serverConfig is the API's TLS configuration, or nil for plain HTTP.
// The key pair is reloaded when its files change (certfile.KeyPair);
// the client CA is read once.
func (o tlsOptions) serverConfig(log *slog.Logger) (*tls.Config, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.cert == "" {
		return nil, nil
	}
	kp, err := certfile.LoadKeyPair(o.cert, o.key, log)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.GetCertificate}
	if o.clientCA != "" {
		pool, err := certfile.CAPool(o.clientCA, nil)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
