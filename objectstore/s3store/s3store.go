// Package s3store is an objectstore.Store on AWS S3 through aws-sdk-go-v2.
// With a custom endpoint and path-style addressing it also runs against
// MinIO and other S3-compatible services.
package s3store

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
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/mambamq/mamba/objectstore"
)

// Config says where the bucket is and how to reach it.
type Config struct {
	// Bucket must already exist.
	Bucket string
	// Region of the bucket. Empty uses the SDK's default chain (AWS_REGION,
	// the shared config file), and us-east-1 if that finds nothing.
	Region string
	// Endpoint overrides the service URL, for example
	// http://127.0.0.1:9000 for a local MinIO. Empty means AWS.
	Endpoint string
	// PathStyle sends http://host/bucket/key instead of
	// http://bucket.host/key. Needed for MinIO and most local set-ups.
	PathStyle bool
	// Credentials signs requests. Nil means the SDK's default chain:
	// environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
	// AWS_SESSION_TOKEN), the shared credentials and config files (profile
	// AWS_PROFILE, including SSO), web identity tokens, and the ECS or EC2
	// instance role.
	Credentials aws.CredentialsProvider
	// HTTPClient replaces the SDK's HTTP client, for example to inject
	// faults in tests. Nil means the SDK default.
	HTTPClient *http.Client
	// MaxAttempts bounds the SDK's own attempts per call. Zero means the
	// SDK's default (3).
	MaxAttempts int
	// SSE is the server-side encryption every Put asks for. The zero
	// value asks for none.
	SSE objectstore.SSE
	// RootCAs, when not nil, are the CAs trusted for an https endpoint's
	// certificate instead of the system's roots. Ignored with HTTPClient.
	RootCAs *x509.CertPool
}

// Store is a bucket reached through aws-sdk-go-v2.
type Store struct {
	client *s3.Client
	bucket string
	sse    objectstore.SSE
}

var _ objectstore.Store = (*Store)(nil)

// New loads the SDK configuration and returns a store for cfg.Bucket. It
// does not contact S3.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3 store: no bucket")
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("s3 store: endpoint %q is not an http or https URL", cfg.Endpoint)
		}
	}
	if err := cfg.SSE.Validate(); err != nil {
		return nil, fmt.Errorf("s3 store: %w", err)
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	switch {
	case cfg.HTTPClient != nil:
		opts = append(opts, config.WithHTTPClient(cfg.HTTPClient))
	case cfg.RootCAs != nil:
		opts = append(opts, config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
		})))
	}
	if cfg.MaxAttempts > 0 {
		opts = append(opts, config.WithRetryMaxAttempts(cfg.MaxAttempts))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 store: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.PathStyle
		// A ranged GET has no checksum of its own to validate (chunks carry
		// theirs), and the SDK would print a plain-text line to stderr for
		// each, past the node's JSON log and its level.
		o.DisableLogOutputChecksumValidationSkipped = true
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &Store{client: client, bucket: cfg.Bucket, sse: cfg.SSE}, nil
}

// CheckBucket confirms that the bucket exists and the credentials can reach
// it.
func (s *Store) CheckBucket(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		return mapErr("check bucket", s.bucket, err)
	}
	return nil
}

func begin(ctx context.Context, op, key string) error {
	if err := objectstore.ValidateKey(key); err != nil {
		return err
	}
	return objectstore.ContextError(ctx, op, key)
}

// Put uploads data with one PutObject request, asking for the configured
// server-side encryption.
//
// The body is sent as UNSIGNED-PAYLOAD with its CRC-32C in
// x-amz-checksum-crc32c, which S3 checks before it stores the object and
// which the request signature covers. Otherwise the SDK would hash every
// body with SHA-256 to sign it on plain http, which costs more CPU than
// the rest of a chunk's write path.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if err := begin(ctx, "put", key); err != nil {
		return err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.Checksum(data, castagnoli))
	in := &s3.PutObjectInput{
		Bucket:            &s.bucket,
		Key:               &key,
		Body:              bytes.NewReader(data),
		ContentLength:     aws.Int64(int64(len(data))),
		ContentType:       aws.String("application/octet-stream"),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
		ChecksumCRC32C:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	}
	switch s.sse.Mode {
	case objectstore.SSES3:
		in.ServerSideEncryption = types.ServerSideEncryptionAes256
	case objectstore.SSEKMS:
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		if s.sse.KMSKeyID != "" {
			in.SSEKMSKeyId = aws.String(s.sse.KMSKeyID)
		}
	}
	_, err := s.client.PutObject(ctx, in, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
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
	return s.read(ctx, "get", key, nil)
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
	rng := "bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(last, 10)
	return s.read(ctx, "get range", key, &rng)
}

func (s *Store) read(ctx context.Context, op, key string, rng *string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key, Range: rng})
	if err != nil {
		return nil, mapErr(op, key, err)
	}
	defer out.Body.Close()
	size := aws.ToInt64(out.ContentLength)
	buf := bytes.NewBuffer(make([]byte, 0, max(size, 0)+bytes.MinRead))
	if _, err := buf.ReadFrom(out.Body); err != nil {
		return nil, mapErr(op, key, err)
	}
	return buf.Bytes(), nil
}

// Stat issues a HeadObject request.
func (s *Store) Stat(ctx context.Context, key string) (objectstore.ObjectInfo, error) {
	if err := begin(ctx, "stat", key); err != nil {
		return objectstore.ObjectInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return objectstore.ObjectInfo{}, mapErr("stat", key, err)
	}
	return objectstore.ObjectInfo{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// Delete removes the object; S3 treats a missing key as success.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := begin(ctx, "delete", key); err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil {
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
		in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix}
		if after != "" {
			in.StartAfter = &after
		}
		pages := s3.NewListObjectsV2Paginator(s.client, in)
		for pages.HasMorePages() {
			if err := objectstore.ContextError(ctx, "list", prefix); err != nil {
				yield(objectstore.ObjectInfo{}, err)
				return
			}
			page, err := pages.NextPage(ctx)
			if err != nil {
				yield(objectstore.ObjectInfo{}, mapErr("list", prefix, err))
				return
			}
			for _, obj := range page.Contents {
				info := objectstore.ObjectInfo{Key: aws.ToString(obj.Key), Size: aws.ToInt64(obj.Size), ModTime: aws.ToTime(obj.LastModified)}
				if !yield(info, nil) {
					return
				}
			}
		}
	}
}

var retryables = retry.IsErrorRetryables(retry.DefaultRetryables)

// mapErr turns an SDK error into the objectstore sentinels. Retryability
// follows the SDK's own classification, plus any throttling or 5xx status.
func mapErr(op, key string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	var (
		noKey   *types.NoSuchKey
		notFnd  *types.NotFound
		apiErr  smithy.APIError
		respErr *awshttp.ResponseError
	)
	status := 0
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	code := ""
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	switch {
	case errors.As(err, &noKey), code == "NoSuchKey":
		return objectstore.NotExist(key)
	case errors.As(err, &notFnd) && op != "check bucket":
		return objectstore.NotExist(key)
	case code == "InvalidRange" || status == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%w: %s", objectstore.ErrInvalidRange, key)
	case retryables.IsErrorRetryable(err) == aws.TrueTernary,
		objectstore.RetryableStatus(status),
		objectstore.NetworkError(err):
		return objectstore.Retryable(fmt.Errorf("%s %s: %w", op, key, err))
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}
