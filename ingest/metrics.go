package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mambamq/mamba/internal/metrics"
)

// nodeMetrics are the node's Prometheus metrics, prefixed mamba_. The
// object-store metrics (mamba_objectstore_*) come from bucket.Instrument.
type nodeMetrics struct {
	recordsIn, bytesIn   prometheus.Counter
	recordsOut, bytesOut prometheus.Counter
	flushBytes           prometheus.Histogram
	flushRecords         prometheus.Histogram
	flushLatency         prometheus.Histogram
	commitLatency        prometheus.Histogram
	commitRetries        prometheus.Counter
	bufferedBytes        prometheus.Gauge
	cacheBytes           prometheus.GaugeFunc
	cacheRequests        *prometheus.CounterVec
	produceOutcomes      *prometheus.CounterVec
	// Catch-up reads: the catch-up cache, and the ranged GETs fetches make.
	catchUpRequests  *prometheus.CounterVec
	fetchGets        prometheus.Counter
	fetchGetBytes    prometheus.Counter
	readAheadBatches prometheus.Counter
	// groupsDeleted counts groups deleted through the API.
	groupsDeleted prometheus.Counter
	fetchGone     prometheus.Counter
	// Long-polls: fetches waiting at the high watermark, and those
	// refused over Config.MaxLongPolls.
	longPolls        prometheus.Gauge
	longPollsRefused prometheus.Counter
	// missedCommits counts the commit subscription's reports that
	// announcements may have been missed (a reconnect, or a second of a
	// stale subscription), each of which woke every long-poll.
	missedCommits prometheus.Counter
}

func newNodeMetrics(reg prometheus.Registerer, cache, catchUp *batchCache) *nodeMetrics {
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
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mamba_commit_seconds", Help: "Latency of committing one chunk's offsets in Redis (all its topics).",
			Buckets: latency}),
		commitRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "mamba_commit_retries_total", Help: "Commit attempts that failed and were retried."}),
		bufferedBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mamba_buffered_bytes", Help: "Memory held by records accepted and not yet acknowledged: their bytes and the structures holding them (--max-buffered-bytes bounds it)."}),
		cacheBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mamba_cache_bytes", Help: "Bytes in the batch cache."},
			func() float64 { return float64(cache.size()) }),
		cacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mamba_cache_requests_total", Help: "Batch cache lookups by result (hit or miss)."},
			[]string{"result"}),
		produceOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mamba_produce_requests_total", Help: "Produce requests by outcome."},
			[]string{"outcome"}),
		catchUpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mamba_catchup_cache_requests_total",
			Help: "Catch-up cache lookups (of batches not in the batch cache) by result (hit or miss)."}, []string{"result"}),
		fetchGets: prometheus.NewCounter(prometheus.CounterOpts{Name: "mamba_fetch_gets_total",
			Help: "Ranged GETs made by fetches (each may read several adjacent batches)."}),
		fetchGetBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "mamba_fetch_get_bytes_total",
			Help: "Bytes read by fetches' ranged GETs, gaps between merged batches included."}),
		readAheadBatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "mamba_fetch_read_ahead_batches_total",
			Help: "Batches read ahead of a catch-up fetch into the catch-up cache."}),
		groupsDeleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "mamba_groups_deleted_total",
			Help: "Consumer groups deleted through the API (DELETE /v1/groups/{group})."}),
		fetchGone: prometheus.NewCounter(prometheus.CounterOpts{Name: "mamba_fetch_trimmed_while_reading_total",
			Help: "Fetches answered offset_out_of_range because their chunk was trimmed and collected between lookup and read."}),
		longPolls: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mamba_fetch_long_polls",
			Help: "Fetches waiting at the high watermark for new records."}),
		longPollsRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "mamba_fetch_long_polls_shortened_total",
			Help: "Fetches that found --max-long-polls fetches already waiting, and answered after at most a second without being woken by commits."}),
		missedCommits: prometheus.NewCounter(prometheus.CounterOpts{Name: "mamba_commit_subscription_gaps_total",
			Help: "Times the commit subscription reconnected, or heard nothing (not even its own beat) for another second, so that commit announcements may have been missed; each woke every long-poll."}),
	}
	m.recordsIn = metrics.Register(reg, m.recordsIn)
	m.bytesIn = metrics.Register(reg, m.bytesIn)
	m.recordsOut = metrics.Register(reg, m.recordsOut)
	m.bytesOut = metrics.Register(reg, m.bytesOut)
	m.flushBytes = metrics.Register(reg, m.flushBytes)
	m.flushRecords = metrics.Register(reg, m.flushRecords)
	m.flushLatency = metrics.Register(reg, m.flushLatency)
	m.commitLatency = metrics.Register(reg, m.commitLatency)
	m.commitRetries = metrics.Register(reg, m.commitRetries)
	m.bufferedBytes = metrics.Register(reg, m.bufferedBytes)
	m.cacheRequests = metrics.Register(reg, m.cacheRequests)
	m.produceOutcomes = metrics.Register(reg, m.produceOutcomes)
	m.catchUpRequests = metrics.Register(reg, m.catchUpRequests)
	m.fetchGets = metrics.Register(reg, m.fetchGets)
	m.fetchGetBytes = metrics.Register(reg, m.fetchGetBytes)
	m.readAheadBatches = metrics.Register(reg, m.readAheadBatches)
	m.groupsDeleted = metrics.Register(reg, m.groupsDeleted)
	m.fetchGone = metrics.Register(reg, m.fetchGone)
	m.longPolls = metrics.Register(reg, m.longPolls)
	m.longPollsRefused = metrics.Register(reg, m.longPollsRefused)
	m.missedCommits = metrics.Register(reg, m.missedCommits)
	// The cache gauges read this node's caches: a second node on the same
	// registry keeps reporting the first node's (metrics.Register).
	metrics.RegisterAll(reg, m.cacheBytes,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mamba_cache_evictions_total",
			Help: "Batches evicted from the batch cache to make room."},
			func() float64 { return float64(cache.evicted()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mamba_catchup_cache_bytes", Help: "Bytes in the catch-up cache."},
			func() float64 { return float64(catchUp.size()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mamba_catchup_cache_limit_bytes", Help: "The catch-up cache's byte budget."},
			func() float64 { return float64(catchUp.maxBytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mamba_catchup_cache_evictions_total",
			Help: "Batches evicted from the catch-up cache to make room."},
			func() float64 { return float64(catchUp.evicted()) }))
	return m
}
