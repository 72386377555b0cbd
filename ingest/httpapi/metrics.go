package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mambamq/mamba/internal/metrics"
)

// httpMetrics are the HTTP metrics, all named mamba_http_*. Labels: route
// is the path pattern ("/v1/topics/{topic}/records", or "unmatched"),
// method is the request method (or "other"), status the HTTP status and
// code the error code (empty on success).
type httpMetrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	requestBytes  *prometheus.CounterVec
	responseBytes *prometheus.CounterVec
	// quotaRefusals counts 429 quota_exceeded answers by quota: one
	// label value per quota, never per token, so that it has five
	// series however many tokens there are.
	quotaRefusals *prometheus.CounterVec
}

// newHTTPMetrics registers the metrics on reg (nil: nowhere). Handlers
// that share a registry share the metrics (metrics.Register reuses an
// equal collector).
func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamba_http_requests_total",
			Help: "HTTP requests by route pattern, method, status and error code (empty on success).",
		}, []string{"route", "method", "status", "code"})),
		duration: metrics.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mamba_http_request_duration_seconds",
			Help: "Time from receiving an HTTP request to answering it, by route pattern; fetches include their long-poll wait.",
			// From a cached fetch to a long-poll at the 30 s default cap.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route"})),
		requestBytes: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamba_http_request_bytes_total",
			Help: "HTTP request body bytes read, by route pattern.",
		}, []string{"route"})),
		responseBytes: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamba_http_response_bytes_total",
			Help: "HTTP response body bytes written, by route pattern.",
		}, []string{"route"})),
		quotaRefusals: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mamba_http_quota_refusals_total",
			Help: "Requests answered 429 quota_exceeded, by the quota they were over (produce_bytes, produce_requests, fetch_bytes, long_polls, idempotency_keys).",
		}, []string{"quota"})),
	}
	for _, name := range quotaNames {
		m.quotaRefusals.WithLabelValues(name)
	}
	return m
}

func (m *httpMetrics) observe(route, method string, status int, code string, d time.Duration, in, out int64) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
	default:
		method = "other"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status), code).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
	m.requestBytes.WithLabelValues(route).Add(float64(in))
	m.responseBytes.WithLabelValues(route).Add(float64(out))
}
