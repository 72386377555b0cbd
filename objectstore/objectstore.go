// Package objectstore owns Mamba's view of object storage: a byte-level,
// context-first Store interface, the sentinel errors every backend maps its
// failures to, an in-memory store, and a prefix wrapper.
//
// Backends live in subpackages, one per client library: filestore (a local
// directory), miniostore (minio-go, for MinIO and any S3-compatible store)
// and s3store (aws-sdk-go-v2, for AWS S3). Package storeurl opens any of
// them from a URL, and package storetest is the conformance suite that every
// backend runs.
//
// Semantics every Store guarantees:
//
//   - Put is atomic: a reader sees either the old object or the new one in
//     full, never a torn write. When Put returns nil the object is durable.
//   - Get and GetRange on a missing key fail with an error that wraps
//     ErrNotExist. Delete of a missing key succeeds.
//   - GetRange(off, n) returns the bytes [off, min(off+n, size)). A range
//     that starts at or past the end of the object (off >= size, n > 0), or
//     a negative off or n, fails with ErrInvalidRange. A zero-length range
//     with 0 <= off <= size returns no bytes and no error.
//   - List yields every object whose key starts with the prefix, in
//     ascending byte order of keys, with no delimiter (it is recursive).
//   - Keys are validated by ValidateKey in every backend, so a key that one
//     backend accepts is accepted by all.
//   - Transient failures (timeouts, throttling, 5xx responses, connection
//     errors) wrap ErrRetryable; everything else is final. A cancelled or
//     expired context gives an error that wraps ctx.Err() and is not
//     retryable.
package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"net"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Store is a byte-level object store. Implementations are safe for
// concurrent use.
type Store interface {
	// Put writes data to key, replacing any object already there.
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the whole object.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetRange returns up to length bytes starting at off.
	GetRange(ctx context.Context, key string, off, length int64) ([]byte, error)
	// Stat returns the object's metadata without its content.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// Delete removes the object. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List yields the objects whose keys start with prefix, in key order.
	// After an error is yielded the sequence ends.
	List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error]
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
}

var (
	// ErrNotExist is wrapped by every error about a key that has no object.
	ErrNotExist = errors.New("object does not exist")
	// ErrInvalidRange is wrapped by errors about a range that starts past
	// the end of the object or has a negative offset or length.
	ErrInvalidRange = errors.New("invalid range")
	// ErrInvalidKey is wrapped by errors about keys that ValidateKey rejects.
	ErrInvalidKey = errors.New("invalid object key")
	// ErrRetryable is wrapped by transient failures: the same call may
	// succeed if tried again later.
	ErrRetryable = errors.New("transient object store failure")
)

// IsRetryable reports whether err is a transient failure worth retrying.
func IsRetryable(err error) bool { return errors.Is(err, ErrRetryable) }

// Retryable marks err as transient. It returns nil for nil.
func Retryable(err error) error {
	if err == nil || errors.Is(err, ErrRetryable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrRetryable, err)
}

// MaxKeyLen is the longest key, in bytes, that every backend accepts (the
// S3 limit).
const MaxKeyLen = 1024

// ValidateKey reports whether key is acceptable to every backend: non-empty
// valid UTF-8 of at most MaxKeyLen bytes, no NUL or other control
// characters, no backslash, no leading or trailing "/", and no empty, "." or
// ".." path segment. These rules keep a key from escaping a filesystem
// root and from meaning different objects on different stores.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key is %d bytes, longer than %d", ErrInvalidKey, len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key %q is not valid UTF-8", ErrInvalidKey, key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("%w: key %q contains %U", ErrInvalidKey, key, r)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: key %q has an empty path segment", ErrInvalidKey, key)
		case ".", "..":
			return fmt.Errorf("%w: key %q has a %q path segment", ErrInvalidKey, key, seg)
		}
	}
	return nil
}

// ValidatePrefix reports whether prefix can be listed: valid UTF-8 of at
// most MaxKeyLen bytes. The empty prefix lists everything.
func ValidatePrefix(prefix string) error {
	if len(prefix) > MaxKeyLen || !utf8.ValidString(prefix) {
		return fmt.Errorf("%w: bad list prefix %q", ErrInvalidKey, prefix)
	}
	return nil
}

// CheckRange validates a ranged read of an object of the given size and
// returns the exclusive end of the bytes to return. Backends call it so that
// every store answers edge cases the same way.
func CheckRange(key string, off, length, size int64) (end int64, err error) {
	if off < 0 || length < 0 {
		return 0, fmt.Errorf("%w: %s: offset %d length %d", ErrInvalidRange, key, off, length)
	}
	if off > size || (off == size && length > 0) {
		return 0, fmt.Errorf("%w: %s: offset %d is past the end of a %d-byte object", ErrInvalidRange, key, off, size)
	}
	return off + min(length, size-off), nil
}

// NotExist returns an error for a missing key that wraps ErrNotExist.
func NotExist(key string) error {
	return fmt.Errorf("%w: %s", ErrNotExist, key)
}

// ContextError returns a non-nil error wrapping ctx.Err() once ctx is done.
// Backends check it before starting work so a cancelled call has no effect.
func ContextError(ctx context.Context, op, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	return nil
}

// ListError returns a sequence that yields only err.
func ListError(err error) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) { yield(ObjectInfo{}, err) }
}

// RetryableStatus reports whether an HTTP status from an object store means
// "try again later": throttling, timeouts and server-side failures.
func RetryableStatus(code int) bool {
	switch code {
	case 408, 429, 500, 502, 503, 504:
		return true
	}
	return false
}

// NetworkError reports whether err is a connection-level failure (refused,
// reset, broken pipe, timeout, a response cut short) that a retry may cure.
// A cancelled or expired context is never a network error.
func NetworkError(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// Close releases what the store holds (a directory handle, connections) if
// it holds anything.
func Close(s Store) error {
	if c, ok := s.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// PrepareRange serves backends whose ranged reads are HTTP Range requests,
// which cannot express a zero-length range. It rejects a negative offset or
// length; for a zero-length range it checks with s.Stat that the object
// exists and off lies within it, and reports done (the answer is no
// bytes); otherwise it returns the inclusive last byte to request, which
// never overflows.
func PrepareRange(ctx context.Context, s Store, key string, off, length int64) (last int64, done bool, err error) {
	if _, err := CheckRange(key, off, length, math.MaxInt64); err != nil {
		return 0, false, err
	}
	if length == 0 {
		info, err := s.Stat(ctx, key)
		if err != nil {
			return 0, false, err
		}
		_, err = CheckRange(key, off, 0, info.Size)
		return 0, err == nil, err
	}
	return off + min(length, math.MaxInt64-off) - 1, false, nil
}
