// Package storeurl opens an objectstore.Store from a URL, so that every
// Mamba command and config file names its bucket the same way:
//
//	mem://                         a new, empty in-memory store (tests, demos)
//	file:///var/lib/mamba          a local directory (absolute path)
//	file:data/mamba                a local directory (relative path)
//	s3://bucket                    AWS S3 through minio-go
//	s3://bucket/some/prefix        keys are stored under some/prefix/
//	s3://bucket?endpoint=http://127.0.0.1:9000
//	                               MinIO or another S3-compatible service
//
// Query parameters of s3 URLs:
//
//	endpoint    service URL; its scheme decides TLS. Default: AWS S3.
//	region      signing region. Default: AWS_REGION or the SDK's discovery,
//	            then us-east-1.
//	path_style  true or false. Default: true when endpoint is set (MinIO
//	            needs it), false otherwise (AWS virtual-hosted style).
//	client      minio (default; minio-go v7) or aws (aws-sdk-go-v2).
//	sse         server-side encryption of every write: s3 (SSE-S3) or kms
//	            (SSE-KMS). Default: none requested (the bucket's default).
//	sse_kms_key_id
//	            the KMS key for sse=kms. Default: the service's default key.
//	ca_file     PEM file of the CAs trusted for an https endpoint's
//	            certificate, instead of the system's roots (a private CA).
//
// Credentials never go in the URL. Both clients read the standard
// environment variables AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN, then the shared files in ~/.aws (profile AWS_PROFILE),
// then the instance or task role. The minio client also reads
// MINIO_ROOT_USER / MINIO_ROOT_PASSWORD (or MINIO_ACCESS_KEY /
// MINIO_SECRET_KEY) and ~/.mc/config.json; the aws client also supports SSO
// and web identity tokens through the shared config.
//
// This package is the only place that imports every backend; servers and
// commands depend on objectstore.Store alone.
package storeurl

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mambamq/mamba/internal/certfile"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/filestore"
	"github.com/mambamq/mamba/objectstore/miniostore"
	"github.com/mambamq/mamba/objectstore/s3store"
)

// Open returns the store that rawURL names. It does not contact remote
// services; the first call on the store does. Close the store with
// objectstore.Close when done.
func Open(ctx context.Context, rawURL string) (objectstore.Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store URL: %w", err)
	}
	switch u.Scheme {
	case "mem":
		if u.Host != "" || u.Path != "" || u.Opaque != "" || u.RawQuery != "" {
			return nil, fmt.Errorf("store URL %q: mem:// takes no host, path or parameters", rawURL)
		}
		return objectstore.NewMemory(), nil
	case "file":
		return openFile(rawURL, u)
	case "s3":
		return openS3(ctx, rawURL, u)
	case "":
		return nil, fmt.Errorf("store URL %q has no scheme; use mem://, file:///path or s3://bucket", rawURL)
	default:
		return nil, fmt.Errorf("store URL %q: unknown scheme %q; use mem, file or s3", rawURL, u.Scheme)
	}
}

func openFile(rawURL string, u *url.URL) (objectstore.Store, error) {
	if u.RawQuery != "" {
		return nil, fmt.Errorf("store URL %q: file URLs take no parameters", rawURL)
	}
	dir := u.Path
	switch {
	case u.Opaque != "":
		dir = u.Opaque // file:relative/path
	case u.Host != "" && u.Host != "localhost":
		return nil, fmt.Errorf("store URL %q: file URLs name a local path (file:///abs/path or file:rel/path), not host %q", rawURL, u.Host)
	}
	if dir == "" {
		return nil, fmt.Errorf("store URL %q: no directory", rawURL)
	}
	s, err := filestore.Open(filepath.Clean(dir))
	if err != nil {
		return nil, fmt.Errorf("store URL %q: %w", rawURL, err)
	}
	return s, nil
}

func openS3(ctx context.Context, rawURL string, u *url.URL) (objectstore.Store, error) {
	if u.User != nil {
		return nil, fmt.Errorf("store URL %q: credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", redacted(u))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("store URL %q: no bucket (s3://bucket/prefix)", rawURL)
	}
	q := u.Query()
	for name := range q {
		switch name {
		case "endpoint", "region", "path_style", "client", "sse", "sse_kms_key_id", "ca_file":
		default:
			return nil, fmt.Errorf("store URL %q: unknown parameter %q (known: endpoint, region, path_style, client, sse, sse_kms_key_id, ca_file)", rawURL, name)
		}
	}
	sse := objectstore.SSE{Mode: objectstore.SSEMode(q.Get("sse")), KMSKeyID: q.Get("sse_kms_key_id")}
	if q.Has("sse") && sse.Mode == objectstore.SSENone {
		return nil, fmt.Errorf("store URL %q: sse is empty; use sse=s3 or sse=kms, or leave it out", rawURL)
	}
	if err := sse.Validate(); err != nil {
		return nil, fmt.Errorf("store URL %q: %w", rawURL, err)
	}
	endpoint, region := q.Get("endpoint"), q.Get("region")
	pathStyle := endpoint != ""
	if v := q.Get("path_style"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("store URL %q: path_style=%q is not true or false", rawURL, v)
		}
		pathStyle = b
	}
	var roots *x509.CertPool
	if caFile := q.Get("ca_file"); caFile != "" {
		if strings.HasPrefix(endpoint, "http://") {
			return nil, fmt.Errorf("store URL %q: ca_file needs an https endpoint", rawURL)
		}
		var err error
		if roots, err = certfile.CAPool(caFile, nil); err != nil {
			return nil, fmt.Errorf("store URL %q: ca_file: %w", rawURL, err)
		}
	}
	var (
		store objectstore.Store
		err   error
	)
	switch client := q.Get("client"); client {
	case "", "minio":
		store, err = miniostore.New(miniostore.Config{Endpoint: endpoint, Bucket: u.Host, Region: region, PathStyle: pathStyle, SSE: sse, RootCAs: roots})
	case "aws":
		store, err = s3store.New(ctx, s3store.Config{Endpoint: endpoint, Bucket: u.Host, Region: region, PathStyle: pathStyle, SSE: sse, RootCAs: roots})
	default:
		return nil, fmt.Errorf("store URL %q: client=%q; use minio or aws", rawURL, client)
	}
	if err != nil {
		return nil, fmt.Errorf("store URL %q: %w", rawURL, err)
	}
	return objectstore.WithPrefix(store, strings.Trim(u.Path, "/"))
}

func redacted(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}
