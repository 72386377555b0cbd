package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/objectstore/miniostore"
)

// Defaults for MinIOPutConfig: the node's chunk size and upload
// concurrency, so that the baseline is the node's own upload pattern.
const (
	DefaultObjectSize    = ingest.DefaultFlushBytes
	DefaultMinIOInFlight = ingest.DefaultUploadConcurrency
)

// MinIOPutConfig configures RunMinIOPut. BaselineConfig.InFlight is the
// number of PUTs in flight in total (one goroutine each);
// BaselineConfig.Producers is not used.
type MinIOPutConfig struct {
	BaselineConfig
	// Endpoint is the S3 API's URL, for example http://127.0.0.1:9000.
	Endpoint string
	// AccessKey and SecretKey sign the requests.
	AccessKey, SecretKey string
	// Bucket receives the objects; it is created if missing. Objects are
	// written under bench/minio-put/<run>/ and left there.
	Bucket string
	// ObjectSize is the size of each PUT in bytes (default: the node's
	// chunk size, DefaultObjectSize).
	ObjectSize int
}

// Validate reports every bad field at once.
func (c MinIOPutConfig) Validate() error {
	errs := []error{c.BaselineConfig.Validate()}
	if c.Endpoint == "" {
		errs = append(errs, errors.New("no MinIO endpoint"))
	} else if u, err := url.Parse(c.Endpoint); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		errs = append(errs, fmt.Errorf("MinIO endpoint %q is not an http or https URL", c.Endpoint))
	}
	if c.Bucket == "" {
		errs = append(errs, errors.New("no bucket"))
	}
	if c.ObjectSize < 0 {
		errs = append(errs, fmt.Errorf("object size %d is negative", c.ObjectSize))
	}
	return errors.Join(errs...)
}

// RunMinIOPut measures the ceiling of the set-up: how fast MinIO takes
// chunk-sized objects with as many PUTs in flight as a Mamba node keeps.
// Each PUT goes through objectstore/miniostore, the very code the node
// uploads chunks with, so the client does the same work per byte (over
// plain http that includes minio-go's streaming SHA-256 payload signature).
//
// Throughput is reported in bytes and in equivalent records
// (bytes / MessageSize) so that it lines up with the message queues; the
// ack latency is per object.
func RunMinIOPut(ctx context.Context, cfg MinIOPutConfig) (SystemResult, error) {
	cfg.BaselineConfig = cfg.withDefaults(DefaultMinIOInFlight)
	if cfg.ObjectSize == 0 {
		cfg.ObjectSize = DefaultObjectSize
	}
	if err := cfg.Validate(); err != nil {
		return SystemResult{}, fmt.Errorf("minio put: %w", err)
	}
	u, _ := url.Parse(cfg.Endpoint) // validated above
	creds := credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	// The transport is minio-go's default, made here only so that its idle
	// connections can be closed when the run ends.
	tr, err := minio.DefaultTransport(u.Scheme == "https")
	if err != nil {
		return SystemResult{}, fmt.Errorf("minio put: %w", err)
	}
	defer tr.CloseIdleConnections()
	if err := ensureBucket(ctx, u, creds, tr, cfg.Bucket); err != nil {
		return SystemResult{}, fmt.Errorf("minio put: %w", err)
	}
	store, err := miniostore.New(miniostore.Config{
		Endpoint:    cfg.Endpoint,
		Bucket:      cfg.Bucket,
		PathStyle:   true, // as storeurl sets it for an explicit endpoint
		Credentials: creds,
		Transport:   tr,
	})
	if err != nil {
		return SystemResult{}, fmt.Errorf("minio put: %w", err)
	}

	payload := randomPayload(cfg.ObjectSize)
	prefix := "bench/minio-put/" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/"
	objectRate := cfg.Rate * float64(cfg.MessageSize) / float64(cfg.ObjectSize)
	w, runErr := drive(ctx, cfg.BaselineConfig, cfg.InFlight, objectRate, func(ctx context.Context, w *sender) {
		for seq := 0; ; seq++ {
			sent, ok := w.pace(ctx)
			if !ok {
				return
			}
			sent = stamp(sent)
			key := prefix + strconv.Itoa(w.id) + "/" + strconv.Itoa(seq)
			if err := store.Put(ctx, key, payload); err != nil {
				w.fail(ctx, err)
				continue
			}
			w.ack(sent, time.Now(), int64(len(payload)))
		}
	})
	res, err := w.result("minio-put", "PUT answered by MinIO",
		fmt.Sprintf("%s objects, %d PUTs in flight; records are %d-byte equivalents", sizeText(cfg.ObjectSize), cfg.InFlight, cfg.MessageSize))
	if runErr != nil {
		return res, fmt.Errorf("minio put: %w", runErr)
	}
	return res, err
}

// ensureBucket creates bucket unless it exists.
func ensureBucket(ctx context.Context, u *url.URL, creds *credentials.Credentials, tr http.RoundTripper, bucket string) error {
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        creds,
		Secure:       u.Scheme == "https",
		BucketLookup: minio.BucketLookupPath,
		Transport:    tr,
	})
	if err != nil {
		return err
	}
	ok, err := client.BucketExists(ctx, bucket)
	if err != nil {
		return fmt.Errorf("check bucket %s: %w", bucket, err)
	}
	if ok {
		return nil
	}
	if err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		// Another run may have created it in the meantime.
		if code := minio.ToErrorResponse(err).Code; code != minio.BucketAlreadyOwnedByYou && code != minio.BucketAlreadyExists {
			return fmt.Errorf("create bucket %s: %w", bucket, err)
		}
	}
	return nil
}

// sizeText prints a byte count in the largest binary unit that divides it.
func sizeText(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + " KiB"
	}
	return strconv.Itoa(n) + " B"
}
