package bucket

import (
	"context"
	"errors"
	"iter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mambamq/mamba/internal/metrics"
	"github.com/mambamq/mamba/objectstore"
)

// Operation label values of the object-store metrics.
const (
	OpGet               = "get"
	OpGetRange          = "get_range"
	OpPut               = "put"
	OpStat              = "stat"
	OpDelete            = "delete"
	OpList              = "list"
	OpReplicationStatus = "replication_status"
)

// Result label values of mamba_objectstore_requests_total.
const (
	ResultOK       = "ok"
	ResultNotFound = "not_found"
	ResultError    = "error"
)

// storeMetrics are the collectors of Instrument. Registering equal ones on
// a registry that has them already reuses those, so every store
// instrumented on one registry adds to the same series.
type storeMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	read     *prometheus.CounterVec
	written  *prometheus.CounterVec
}

func newStoreMetrics(reg prometheus.Registerer) *storeMetrics {
	return &storeMetrics{
		requests: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamba_objectstore_requests_total",
			Help: "Object store requests by operation and result (ok, not_found or error).",
		}, []string{"op", "result"})),
		latency: metrics.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mamba_objectstore_request_seconds",
			Help: "Object store request latency by operation; for list, the time spent listing, not the caller's time between items.",
			// 1ms .. 32s
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"op"})),
		read: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamba_objectstore_read_bytes_total",
			Help: "Object bytes read from the object store by operation.",
		}, []string{"op"})),
		written: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamba_objectstore_written_bytes_total",
			Help: "Object bytes written to the object store by operation.",
		}, []string{"op"})),
	}
}

// Instrumented is a Store that measures every call to the store it wraps.
// It keeps the wrapped store's semantics exactly: same results, same
// errors.
type Instrumented struct {
	store objectstore.Store
	m     *storeMetrics
}

var (
	_ objectstore.Store               = (*Instrumented)(nil)
	_ objectstore.ReplicationReporter = (*Instrumented)(nil)
)

// Instrument returns store wrapped so that every call is counted and
// timed on reg (nil registers nothing). A store that is instrumented
// already is returned as it is, its metrics where its opener registered
// them: components that take a store (ingest, the checkpointer) call
// Instrument on it, so their calls are measured whoever built the store,
// and a store wrapped where it is opened is not counted twice.
func Instrument(store objectstore.Store, reg prometheus.Registerer) *Instrumented {
	if s, ok := store.(*Instrumented); ok {
		return s
	}
	return &Instrumented{store: store, m: newStoreMetrics(reg)}
}

func (s *Instrumented) observe(op string, start time.Time, err error) {
	s.observeDuration(op, time.Since(start), err)
}

func (s *Instrumented) observeDuration(op string, d time.Duration, err error) {
	result := ResultOK
	switch {
	case errors.Is(err, objectstore.ErrNotExist):
		result = ResultNotFound
	case err != nil:
		result = ResultError
	}
	s.m.requests.WithLabelValues(op, result).Inc()
	s.m.latency.WithLabelValues(op).Observe(d.Seconds())
}

// Put implements objectstore.Store.
func (s *Instrumented) Put(ctx context.Context, key string, data []byte) error {
	start := time.Now()
	err := s.store.Put(ctx, key, data)
	s.observe(OpPut, start, err)
	if err == nil {
		s.m.written.WithLabelValues(OpPut).Add(float64(len(data)))
	}
	return err
}

// Get implements objectstore.Store.
func (s *Instrumented) Get(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	b, err := s.store.Get(ctx, key)
	s.observe(OpGet, start, err)
	s.m.read.WithLabelValues(OpGet).Add(float64(len(b)))
	return b, err
}

// GetRange implements objectstore.Store.
func (s *Instrumented) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	start := time.Now()
	b, err := s.store.GetRange(ctx, key, off, length)
	s.observe(OpGetRange, start, err)
	s.m.read.WithLabelValues(OpGetRange).Add(float64(len(b)))
	return b, err
}

// Stat implements objectstore.Store.
func (s *Instrumented) Stat(ctx context.Context, key string) (objectstore.ObjectInfo, error) {
	start := time.Now()
	info, err := s.store.Stat(ctx, key)
	s.observe(OpStat, start, err)
	return info, err
}

// Delete implements objectstore.Store.
func (s *Instrumented) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := s.store.Delete(ctx, key)
	s.observe(OpDelete, start, err)
	return err
}

// List implements objectstore.Store. One listing counts as one request
// however many pages the backend fetches; its latency is the time spent in
// the wrapped listing, not the caller's time between items.
func (s *Instrumented) List(ctx context.Context, prefix string) iter.Seq2[objectstore.ObjectInfo, error] {
	return s.ListAfter(ctx, prefix, "")
}

// ListAfter implements objectstore.ListerAfter, with the wrapped store's
// when it has one; it is measured as a list.
func (s *Instrumented) ListAfter(ctx context.Context, prefix, after string) iter.Seq2[objectstore.ObjectInfo, error] {
	return func(yield func(objectstore.ObjectInfo, error) bool) {
		var spent time.Duration
		var lastErr error
		start, stopped := time.Now(), false
		for info, err := range objectstore.ListAfter(ctx, s.store, prefix, after) {
			spent += time.Since(start)
			lastErr = err
			if !yield(info, err) {
				stopped = true
				break
			}
			start = time.Now()
		}
		if !stopped {
			spent += time.Since(start) // the call that found the end
		}
		s.observeDuration(OpList, spent, lastErr)
	}
}

// ReplicationStatus implements objectstore.ReplicationReporter when the
// wrapped store does; otherwise it fails with
// objectstore.ErrNoReplicationStatus, which objectstore.ReplicationStatus
// reports as "cannot tell".
func (s *Instrumented) ReplicationStatus(ctx context.Context, key string) (string, error) {
	start := time.Now()
	status, ok, err := objectstore.ReplicationStatus(ctx, s.store, key)
	if !ok {
		return "", objectstore.ErrNoReplicationStatus
	}
	s.observe(OpReplicationStatus, start, err)
	return status, err
}

// Close closes the wrapped store.
func (s *Instrumented) Close() error { return objectstore.Close(s.store) }
