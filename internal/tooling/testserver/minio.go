package testserver

import (
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/mambamq/mamba/internal/tooling/servers"
)

// MinIO is a MinIO server on loopback with its own data directory, with
// helpers that fail the test instead of returning errors.
type MinIO struct {
	*servers.MinIO
}

// StartMinIO starts a single-drive MinIO server for the test and kills it
// when the test ends.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	return StartMinIOWith(t, servers.MinIOOptions{})
}

// StartMinIOWith is StartMinIO with options, for example a KMS key for
// server-side encryption.
func StartMinIOWith(t testing.TB, opts servers.MinIOOptions) *MinIO {
	t.Helper()
	m, err := servers.StartMinIOWith(t.TempDir(), opts)
	if err != nil {
		notStarted(t, err)
	}
	killAtEnd(t, m.Process)
	return &MinIO{m}
}

// Client returns a minio-go client with the root credentials.
func (m *MinIO) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := m.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// CreateBucket makes a bucket and returns its name.
func (m *MinIO) CreateBucket(t testing.TB, name string) string {
	t.Helper()
	if err := m.MakeBucket(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	return name
}
