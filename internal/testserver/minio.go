package testserver

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIO is a MinIO server on loopback with its own data directory.
type MinIO struct {
	*Process
	// Addr is host:port of the S3 API; Endpoint is the same as a URL.
	Addr, Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
	DataDir              string
}

// StartMinIO starts a single-drive MinIO server for the test and stops it
// when the test ends.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := RequireBinary(t, "minio")
	base := t.TempDir()
	m := &MinIO{AccessKey: "mamba-test", SecretKey: "mamba-test-secret", DataDir: filepath.Join(base, "data")}
	m.Process = start(t, func(port int) *Process {
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
			logPath: filepath.Join(base, "minio.log"),
			ready:   func(ctx context.Context) error { return httpOK(ctx, m.Endpoint+"/minio/health/ready") },
		}
	})
	return m
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// Client returns a minio-go client with the root credentials.
func (m *MinIO) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(m.Addr, &minio.Options{
		Creds:  credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Secure: false,
	})
	if err != nil {
		t.Fatalf("minio client: %v", err)
	}
	return c
}

// CreateBucket makes a bucket and returns its name.
func (m *MinIO) CreateBucket(t testing.TB, name string) string {
	t.Helper()
	if err := m.Client(t).MakeBucket(t.Context(), name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}
