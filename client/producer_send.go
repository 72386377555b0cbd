// Sending one batch: its request body (binary or JSON), its attempts with
// one Idempotency-Key, and settling its futures with the answer.

package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mambamq/mamba/internal/wire"
)

// send delivers b, retrying until it is acknowledged, fails for good or
// runs out of time, then settles its futures.
func (p *Producer) send(b *batch) {
	defer p.workers.Done()
	body, ctype := p.encode(b)
	key := p.id + ":" + strconv.FormatUint(p.batchSeq.Add(1), 10)
	var results []Result
	var err, lastErr error
	start, attempt := time.Now(), 1
	for ; ; attempt++ {
		ctx, cancel := context.WithDeadline(p.sendCtx, b.deadline)
		results, err = p.produceOnce(ctx, b, body, ctype, key)
		expired := ctx.Err() == context.DeadlineExceeded
		cancel()
		if err == nil {
			break
		}
		if cause := context.Cause(p.sendCtx); cause != nil {
			err = cause
			break
		}
		if expired {
			// The delivery timeout ended this attempt; the error of the
			// one before says more.
			if lastErr != nil {
				err = lastErr
			}
			err = fmt.Errorf("%w after %d attempts: %w", ErrDeliveryTimeout, attempt, err)
			break
		}
		if !IsRetryable(err) || p.cfg.maxAttempts > 0 && attempt >= p.cfg.maxAttempts {
			break
		}
		lastErr = err
		wait := p.c.retry.delay(attempt, err)
		if p.c.neverReached(err) && p.c.retryLeft(err, start, 0) <= wait {
			// The server was never reached: say so now rather than at
			// the delivery timeout.
			err = exhausted(err, start)
			break
		}
		if !time.Now().Add(wait).Before(b.deadline) {
			err = fmt.Errorf("%w after %d attempts: %w", ErrDeliveryTimeout, attempt, err)
			break
		}
		p.log.Warn("mamba: retrying produce", "topic", b.topic.name, "records", len(b.recs), "idempotency_key", key, "attempt", attempt, "backoff", wait, "err", err)
		if sleep(p.sendCtx, wait) != nil {
			err = context.Cause(p.sendCtx)
			break
		}
	}
	if err != nil {
		err = fmt.Errorf("produce to %s: %w", b.topic.name, err)
	}
	if len(p.c.observe.produce) > 0 {
		p.c.observe.produced(b, attempt, start, err)
	}
	p.complete(b, results, err)
}

// complete settles b's futures and frees its partitions.
func (p *Producer) complete(b *batch, results []Result, err error) {
	var failed, acked []*Future
	p.mu.Lock()
	for _, q := range b.parts {
		q.busy = false
	}
	p.inflight--
	if err != nil && (errors.Is(err, ErrTopicNotFound) || errors.Is(err, ErrInvalidRequest) || errors.Is(err, ErrPartitionNotFound)) {
		// The topic may have been deleted or recreated: records produced
		// from now on wait for its partition count again.
		b.topic.partitions = 0
	}
	for i, f := range b.recs {
		if err != nil {
			if p.resolveLocked(f, Result{}, err) {
				failed = append(failed, f)
			}
			continue
		}
		if p.resolveLocked(f, results[i], nil); !f.sync && p.cfg.onAck != nil {
			acked = append(acked, f)
		}
	}
	p.wakeLocked()
	p.mu.Unlock()
	p.report(failed)
	p.reportAcked(acked)
}

