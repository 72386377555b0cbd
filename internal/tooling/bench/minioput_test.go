package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/mambamq/mamba/internal/tooling/testserver"
)

func TestRunMinIOPut(t *testing.T) {
	m := testserver.StartMinIO(t)
	const objectSize = 64 << 10
	buckets := 0
	testRunner(t, runnerTarget{
		system:      "minio-put",
		sampleBytes: objectSize,
		pacedAcks:   20,
		fresh: func(t *testing.T) (runFunc, func() int64) {
			// A bucket that does not exist yet: the runner creates it.
			buckets++
			bucket := fmt.Sprintf("bench-%d", buckets)
			run := func(ctx context.Context, cfg BaselineConfig) (SystemResult, error) {
				return RunMinIOPut(ctx, MinIOPutConfig{
					BaselineConfig: cfg,
					Endpoint:       m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey,
					Bucket: bucket, ObjectSize: objectSize,
				})
			}
			stored := func() int64 {
				var n int64
				for obj := range m.Client(t).ListObjectsIter(t.Context(), bucket, minio.ListObjectsOptions{Recursive: true}) {
					if obj.Err != nil {
						t.Fatalf("list %s: %v", bucket, obj.Err)
					}
					if obj.Size != objectSize {
						t.Errorf("object %s has %d bytes, want %d", obj.Key, obj.Size, objectSize)
					}
					n++
				}
				return n
			}
			return run, stored
		},
	})
}
