package servers

import (
	"context"
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
}

// StartMinIO starts MinIO with its drive in dir/data and its log in
// dir/minio.log; dir must exist. It returns once MinIO reports ready.
func StartMinIO(dir string) (*MinIO, error) {
	bin, err := Binary("minio")
	if err != nil {
		return nil, fmt.Errorf("start minio: %w", err)
	}
	m := &MinIO{AccessKey: "mamba-test", SecretKey: "mamba-test-secret", DataDir: filepath.Join(dir, "data")}
	m.Process, err = startOnFreePort("minio", func(port int) (*Process, error) {
		m.Addr = "127.0.0.1:" + strconv.Itoa(port)
		m.Endpoint = "http://" + m.Addr
		return &Process{
			Name: "minio",
			path: bin,
			args: []string{"server", "--quiet", "--address", m.Addr, m.DataDir},
			env: []string{
				"MINIO_ROOT_USER=" + m.AccessKey,
				"MINIO_ROOT_PASSWORD=" + m.SecretKey,
				"MINIO_BROWSER=off",
				"MINIO_UPDATE=off",
				"MINIO_CI=on",
			},
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