// encode builds b's request body once; retries send the same bytes.
func (p *Producer) encode(b *batch) ([]byte, string) {
	if p.cfg.json {
		type jsonRecord struct {
			Key       *string           `json:"key"`
			Value     string            `json:"value"`
			Headers   []wire.JSONHeader `json:"headers,omitempty"`
			Partition int32             `json:"partition"`
			Timestamp int64             `json:"timestamp,omitempty"`
		}
		recs := make([]jsonRecord, len(b.recs))
		for i, f := range b.recs {
			// Always base64 (the request says format=base64), so that any
			// bytes go through JSON unchanged; headers as a list keep their
			// order and repeated names.
			enc, _ := wire.JSONBytes(true, f.rec.Key, f.rec.Value, f.rec.Headers)
			r := jsonRecord{Value: enc(f.rec.Value), Partition: f.partition, Timestamp: millis(f.rec.Timestamp)}
			if f.rec.Key != nil {
				k := enc(f.rec.Key)
				r.Key = &k
			}
			if len(f.rec.Headers) > 0 {
				r.Headers = wire.JSONHeaders(f.rec.Headers, enc)
			}
			recs[i] = r
		}
		body, err := json.Marshal(struct {
			Records []jsonRecord `json:"records"`
		}{recs})
		if err != nil {
			// Only strings and numbers: this cannot fail.
			panic(fmt.Sprintf("encode produce request: %v", err))
		}
		return body, "application/json"
	}
	// b.bytes counts recordOverhead per record, more than its framing.
	body := wire.AppendProduceRequestStart(make([]byte, 0, b.bytes+16), len(b.recs))
	var hs []wire.Header // reused: AppendProduceRecord copies
	for _, f := range b.recs {
		r := wire.ProduceRecord{Partition: f.partition, Timestamp: millis(f.rec.Timestamp), Key: f.rec.Key, Value: f.rec.Value}
		if len(f.rec.Headers) > 0 {
			hs = hs[:0]
			for _, h := range f.rec.Headers {
				hs = append(hs, wire.Header{Name: h.Name, Value: h.Value})
			}
			r.Headers = hs
		}
		body = wire.AppendProduceRecord(body, &r)
	}
	return body, wire.ContentType
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// produceOnce makes one attempt of b's request.
func (p *Producer) produceOnce(ctx context.Context, b *batch, body []byte, ctype, key string) ([]Result, error) {
	q := url.Values{}
	if p.cfg.ackBuffered {
		q.Set("ack", "buffered")
	}
	if p.cfg.json {
		q.Set("format", "base64")
	}
	r := &request{
		method:      http.MethodPost,
		path:        apiPath("v1", "topics", b.topic.name, "records"),
		query:       q,
		body:        body,
		contentType: ctype,
		accept:      wire.ContentType + ", application/json;q=0.5",
		header:      http.Header{"Idempotency-Key": {key}},
	}
	if p.cfg.json {
		r.accept = "application/json"
	}
	resp, err := p.c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	var parts []int32
	var offsets []int64
	mt, _, _ := mime.ParseMediaType(resp.header.Get("Content-Type"))
	switch mt {
	case wire.ContentType:
		rs, err := wire.DecodeProduceResponse(resp.body)
		if err != nil {
			return nil, fmt.Errorf("decode produce answer: %w", err)
		}
		for _, r := range rs {
			parts = append(parts, r.Partition)
			offsets = append(offsets, r.Offset)
		}
	case "application/json":
		var out struct {
			Records []struct {
				Partition int32 `json:"partition"`
				Offset    int64 `json:"offset"`
			} `json:"records"`
		}
		if err := decodeJSON(resp, &out); err != nil {
			return nil, fmt.Errorf("decode produce answer: %w", err)
		}
		for _, r := range out.Records {
			parts = append(parts, r.Partition)
			offsets = append(offsets, r.Offset)
		}
	default:
		return nil, fmt.Errorf("produce answer has Content-Type %q", resp.header.Get("Content-Type"))
	}
	if len(parts) != len(b.recs) {
		return nil, fmt.Errorf("produce answer has %d results for %d records", len(parts), len(b.recs))
	}
	results := make([]Result, len(parts))
	for i := range parts {
		results[i] = Result{Topic: b.topic.name, Partition: parts[i], Offset: offsets[i]}
	}
	return results, nil
}
