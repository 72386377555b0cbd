package client

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Hook observes what a client does, for metrics and tracing. A hook is
// any value implementing one or more of RequestHook, ProduceBatchHook
// and FetchHook; WithHooks refuses one that implements none. Hooks are
// called synchronously, from several goroutines at once, after the event
// they report: they must be safe for concurrent use and quick.
type Hook any

// RequestHook is called after every HTTP attempt, retries included, with
// its outcome.
type RequestHook interface {
	OnRequest(RequestInfo)
}

// ProduceBatchHook is called once per produce batch (one request, with
// its retries), when its records are acknowledged or have failed.
type ProduceBatchHook interface {
	OnProduceBatch(ProduceBatchInfo)
}

// FetchHook is called once per fetch of one partition (by a partition or
// group consumer), with its retries, when it has answered or failed.
type FetchHook interface {
	OnFetch(FetchInfo)
}

// RequestInfo describes one HTTP attempt.
type RequestInfo struct {
	// Method is the HTTP method.
	Method string
	// Path is the escaped request path, "/v1/topics/orders/records".
	Path string
	// Route is Path with names and numbers replaced by their parameter,
	// "/v1/topics/{topic}/records": a label of bounded cardinality.
	Route string
	// Status is the HTTP status of the answer, or 0 when none came.
	Status int
	// Duration is from the start of the attempt to its answer read.
	Duration time.Duration
	// Err is the attempt's error (an *APIError for error answers), nil
	// on success.
	Err error
	// RequestID is the id the node gave the attempt (its X-Request-Id
	// header), for finding it in the node's log; empty when no answer
	// came from a node.
	RequestID string
}

// ProduceBatchInfo describes one produce batch: records of one topic sent
// in one request with one Idempotency-Key.
type ProduceBatchInfo struct {
	Topic string
	// Records is the number of records in the batch.
	Records int
	// Bytes is the batch's keys, values and headers.
	Bytes int64
	// Attempts is how many times the request was sent.
	Attempts int
	// Duration is from the first attempt to the outcome, retries and
	// backoff included.
	Duration time.Duration
	// Err is nil when the records were acknowledged.
	Err error
}

// FetchInfo describes one fetch of one partition.
type FetchInfo struct {
	Topic     string
	Partition int32
	// Offset is where the fetch started.
	Offset int64
	// Records is the number of records returned.
	Records int
	// Bytes is the returned records' keys, values and headers.
	Bytes int64
	// Duration includes the long-poll wait and retries.
	Duration time.Duration
	// Err is nil on success.
	Err error
}

// WithHooks adds hooks that observe the client's requests, produce
// batches and fetches (see Hook). It may be given several times; hooks
// are called in the order given.
func WithHooks(hs ...Hook) Opt {
	return func(c *clientConfig) {
		for i, h := range hs {
			r, okR := h.(RequestHook)
			p, okP := h.(ProduceBatchHook)
			f, okF := h.(FetchHook)
			if !okR && !okP && !okF {
				c.errs = append(c.errs, fmt.Errorf("WithHooks: hook %d (%T) implements none of RequestHook, ProduceBatchHook, FetchHook", i, h))
				continue
			}
			if okR {
				c.observe.request = append(c.observe.request, r)
			}
			if okP {
				c.observe.produce = append(c.observe.produce, p)
			}
			if okF {
				c.observe.fetch = append(c.observe.fetch, f)
			}
		}
	}
}

// observers are a client's hooks, by kind.
type observers struct {
	request []RequestHook
	produce []ProduceBatchHook
	fetch   []FetchHook
}

// requested reports one attempt of r, begun at start, to the request
// hooks; resp and err are the attempt's results.
func (o *observers) requested(r *request, start time.Time, resp **response, err *error) {
	info := RequestInfo{Method: r.method, Path: r.path, Route: route(r.path), Duration: time.Since(start), Err: *err}
	if *resp != nil {
		info.Status, info.RequestID = (*resp).status, (*resp).header.Get("X-Request-Id")
	} else if ae, ok := errors.AsType[*APIError](*err); ok {
		info.Status, info.RequestID = ae.Status, ae.RequestID
	}
	for _, h := range o.request {
		h.OnRequest(info)
	}
}

// produced reports a produce batch to the produce hooks.
func (o *observers) produced(b *batch, attempts int, start time.Time, err error) {
	info := ProduceBatchInfo{
		Topic:    b.topic.name,
		Records:  len(b.recs),
		Bytes:    b.bytes - recordOverhead*int64(len(b.recs)),
		Attempts: attempts,
		Duration: time.Since(start),
		Err:      err,
	}
	for _, h := range o.produce {
		h.OnProduceBatch(info)
	}
}

// fetched reports a fetch to the fetch hooks.
func (o *observers) fetched(topic string, partition int32, offset int64, start time.Time, out *fetchResult, err *error) {
	info := FetchInfo{Topic: topic, Partition: partition, Offset: offset, Duration: time.Since(start), Err: *err}
	if *err == nil {
		info.Records = len(out.records)
		for i := range out.records {
			r := &out.records[i]
			info.Bytes += int64(len(r.Key) + len(r.Value))
			for _, h := range r.Headers {
				info.Bytes += int64(len(h.Name) + len(h.Value))
			}
		}
	}
	for _, h := range o.fetch {
		h.OnFetch(info)
	}
}

// routeParams name the path segment that follows each collection.
var routeParams = map[string]string{
	"topics":     "{topic}",
	"partitions": "{partition}",
	"groups":     "{group}",
	"members":    "{member}",
}

// route replaces the names in an API path by their parameters:
// "/v1/topics/orders/partitions/3/records" becomes
// "/v1/topics/{topic}/partitions/{partition}/records".
func route(path string) string {
	segs := strings.Split(path, "/")
	for i := 1; i < len(segs); i++ {
		if p, ok := routeParams[segs[i-1]]; ok && segs[i] != "" {
			segs[i] = p
		}
	}
	return strings.Join(segs, "/")
}
