// Package mambaprom exports the Go SDK's activity as Prometheus metrics:
// a client.Hook that counts and times requests, produce batches and
// fetches.
//
//	m, err := mambaprom.New(prometheus.DefaultRegisterer)
//	c, err := client.New(url, client.WithHooks(m))
//
// Labels are bounded: the request's method, route ("/v1/topics/{topic}")
// and status, and the topic of batches and fetches; never a partition,
// key or member.
package mambaprom

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mambamq/mamba/client"
)

// Metrics is a client.Hook that records what a client does. One Metrics
// may serve several clients; it is safe for concurrent use.
type Metrics struct {
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	batches         *prometheus.CounterVec
	batchRecords    *prometheus.CounterVec
	batchBytes      *prometheus.CounterVec
	batchDuration   *prometheus.HistogramVec
	fetches         *prometheus.CounterVec
	fetchRecords    *prometheus.CounterVec
	fetchBytes      *prometheus.CounterVec
	fetchDuration   *prometheus.HistogramVec
}

var (
	_ client.RequestHook      = (*Metrics)(nil)
	_ client.ProduceBatchHook = (*Metrics)(nil)
	_ client.FetchHook        = (*Metrics)(nil)
)

// New returns metrics registered on reg. It fails if reg already holds
// metrics of these names (from another Metrics, say): share one Metrics
// between clients instead.
func New(reg prometheus.Registerer) (*Metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mamba_client", Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "mamba_client", Name: name, Help: help, Buckets: buckets}, labels)
	}
	// Requests and batches take from a millisecond (ack=buffered, reads
	// from cache) to the delivery timeout; fetches include long-polls.
	latency := prometheus.ExponentialBuckets(0.001, 2, 16) // 1 ms to 33 s
	m := &Metrics{
		requests:        counter("requests_total", "HTTP attempts, retries included, by method, route and status (0 when no answer came).", "method", "route", "status"),
		requestDuration: histogram("request_duration_seconds", "Duration of HTTP attempts, by method and route.", latency, "method", "route"),
		batches:         counter("produce_batches_total", "Produce batches by topic and result (ok or error).", "topic", "result"),
		batchRecords:    counter("produce_records_total", "Records in produce batches, by topic and result.", "topic", "result"),
		batchBytes:      counter("produce_bytes_total", "Keys, values and headers in produce batches, by topic and result.", "topic", "result"),
		batchDuration:   histogram("produce_batch_duration_seconds", "Time from a batch's first attempt to its outcome, retries included, by topic.", latency, "topic"),
		fetches:         counter("fetches_total", "Fetches of one partition, by topic and result (ok or error).", "topic", "result"),
		fetchRecords:    counter("fetch_records_total", "Records fetched, by topic.", "topic"),
		fetchBytes:      counter("fetch_bytes_total", "Keys, values and headers fetched, by topic.", "topic"),
		fetchDuration:   histogram("fetch_duration_seconds", "Duration of fetches, long-poll waits and retries included, by topic.", latency, "topic"),
	}
	var errs []error
	for _, c := range []prometheus.Collector{
		m.requests, m.requestDuration, m.batches, m.batchRecords, m.batchBytes, m.batchDuration,
		m.fetches, m.fetchRecords, m.fetchBytes, m.fetchDuration,
	} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// OnRequest implements client.RequestHook.
func (m *Metrics) OnRequest(i client.RequestInfo) {
	m.requests.WithLabelValues(i.Method, i.Route, strconv.Itoa(i.Status)).Inc()
	m.requestDuration.WithLabelValues(i.Method, i.Route).Observe(i.Duration.Seconds())
}

// OnProduceBatch implements client.ProduceBatchHook.
func (m *Metrics) OnProduceBatch(i client.ProduceBatchInfo) {
	r := result(i.Err)
	m.batches.WithLabelValues(i.Topic, r).Inc()
	m.batchRecords.WithLabelValues(i.Topic, r).Add(float64(i.Records))
	m.batchBytes.WithLabelValues(i.Topic, r).Add(float64(i.Bytes))
	m.batchDuration.WithLabelValues(i.Topic).Observe(i.Duration.Seconds())
}

// OnFetch implements client.FetchHook.
func (m *Metrics) OnFetch(i client.FetchInfo) {
	m.fetches.WithLabelValues(i.Topic, result(i.Err)).Inc()
	m.fetchRecords.WithLabelValues(i.Topic).Add(float64(i.Records))
	m.fetchBytes.WithLabelValues(i.Topic).Add(float64(i.Bytes))
	m.fetchDuration.WithLabelValues(i.Topic).Observe(i.Duration.Seconds())
}
