package storeurl_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/mambamq/mamba/internal/tooling/servers"
	"github.com/mambamq/mamba/internal/tooling/testcert"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/filestore"
	"github.com/mambamq/mamba/objectstore/storeurl"
)

func TestOpenMemAndFile(t *testing.T) {
	ctx := t.Context()
	mem, err := storeurl.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mem.(*objectstore.Memory); !ok {
		t.Fatalf("mem:// opened %T", mem)
	}

	dir := t.TempDir()
	s, err := storeurl.Open(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer objectstore.Close(s)
	if fs, ok := s.(*filestore.Store); !ok || fs.Dir() != dir {
		t.Fatalf("file URL opened %T in %v", s, s)
	}
	if err := s.Put(ctx, "chunks/a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "chunks", "a")); err != nil {
		t.Fatalf("file store wrote outside its directory: %v", err)
	}

	// Relative paths use the opaque form.
	t.Chdir(dir)
	rel, err := storeurl.Open(ctx, "file:rel/store")
	if err != nil {
		t.Fatal(err)
	}
	defer objectstore.Close(rel)
	if fs := rel.(*filestore.Store); fs.Dir() != "rel/store" {
		t.Fatalf("relative file URL opened %q", fs.Dir())
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	for _, raw := range []string{
		"",
		"bucket-without-scheme",
		"gs://bucket",
		"mem://name",
		"file://otherhost/path",
		"file:///tmp/x?sync=false",
		"s3://",
		"s3://bucket?endpont=http://typo",
		"s3://bucket?client=gcs",
		"s3://bucket?path_style=maybe",
		"s3://key:secret@bucket",
		"s3://bucket?endpoint=ftp://host",
		"s3://bucket?sse=aes",
		"s3://bucket?sse=",
		"s3://bucket?sse=SSE-S3",
		"s3://bucket?sse=s3&sse_kms_key_id=k",
		"s3://bucket?sse_kms_key_id=k",
		"s3://bucket?sse=kms&sse_kms_key_id=bad%20id",
		"://bad",
	} {
		if _, err := storeurl.Open(t.Context(), raw); err == nil {
			t.Errorf("Open(%q) succeeded", raw)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) error leaks the secret: %v", raw, err)
		}
	}
}

// useCredentials gives both S3 clients m's root credentials through the
// environment, and no shared AWS files.
func useCredentials(t *testing.T, m *testserver.MinIO) {
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
}

// Both S3 clients, opened by URL with credentials from the environment,
// reach a real MinIO and keep keys under the URL's prefix.
func TestOpenS3AgainstMinIO(t *testing.T) {
	m := testserver.StartMinIO(t)
	bucket := m.CreateBucket(t, "byurl")
	useCredentials(t, m)
	ctx := t.Context()
	whole, err := storeurl.Open(ctx, fmt.Sprintf("s3://%s?endpoint=%s", bucket, m.Endpoint))
	if err != nil {
		t.Fatal(err)
	}
	for _, client := range []string{"minio", "aws"} {
		raw := fmt.Sprintf("s3://%s/env/%s?endpoint=%s&client=%s", bucket, client, m.Endpoint, client)
		s, err := storeurl.Open(ctx, raw)
		if err != nil {
			t.Fatalf("Open(%q): %v", raw, err)
		}
		data := []byte("via " + client)
		if err := s.Put(ctx, "chunks/1", data); err != nil {
			t.Fatalf("%s put: %v", client, err)
		}
		got, err := whole.Get(ctx, "env/"+client+"/chunks/1")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: object not under the URL prefix: %q, %v", client, got, err)
		}
		for info, err := range s.List(ctx, "") {
			if err != nil || info.Key != "chunks/1" {
				t.Fatalf("%s list through prefix = %+v, %v", client, info, err)
			}
		}
	}
}

