package servers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
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
}

// MinIOOptions configures StartMinIOWith. The zero value is StartMinIO's.
type MinIOOptions struct {
	// KMSKey, when not empty, starts MinIO with a static KMS key
	// (MINIO_KMS_SECRET_KEY) of that name and random key material, which
	// SSE-S3 and SSE-KMS requests then use.
	KMSKey string
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
	m.Process, err = startOnFreePort("minio", func(port int) (*Process, error) {
		m.Addr = "127.0.0.1:" + strconv.Itoa(port)
		m.Endpoint = "http://" + m.Addr
		return &Process{
			Name:    "minio",
			path:    bin,
			args:    []string{"server", "--quiet", "--address", m.Addr, m.DataDir},
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
	if err := httpOK(ctx, m.Endpoint+"/minio/health/ready"); err != nil {
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
		Creds:  credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Secure: false,
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
