package servers

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mambamq/mamba/internal/certfile"
)

// MinIO is a single-drive MinIO server on loopback.
type MinIO struct {
	*Process
	// Addr is host:port of the S3 API; Endpoint is the same as a URL.
	Addr, Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
	// DataDir is the drive MinIO stores objects in.
	DataDir string
	// KMSKeyName is the name of the static KMS key MinIO was started
	// with, empty when it has none.
	KMSKeyName string
	// RootCAs trusts the server's certificate when it serves HTTPS
	// (MinIOOptions.TLS); nil otherwise.
	RootCAs *x509.CertPool
}

// MinIOTLS is the certificate of a MinIO serving HTTPS: PEM files of the
// server's certificate and key, and of the CA that signed it (which the
// clients of MinIO.NewClient and the readiness check trust).
type MinIOTLS struct {
	CertFile, KeyFile, CAFile string
}

// MinIOOptions configures StartMinIOWith. The zero value is StartMinIO's.
type MinIOOptions struct {
	// KMSKey, when not empty, starts MinIO with a static KMS key
	// (MINIO_KMS_SECRET_KEY) of that name and random key material, which
	// SSE-S3 and SSE-KMS requests then use.
	KMSKey string
	// TLS, when not nil, makes MinIO serve HTTPS only (--certs-dir), so
	// Endpoint is an https:// URL.
	TLS *MinIOTLS
}

// StartMinIO starts MinIO with its drive in dir/data and its log in
// dir/minio.log; dir must exist. It returns once MinIO reports ready.
func StartMinIO(dir string) (*MinIO, error) {
	return StartMinIOWith(dir, MinIOOptions{})
}

// StartMinIOWith is StartMinIO with options.
func StartMinIOWith(dir string, opts MinIOOptions) (*MinIO, error) {
	bin, err := Binary("minio")
	if err != nil {
		return nil, fmt.Errorf("start minio: %w", err)
	}
	m := &MinIO{AccessKey: "mamba-test", SecretKey: "mamba-test-secret", DataDir: filepath.Join(dir, "data"), KMSKeyName: opts.KMSKey}
	env := []string{
		"MINIO_ROOT_USER=" + m.AccessKey,
		"MINIO_ROOT_PASSWORD=" + m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI=on",
	}
	if opts.KMSKey != "" {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("start minio: kms key: %w", err)
		}
		env = append(env, "MINIO_KMS_SECRET_KEY="+opts.KMSKey+":"+base64.StdEncoding.EncodeToString(key))
	}
	args, scheme := []string{"server", "--quiet"}, "http://"
	if opts.TLS != nil {
		certsDir, err := minioCertsDir(dir, opts.TLS)
		if err != nil {
			return nil, fmt.Errorf("start minio: %w", err)
		}
		if m.RootCAs, err = certfile.CAPool(opts.TLS.CAFile, nil); err != nil {
			return nil, fmt.Errorf("start minio: %w", err)
		}
		args, scheme = append(args, "--certs-dir", certsDir), "https://"
	}
	m.Process, err = startOnFreePort("minio", func(port int) (*Process, error) {
		m.Addr = "127.0.0.1:" + strconv.Itoa(port)
		m.Endpoint = scheme + m.Addr
		return &Process{
			Name:    "minio",
			path:    bin,
			args:    append(args, "--address", m.Addr, m.DataDir),
			env:     env,
			logPath: filepath.Join(dir, "minio.log"),
			ready:   m.ready,
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// ready reports whether MinIO serves requests: its readiness probe can
// answer before the object layer is initialized (requests then get "Server
// not initialized yet", seen on a loaded machine), so a ListBuckets must
// succeed too.
func (m *MinIO) ready(ctx context.Context) error {
	if err := httpOKWith(ctx, &http.Client{Transport: m.transport()}, m.Endpoint+"/minio/health/ready"); err != nil {
		return err
	}
	c, err := m.NewClient()
	if err != nil {
		return err
	}
	_, err = c.ListBuckets(ctx)
	return err
}

// NewClient returns a minio-go client with the root credentials.
func (m *MinIO) NewClient() (*minio.Client, error) {
	c, err := minio.New(m.Addr, &minio.Options{
		Creds:     credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Secure:    m.RootCAs != nil,
		Transport: m.transport(),
	})
	if err != nil {
		return nil, fmt.Errorf("minio client: %w", err)
	}
	return c, nil
}

// MakeBucket creates the named bucket.
func (m *MinIO) MakeBucket(ctx context.Context, name string) error {
	c, err := m.NewClient()
	if err != nil {
		return err
	}
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

// transport is an HTTP transport that trusts RootCAs (the default one
// when MinIO serves plain HTTP).
func (m *MinIO) transport() http.RoundTripper {
	if m.RootCAs == nil {
		return http.DefaultTransport
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: m.RootCAs, MinVersion: tls.VersionTLS12}
	return tr
}

// minioCertsDir makes dir/certs with the pair under the names MinIO
// reads (public.crt, private.key).
func minioCertsDir(dir string, t *MinIOTLS) (string, error) {
	certs := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		return "", err
	}
	for src, dst := range map[string]string{t.CertFile: "public.crt", t.KeyFile: "private.key"} {
		b, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(certs, dst), b, 0o600); err != nil {
			return "", err
		}
	}
	return certs, nil
}
