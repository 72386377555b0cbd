package client

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"
)

// How long the client keeps trying when the server cannot be reached.
const (
	// DefaultConnectTimeout bounds one connection attempt (the dial) of
	// the client's own transport, and how long a client that has never
	// had an answer from the server keeps retrying before it returns an
	// *UnreachableError.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultRetryTimeout bounds how long the consumers' iterators and
	// background fetches keep retrying a failure that looks transient
	// (IsRetryable), once the client has had an answer from the server:
	// after that the error is returned (yielded) instead.
	DefaultRetryTimeout = time.Minute
)

// ErrUnreachable is matched (errors.Is) by the error of a request that
// could not connect to the server: connection refused, no such host, or
// no connection within the connect timeout. The error is an
// *UnreachableError.
var ErrUnreachable = errors.New("server unreachable")

// UnreachableError is a request that could not connect to the server.
// Its message names the URL and the cause in one line, such as
// "cannot reach http://127.0.0.1:8080: connection refused".
type UnreachableError struct {
	// URL is the client's URL.
	URL string
	// Err is the connection error.
	Err error
}

func (e *UnreachableError) Error() string {
	return "cannot reach " + e.URL + ": " + dialCause(e.Err)
}

// Unwrap returns ErrUnreachable and the connection error.
func (e *UnreachableError) Unwrap() []error { return []error{ErrUnreachable, e.Err} }

// WithConnectTimeout bounds each connection attempt of the client's own
// transport (with WithHTTPClient, that client's dialer decides), and how
// long a client that has never had an answer from the server retries
// before a call, iterator or producer returns an *UnreachableError. A
// wrong URL or a server that is down is then reported promptly. Default
// DefaultConnectTimeout.
func WithConnectTimeout(d time.Duration) Opt {
	return func(c *clientConfig) { c.connectTimeout = positive(&c.errs, "WithConnectTimeout", d) }
}

// WithRetryTimeout bounds how long PartitionConsumer.Records,
// GroupConsumer.Records and a group consumer's background fetches keep
// retrying transient failures (IsRetryable) once the client has had an
// answer from the server: a run of failures longer than d ends the
// iteration with the last error. Every retry is logged at warn level
// (WithLogger). The producer is bounded by its delivery timeout instead,
// and single requests by WithRetries. Default DefaultRetryTimeout.
func WithRetryTimeout(d time.Duration) Opt {
	return func(c *clientConfig) { c.retryTimeout = positive(&c.errs, "WithRetryTimeout", d) }
}

// positive returns d, first adding an error naming opt to errs when d is
// not positive.
func positive(errs *[]error, opt string, d time.Duration) time.Duration {
	if d <= 0 {
		*errs = append(*errs, fmt.Errorf("%s: %v is not positive", opt, d))
	}
	return d
}

// retryLeft is how long a run of failures that began at since, the last
// of them err, may still be retried: the connect timeout while the client
// has never had an answer and err says the server cannot be reached (a
// server that was reached but is slow gets the usual bound), else limit
// (the retry timeout, or a caller's own bound).
func (c *Client) retryLeft(err error, since time.Time, limit time.Duration) time.Duration {
	if c.neverReached(err) {
		limit = c.connectTimeout
	}
	return limit - time.Since(since)
}

// neverReached reports whether err says the server cannot be reached and
// the client has never had an answer from it.
func (c *Client) neverReached(err error) bool {
	return !c.reached.Load() && errors.Is(err, ErrUnreachable)
}

// keepRetrying says whether err, from a run of failures that began at
// since, is worth another attempt after wait: it is retryable and the
// run stays within the client's retry timeout (connect timeout while the
// server was never reached).
func (c *Client) keepRetrying(err error, since time.Time, wait time.Duration) bool {
	return IsRetryable(err) && c.retryLeft(err, since, c.retryTimeout) > wait
}

// exhausted marks err, a retryable error from a run of failures that
// began at since, as one the SDK stopped retrying: IsRetryable is false
// for it, so that callers do not retry it again unchanged. Other errors
// are returned as they are.
func exhausted(err error, since time.Time) error {
	if !IsRetryable(err) {
		return err
	}
	return &retriesExhausted{err: err, d: time.Since(since)}
}

// retriesExhausted is a retryable error that was retried for d.
type retriesExhausted struct {
	err error
	d   time.Duration
}

func (e *retriesExhausted) Error() string {
	return fmt.Sprintf("%v (retried for %v)", e.err, e.d.Round(time.Millisecond))
}
func (e *retriesExhausted) Unwrap() error { return e.err }

// asUnreachable wraps err in an *UnreachableError when it is a failure
// to connect, and returns it unchanged otherwise.
func (c *Client) asUnreachable(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return &UnreachableError{URL: c.base, Err: err}
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return &UnreachableError{URL: c.base, Err: err}
	}
	return err
}

// dialCause is the short cause of a connection error: "connection
// refused" rather than the whole "Get ...: dial tcp ...: connect:
// connection refused".
func dialCause(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "no connection within the connect timeout"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// newTransport is the client's own transport: enough idle connections per
// host for several batches and long-polls in flight, and dials bounded by
// the connect timeout.
func newTransport(connectTimeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Producers keep several batches in flight and group consumers a
	// long-poll per partition, all to the same host.
	t.MaxIdleConnsPerHost = 256
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	t.DialContext = d.DialContext
	return t
}
