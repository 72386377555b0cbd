// Package miniostore is an objectstore.Store on MinIO or any other
// S3-compatible service, through the minio-go v7 client.
package miniostore

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"net/http"
	"net/url"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/mambamq/mamba/objectstore"
)

// Config says where the bucket is and how to reach it.
type Config struct {
	// Endpoint is the service URL, for example http://127.0.0.1:9000. Its
	// scheme decides TLS. Empty means AWS S3 (https://s3.amazonaws.com).
	Endpoint string
	// Bucket must already exist.
	Bucket string
	// Region is sent in request signatures. Empty lets the client discover
	// it (or use us-east-1 for MinIO).
	Region string
	// PathStyle forces path-style requests (http://host/bucket/key), which
	// MinIO and most self-hosted stores need. When false the client picks.
	PathStyle bool
	// Credentials signs requests. Nil means DefaultCredentials.
	Credentials *credentials.Credentials
	// Transport replaces the HTTP transport, for example to inject faults
	// in tests. Nil means minio-go's default.
	Transport http.RoundTripper
	// MaxRetries bounds minio-go's own retries of one call. Zero means the
	// client's default (10).
	MaxRetries int
	// SSE is the server-side encryption every Put asks for. The zero
	// value asks for none.
	SSE objectstore.SSE
	// RootCAs, when not nil, are the CAs trusted for an https endpoint's
	// certificate instead of the system's roots. Ignored with Transport.
	RootCAs *x509.CertPool
}

// DefaultCredentials looks for credentials in this order: the environment
// variables AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN),
// MINIO_ROOT_USER / MINIO_ROOT_PASSWORD or MINIO_ACCESS_KEY / MINIO_SECRET_KEY,
// the AWS shared credentials file (~/.aws/credentials, profile AWS_PROFILE),
// the MinIO client configuration (~/.mc/config.json), and finally the EC2 or
// ECS instance role, and web identity tokens.
func DefaultCredentials() *credentials.Credentials {
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.EnvMinio{},
		&credentials.FileAWSCredentials{},
		&credentials.FileMinioClient{},
		&credentials.IAM{},
	})
}

// partSize is the largest object uploaded with one PUT; larger objects use
// a multipart upload. Chunks are well under it, so each costs one request.
const partSize = 64 << 20

// Store is a bucket reached through minio-go.
type Store struct {
	client *minio.Client
	core   minio.Core
	bucket string
	sse    encrypt.ServerSide // nil: none requested
}

var _ objectstore.Store = (*Store)(nil)

// New returns a store for cfg.Bucket. It does not contact the service.
func New(cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("minio store: no bucket")
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "https://s3.amazonaws.com"
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("minio store: endpoint %q is not an http or https URL", cfg.Endpoint)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("minio store: endpoint %q must not have a path", cfg.Endpoint)
	}
	sse, err := serverSide(cfg.SSE)
	if err != nil {
		return nil, fmt.Errorf("minio store: %w", err)
	}
	creds := cfg.Credentials
	if creds == nil {
		creds = DefaultCredentials()
	}
	transport := cfg.Transport
	if transport == nil && cfg.RootCAs != nil {
		tr, err := minio.DefaultTransport(true)
		if err != nil {
			return nil, fmt.Errorf("minio store: %w", err)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
		transport = tr
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        creds,
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    transport,
		MaxRetries:   cfg.MaxRetries,
		// Lets Put send its own x-amz-checksum-crc32c header.
		TrailingHeaders: true,
	})
	if err != nil {
		return nil, fmt.Errorf("minio store: %w", err)
	}
	return &Store{client: client, core: minio.Core{Client: client}, bucket: cfg.Bucket, sse: sse}, nil
}

// serverSide maps sse to minio-go's form, nil for none.
func serverSide(sse objectstore.SSE) (encrypt.ServerSide, error) {
	if err := sse.Validate(); err != nil {
		return nil, err
	}
	switch sse.Mode {
	case objectstore.SSES3:
		return encrypt.NewSSE(), nil
	case objectstore.SSEKMS:
		return encrypt.NewSSEKMS(sse.KMSKeyID, nil)
	}
	return nil, nil
}

// CheckBucket confirms that the bucket exists and the credentials can reach
// it.
func (s *Store) CheckBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return mapErr("check bucket", s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("bucket %s does not exist", s.bucket)
	}
	return nil
}

func begin(ctx context.Context, op, key string) error {
	if err := objectstore.ValidateKey(key); err != nil {
		return err
	}
	return objectstore.ContextError(ctx, op, key)
}

