package s3store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/mambamq/mamba/internal/testserver"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/s3store"
	"github.com/mambamq/mamba/objectstore/storetest"
)

func newStore(t *testing.T, m *testserver.MinIO, bucket string, attempts int) *s3store.Store {
	t.Helper()
	s, err := s3store.New(t.Context(), s3store.Config{
		Bucket:      bucket,
		Region:      "us-east-1",
		Endpoint:    m.Endpoint,
		PathStyle:   true,
		Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		MaxAttempts: attempts,
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

func TestUnreachableIsRetryable(t *testing.T) {
	m := testserver.StartMinIO(t)
	bucket := m.CreateBucket(t, "down")
	s := newStore(t, m, bucket, 1)
	m.Kill()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.Put(ctx, "k", []byte("x")); !objectstore.IsRetryable(err) {
		t.Fatalf("put with MinIO down: err = %v, want retryable", err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "k", []byte("x")); err != nil {
		t.Fatalf("put after MinIO came back: %v", err)
	}
}
