package miniostore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mambamq/mamba/internal/testserver"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/miniostore"
	"github.com/mambamq/mamba/objectstore/storetest"
)

func newStore(t *testing.T, m *testserver.MinIO, bucket string, maxRetries int) *miniostore.Store {
	t.Helper()
	s, err := miniostore.New(miniostore.Config{
		Endpoint:    m.Endpoint,
		Bucket:      bucket,
		Region:      "us-east-1",
		PathStyle:   true,
		Credentials: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		MaxRetries:  maxRetries,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	m := testserver.StartMinIO(t)
	var n atomic.Int32
	storetest.Run(t, func(t *testing.T) objectstore.Store {
		bucket := m.CreateBucket(t, fmt.Sprintf("conformance-%d", n.Add(1)))
		s := newStore(t, m, bucket, 0)
		if err := s.CheckBucket(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestMissingBucket(t *testing.T) {
	m := testserver.StartMinIO(t)
	s := newStore(t, m, "no-such-bucket", 0)
	if err := s.CheckBucket(t.Context()); err == nil {
		t.Fatal("CheckBucket of a missing bucket succeeded")
	}
	err := s.Put(t.Context(), "k", []byte("x"))
	if err == nil || objectstore.IsRetryable(err) {
		t.Fatalf("put into a missing bucket: err = %v, want a final error", err)
	}
}

// A store that cannot be reached reports a retryable error, so that the
// write path retries instead of failing producers at once.
func TestUnreachableIsRetryable(t *testing.T) {
	m := testserver.StartMinIO(t)
	bucket := m.CreateBucket(t, "down")
	s := newStore(t, m, bucket, 1)
	m.Kill()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := s.Put(ctx, "k", []byte("x"))
	if !objectstore.IsRetryable(err) {
		t.Fatalf("put with MinIO down: err = %v, want retryable", err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "k", []byte("x")); err != nil {
		t.Fatalf("put after MinIO came back: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []miniostore.Config{
		{Endpoint: "http://127.0.0.1:9000"},
		{Endpoint: "ftp://host", Bucket: "b"},
		{Endpoint: "http://host/path", Bucket: "b"},
		{Endpoint: "::bad", Bucket: "b"},
	} {
		if _, err := miniostore.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