// Put uploads data with a single PUT (a multipart upload above 64 MiB),
// asking for the configured server-side encryption.
//
// The body is sent as UNSIGNED-PAYLOAD with its CRC-32C in
// x-amz-checksum-crc32c, which the service checks before it stores the
// object and which the request signature covers. Without this, minio-go
// signs every 64 KiB of a plain-http body with SHA-256 (streaming
// signature), which costs more CPU than the rest of a chunk's write path;
// over https it already sends UNSIGNED-PAYLOAD and relies on TLS.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if err := begin(ctx, "put", key); err != nil {
		return err
	}
	opts := minio.PutObjectOptions{
		ContentType:          "application/octet-stream",
		PartSize:             partSize,
		ServerSideEncryption: s.sse,
	}
	if len(data) <= partSize {
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], crc32.Checksum(data, castagnoli))
		opts.DisableContentSha256 = true
		opts.UserMetadata = map[string]string{"x-amz-checksum-crc32c": base64.StdEncoding.EncodeToString(sum[:])}
	}
	_, err := s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		return mapErr("put", key, err)
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Get downloads the whole object.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := begin(ctx, "get", key); err != nil {
		return nil, err
	}
	return s.read(ctx, "get", key, minio.GetObjectOptions{}, -1)
}

// GetRange downloads the range with one ranged GET. A zero-length range
// costs a HEAD request instead, because HTTP cannot express it.
func (s *Store) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := begin(ctx, "get range", key); err != nil {
		return nil, err
	}
	last, done, err := objectstore.PrepareRange(ctx, s, key, off, length)
	if err != nil {
		return nil, err
	}
	if done {
		return []byte{}, nil
	}
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, last); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", objectstore.ErrInvalidRange, key, err)
	}
	return s.read(ctx, "get range", key, opts, length)
}

func (s *Store) read(ctx context.Context, op, key string, opts minio.GetObjectOptions, limit int64) ([]byte, error) {
	// Core.GetObject is a single GET whose response already carries the
	// length of the body, so the buffer is allocated once. (Client.GetObject
	// would add a HEAD and conditional re-reads.)
	body, info, _, err := s.core.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		return nil, mapErr(op, key, err)
	}
	defer body.Close()
	size := info.Size
	if limit >= 0 {
		size = min(size, limit)
	}
	buf := bytes.NewBuffer(make([]byte, 0, max(size, 0)+bytes.MinRead))
	if _, err := buf.ReadFrom(body); err != nil {
		return nil, mapErr(op, key, err)
	}
	return buf.Bytes(), nil
}

// Stat issues a HEAD request.
func (s *Store) Stat(ctx context.Context, key string) (objectstore.ObjectInfo, error) {
	if err := begin(ctx, "stat", key); err != nil {
		return objectstore.ObjectInfo{}, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return objectstore.ObjectInfo{}, mapErr("stat", key, err)
	}
	return objectstore.ObjectInfo{Key: key, Size: info.Size, ModTime: info.LastModified}, nil
}

// Delete removes the object; S3 treats a missing key as success.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := begin(ctx, "delete", key); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if err := mapErr("delete", key, err); !errors.Is(err, objectstore.ErrNotExist) {
			return err
		}
	}
	return nil
}

// List pages through ListObjectsV2 without a delimiter. S3 returns keys in
// ascending UTF-8 byte order, which is the order List promises.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[objectstore.ObjectInfo, error] {
	return s.ListAfter(ctx, prefix, "")
}

// ListAfter implements objectstore.ListerAfter with ListObjectsV2's
// StartAfter.
func (s *Store) ListAfter(ctx context.Context, prefix, after string) iter.Seq2[objectstore.ObjectInfo, error] {
	if err := objectstore.ValidatePrefix(prefix); err != nil {
		return objectstore.ListError(err)
	}
	return func(yield func(objectstore.ObjectInfo, error) bool) {
		if err := objectstore.ContextError(ctx, "list", prefix); err != nil {
			yield(objectstore.ObjectInfo{}, err)
			return
		}
		for obj := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, StartAfter: after}) {
			if obj.Err != nil {
				yield(objectstore.ObjectInfo{}, mapErr("list", prefix, obj.Err))
				return
			}
			if !yield(objectstore.ObjectInfo{Key: obj.Key, Size: obj.Size, ModTime: obj.LastModified}, nil) {
				return
			}
		}
	}
}

// mapErr turns a minio-go error into the objectstore sentinels.
func mapErr(op, key string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case minio.NoSuchKey:
		return objectstore.NotExist(key)
	case minio.InvalidRange:
		return fmt.Errorf("%w: %s: %s", objectstore.ErrInvalidRange, key, resp.Message)
	case "SlowDown", "SlowDownRead", "SlowDownWrite", "RequestTimeout", "InternalError", "ServiceUnavailable", "XMinioServerNotInitialized":
		return objectstore.Retryable(fmt.Errorf("%s %s: %w", op, key, err))
	}
	if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		return fmt.Errorf("%w: %s", objectstore.ErrInvalidRange, key)
	}
	if objectstore.RetryableStatus(resp.StatusCode) || objectstore.NetworkError(err) {
		return objectstore.Retryable(fmt.Errorf("%s %s: %w", op, key, err))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return objectstore.Retryable(fmt.Errorf("%s %s: %w", op, key, err))
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}
