package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/objectstore"
)

// BucketStore is a Store on one bucket that can check the bucket exists.
type BucketStore interface {
	objectstore.Store
	CheckBucket(ctx context.Context) error
}

// OpenBucket opens a backend's store on a bucket of m; attempts bounds the
// client's own retries of one call (0: the client's default).
type OpenBucket func(t *testing.T, m *testserver.MinIO, bucket string, attempts int) BucketStore

// RunS3 runs, against real MinIO servers it starts, the conformance suite
// (a fresh bucket per subtest) and the checks every S3 backend shares: a
// missing bucket is a final error, and a server that cannot be reached is
// a retryable one that clears once it is back.
func RunS3(t *testing.T, open OpenBucket) {
	t.Run("Conformance", func(t *testing.T) {
		m := testserver.StartMinIO(t)
		var n atomic.Int32
		Run(t, func(t *testing.T) objectstore.Store {
			s := open(t, m, m.CreateBucket(t, fmt.Sprintf("conformance-%d", n.Add(1))), 0)
			if err := s.CheckBucket(t.Context()); err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
	t.Run("MissingBucket", func(t *testing.T) {
		m := testserver.StartMinIO(t)
		s := open(t, m, "no-such-bucket", 0)
		if err := s.CheckBucket(t.Context()); err == nil {
			t.Fatal("CheckBucket of a missing bucket succeeded")
		}
		err := s.Put(t.Context(), "k", []byte("x"))
		if err == nil || objectstore.IsRetryable(err) {
			t.Fatalf("put into a missing bucket: err = %v, want a final error", err)
		}
	})
	// A store that cannot be reached reports a retryable error, so that the
	// write path retries instead of failing producers at once.
	t.Run("UnreachableIsRetryable", func(t *testing.T) {
		m := testserver.StartMinIO(t)
		s := open(t, m, m.CreateBucket(t, "down"), 1)
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
	})
}
