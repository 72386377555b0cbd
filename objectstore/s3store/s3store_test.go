package s3store_test

import (
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/mambamq/mamba/internal/tooling/testserver"
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

func TestCorruptPutRejected(t *testing.T) {
	// The SDK cannot add a CA bundle to a plain *http.Client, and needs
	// none for http.
	t.Setenv("AWS_CA_BUNDLE", "")
	m := testserver.StartMinIO(t)
	s, err := s3store.New(t.Context(), s3store.Config{
		Bucket:      m.CreateBucket(t, "corrupt"),
		Region:      "us-east-1",
		Endpoint:    m.Endpoint,
		PathStyle:   true,
		Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		HTTPClient:  &http.Client{Transport: storetest.CorruptingTransport{Base: http.DefaultTransport}},
		MaxAttempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	storetest.CheckCorruptPutRejected(t, s)
}
