package s3store_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/mambamq/mamba/internal/testserver"
	"github.com/mambamq/mamba/objectstore/s3store"
	"github.com/mambamq/mamba/objectstore/storetest"
)

func TestMinIOServer(t *testing.T) {
	storetest.RunS3(t, func(t *testing.T, m *testserver.MinIO, bucket string, attempts int) storetest.BucketStore {
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
	})
}