// Both S3 clients ask for the server-side encryption the URL names on every
// write, and MinIO (with a static KMS key) stores the objects encrypted:
// its HEAD answer carries the x-amz-server-side-encryption header. Without
// sse the same server stores them in the clear.
func TestOpenS3ServerSideEncryption(t *testing.T) {
	m := testserver.StartMinIOWith(t, servers.MinIOOptions{KMSKey: "mamba-test-key"})
	bucket := m.CreateBucket(t, "sse")
	useCredentials(t, m)
	ctx := t.Context()
	admin := m.Client(t)
	for _, tc := range []struct {
		params, header, keyID string
	}{
		{"", "", ""},
		{"&sse=s3", "AES256", ""},
		{"&sse=kms", "aws:kms", ""},
		{"&sse=kms&sse_kms_key_id=" + m.KMSKeyName, "aws:kms", m.KMSKeyName},
	} {
		for _, client := range []string{"minio", "aws"} {
			raw := fmt.Sprintf("s3://%s/%s?endpoint=%s&client=%s%s", bucket, client, m.Endpoint, client, tc.params)
			s, err := storeurl.Open(ctx, raw)
			if err != nil {
				t.Fatalf("Open(%q): %v", raw, err)
			}
			key := "chunks/" + strings.NewReplacer("&", "", "=", "-").Replace(tc.params)
			if tc.params == "" {
				key = "chunks/plain"
			}
			data := []byte("secret value " + raw)
			if err := s.Put(ctx, key, data); err != nil {
				t.Fatalf("%s: put: %v", raw, err)
			}
			if got, err := s.Get(ctx, key); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: get = %q, %v", raw, got, err)
			}
			if got, err := s.GetRange(ctx, key, 7, 5); err != nil || string(got) != "value" {
				t.Fatalf("%s: get range = %q, %v", raw, got, err)
			}
			info, err := admin.StatObject(ctx, bucket, client+"/"+key, minio.StatObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := info.Metadata.Get("X-Amz-Server-Side-Encryption"); got != tc.header {
				t.Errorf("%s: x-amz-server-side-encryption = %q, want %q", raw, got, tc.header)
			}
			if tc.keyID != "" {
				got := info.Metadata.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id")
				if !strings.HasSuffix(got, tc.keyID) {
					t.Errorf("%s: KMS key id = %q, want %q", raw, got, tc.keyID)
				}
			}
		}
	}
}

// Both S3 clients reach a MinIO serving HTTPS with a certificate of a
// private CA when the URL names that CA (ca_file), and refuse it without:
// put, get, ranged get and list go over TLS.
func TestOpenS3OverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "minio test CA")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	pair := ca.Server(t, 3).Write(t, dir, "minio")
	m := testserver.StartMinIOWith(t, servers.MinIOOptions{TLS: &servers.MinIOTLS{CertFile: pair.CertFile, KeyFile: pair.KeyFile, CAFile: caFile}})
	if !strings.HasPrefix(m.Endpoint, "https://") {
		t.Fatalf("endpoint %s is not https", m.Endpoint)
	}
	bucket := m.CreateBucket(t, "overtls")
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	ctx := t.Context()
	for _, client := range []string{"minio", "aws"} {
		raw := fmt.Sprintf("s3://%s/%s?endpoint=%s&client=%s&ca_file=%s", bucket, client, m.Endpoint, client, caFile)
		s, err := storeurl.Open(ctx, raw)
		if err != nil {
			t.Fatalf("Open(%q): %v", raw, err)
		}
		data := []byte("over TLS via " + client)
		if err := s.Put(ctx, "chunks/1", data); err != nil {
			t.Fatalf("%s put over TLS: %v", client, err)
		}
		if got, err := s.Get(ctx, "chunks/1"); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s get over TLS = %q, %v", client, got, err)
		}
		if got, err := s.GetRange(ctx, "chunks/1", 5, 3); err != nil || string(got) != "TLS" {
			t.Fatalf("%s ranged get over TLS = %q, %v", client, got, err)
		}
		n := 0
		for info, err := range s.List(ctx, "") {
			if err != nil || info.Key != "chunks/1" {
				t.Fatalf("%s list over TLS = %+v, %v", client, info, err)
			}
			n++
		}
		if n != 1 {
			t.Fatalf("%s list over TLS: %d objects, want 1", client, n)
		}
		// Without the CA the certificate is not trusted.
		plain, err := storeurl.Open(ctx, fmt.Sprintf("s3://%s/%s?endpoint=%s&client=%s", bucket, client, m.Endpoint, client))
		if err != nil {
			t.Fatal(err)
		}
		if err := plain.Put(ctx, "chunks/2", data); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s put without ca_file = %v; want a certificate error", client, err)
		}
		objectstore.Close(plain)
		objectstore.Close(s)
	}
	for _, raw := range []string{
		fmt.Sprintf("s3://%s?endpoint=http://127.0.0.1:9&ca_file=%s", bucket, caFile),
		fmt.Sprintf("s3://%s?endpoint=%s&ca_file=%s", bucket, m.Endpoint, filepath.Join(dir, "missing.pem")),
		fmt.Sprintf("s3://%s?endpoint=%s&ca_file=%s", bucket, m.Endpoint, pair.KeyFile),
	} {
		if _, err := storeurl.Open(ctx, raw); err == nil {
			t.Errorf("Open(%q) succeeded", raw)
		}
	}
}
