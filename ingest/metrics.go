package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// nodeMetrics are the node's Prometheus metrics, prefixed mamba_.
type nodeMetrics struct {
	recordsIn, bytesIn   prometheus.Counter
	recordsOut, bytesOut prometheus.Counter
	flushBytes           prometheus.Histogram
	flushRecords         prometheus.Histogram
	flushLatency         prometheus.Histogram
	storeRequests        *prometheus.CounterVec
	storeLatency         *prometheus.HistogramVec
	commitLatency        prometheus.Histogram
	commitRetries        prometheus.Counter
	bufferedBytes        prometheus.Gauge
	cacheBytes           prometheus.GaugeFunc
	cacheRequests        *prometheus.CounterVec
	produceOutcomes      *prometheus.CounterVec
}

func newNodeMetrics(reg prometheus.Registerer, cache *batchCache) *nodeMetrics {
	latency := prometheus.ExponentialBuckets(0.001, 2, 16) // 1ms .. 32s
	m := &nodeMetrics{
		recordsIn:  prometheus.NewCounter(prometheus.CounterOpts{Name: "mamba_records_in_total", Help: "Records acknowledged to producers."}),
		bytesIn:    prometheus.NewCounter(prometheus.CounterOpts{Name: "mamba_bytes_in_total", Help: "Record bytes (key, value, headers) acknowledged to producers."}),
		recordsOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "mamba_records_out_total", Help: "Records returned to consumers."}),
		bytesOut:   prometheus.NewCounter(prometheus.CounterOpts{Name: "mamba_bytes_out_total", Help: "Record bytes returned to consumers."}),
		flushBytes: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mamba_flush_bytes", Help: "Size of each chunk uploaded.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10)}),
		flushRecords: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mamba_flush_records", Help: "Records in each chunk uploaded.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 12)}),
		flushLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mamba_flush_seconds", Help: "Time from sealing a chunk to answering its producers.",
			Buckets: latency}),
		storeRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mamba_objectstore_requests_total", Help: "Object store requests by operation and result."},
			[]string{"op", "result"}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mamba_objectstore_request_seconds", Help: "Object store request latency by operation.",
			Buckets: latency}, []string{"op"}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mamba_commit_seconds", Help: "Latency of committing one chunk's offsets in Redis (all its topics).",
			Buckets: latency}),
		commitRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "mamba_commit_retries_total", Help: "Commit attempts that failed and were retried."}),
		bufferedBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mamba_buffered_bytes", Help: "Bytes accepted and not yet acknowledged."}),
		cacheBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mamba_cache_bytes", Help: "Bytes in the batch cache."},
			func() float64 { return float64(cache.size()) }),
		cacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mamba_cache_requests_total", Help: "Batch cache lookups by result (hit or miss)."},
			[]string{"result"}),
		produceOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mamba_produce_requests_total", Help: "Produce requests by outcome."},
			[]string{"outcome"}),
	}
	reg.MustRegister(m.recordsIn, m.bytesIn, m.recordsOut, m.bytesOut, m.flushBytes, m.flushRecords, m.flushLatency,
		m.storeRequests, m.storeLatency, m.commitLatency, m.commitRetries, m.bufferedBytes, m.cacheBytes, m.cacheRequests,
		m.produceOutcomes)
	return m
}
