package miniostore_test

import (
	"net/http"
	"testing"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/objectstore/miniostore"
	"github.com/mambamq/mamba/objectstore/storetest"
)

func TestMinIOServer(t *testing.T) {
	storetest.RunS3(t, func(t *testing.T, m *testserver.MinIO, bucket string, attempts int) storetest.BucketStore {
		s, err := miniostore.New(miniostore.Config{
			Endpoint:    m.Endpoint,
			Bucket:      bucket,
			Region:      "us-east-1",
			PathStyle:   true,
			Credentials: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
			MaxRetries:  attempts,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
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

func TestCorruptPutRejected(t *testing.T) {
	m := testserver.StartMinIO(t)
	s, err := miniostore.New(miniostore.Config{
		Endpoint:    m.Endpoint,
		Bucket:      m.CreateBucket(t, "corrupt"),
		Region:      "us-east-1",
		PathStyle:   true,
		Credentials: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Transport:   storetest.CorruptingTransport{Base: http.DefaultTransport},
		MaxRetries:  1,
	})
	if err != nil {
		t.Fatal(err)
	}
	storetest.CheckCorruptPutRejected(t, s)
}
