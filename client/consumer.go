package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mambamq/mamba/internal/wire"
)

// Start offsets of NewPartitionConsumer and SetPosition, resolved with
// DescribeTopic when the consumer first fetches.
const (
	// OffsetOldest starts at the partition's log start offset, the
	// oldest record still kept.
	OffsetOldest int64 = -2
	// OffsetNewest starts at the partition's high watermark: only records
	// produced from then on are read.
	OffsetNewest int64 = -1
)

// DefaultMaxWait is how long a fetch waits at the end of a partition for
// new records (the long-poll).
const DefaultMaxWait = 10 * time.Second

// GroupOpt configures a GroupConsumer. Every ConsumerOpt is a GroupOpt
// too.
type GroupOpt interface {
	applyGroup(*groupConfig)
}

// ConsumerOpt configures how a PartitionConsumer or a GroupConsumer
// fetches.
type ConsumerOpt interface {
	GroupOpt
	applyFetch(*fetchConfig)
}

type fetchConfig struct {
	maxWait    time.Duration
	maxRecords int
	maxBytes   int
	errs       []error
}

type fetchOpt func(*fetchConfig)

func (o fetchOpt) applyFetch(c *fetchConfig) { o(c) }
func (o fetchOpt) applyGroup(c *groupConfig) { o(&c.fetch) }

// WithMaxWait sets how long a fetch waits for new records at the end of
// a partition before returning none (capped by the node at 30 s by
// default). Zero returns at once. Default DefaultMaxWait.
func WithMaxWait(d time.Duration) ConsumerOpt {
	return fetchOpt(func(c *fetchConfig) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("WithMaxWait: %v is negative", d))
		}
		c.maxWait = d
	})
}

// WithMaxRecords bounds the records one fetch returns. The node's
// default, 1,000, applies when it is not set; the node caps it at 10,000.
func WithMaxRecords(n int) ConsumerOpt {
	return fetchOpt(func(c *fetchConfig) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithMaxRecords: %d is below 1", n))
		}
		c.maxRecords = n
	})
}

// WithMaxBytes bounds the bytes of records (keys, values and headers)
// one fetch returns per partition, except that a record is always
// returned when one is available, however large. The node's default,
// 1 MiB, applies when it is not set; the node caps it at 32 MiB.
func WithMaxBytes(n int) ConsumerOpt {
	return fetchOpt(func(c *fetchConfig) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithMaxBytes: %d is below 1", n))
		}
		c.maxBytes = n
	})
}

func defaultFetchConfig() fetchConfig {
	return fetchConfig{maxWait: DefaultMaxWait}
}

// fetchResult is one fetch's answer.
type fetchResult struct {
	records        []ConsumedRecord
	nextOffset     int64
	highWatermark  int64
	logStartOffset int64
}

// fetch reads records of one partition from offset on, long-polling for
// up to cfg.maxWait at the end of the partition.
func (c *Client) fetch(ctx context.Context, topic string, partition int32, offset int64, cfg fetchConfig) (result fetchResult, failure error) {
	if len(c.observe.fetch) > 0 {
		defer c.observe.fetched(topic, partition, offset, time.Now(), &result, &failure)
	}
	q := url.Values{
		"offset":  {strconv.FormatInt(offset, 10)},
		"wait_ms": {strconv.FormatInt(cfg.maxWait.Milliseconds(), 10)},
	}
	if cfg.maxRecords > 0 {
		q.Set("max_records", strconv.Itoa(cfg.maxRecords))
	}
	if cfg.maxBytes > 0 {
		q.Set("max_bytes", strconv.Itoa(cfg.maxBytes))
	}
	resp, err := c.do(ctx, &request{
		method:       http.MethodGet,
		path:         apiPath("v1", "topics", topic, "partitions", strconv.Itoa(int(partition)), "records"),
		query:        q,
		accept:       wire.ContentType,
		idempotent:   true,
		extraTimeout: cfg.maxWait,
	})
	if err != nil {
		return fetchResult{}, fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, offset, err)
	}
	if mt, _, _ := mime.ParseMediaType(resp.header.Get("Content-Type")); mt != wire.ContentType {
		return fetchResult{}, fmt.Errorf("fetch %s/%d at %d: answer has Content-Type %q, want %s", topic, partition, offset, resp.header.Get("Content-Type"), wire.ContentType)
	}
	fr, err := wire.DecodeFetchResponse(resp.body)
	if err != nil {
		return fetchResult{}, fmt.Errorf("fetch %s/%d at %d: %w", topic, partition, offset, err)
	}
	out := fetchResult{nextOffset: fr.NextOffset, highWatermark: fr.HighWatermark, logStartOffset: fr.LogStartOffset}
	if len(fr.Records) > 0 {
		out.records = make([]ConsumedRecord, len(fr.Records))
	}
	for i, r := range fr.Records {
		rec := ConsumedRecord{
			Topic: topic, Partition: partition, Offset: r.Offset,
			Timestamp: time.UnixMilli(r.Timestamp), Key: r.Key, Value: r.Value,
		}
		if len(r.Headers) > 0 {
			rec.Headers = make([]Header, len(r.Headers))
			for j, h := range r.Headers {
				rec.Headers[j] = Header{Name: h.Name, Value: h.Value}
			}
		}
		out.records[i] = rec
	}
	return out, nil
}

// resolveOffset turns OffsetOldest or OffsetNewest into the partition's
// log start offset or high watermark.
func (c *Client) resolveOffset(ctx context.Context, topic string, partition int32, which int64) (int64, error) {
	d, err := c.DescribeTopic(ctx, topic)
	if err != nil {
		return 0, err
	}
	for _, s := range d.PartitionStats {
		if s.Partition == partition {
			if which == OffsetNewest {
				return s.HighWatermark, nil
			}
			return s.LogStartOffset, nil
		}
	}
	return 0, fmt.Errorf("describe topic %s: %w: partition %d, the topic has %d", topic, ErrPartitionNotFound, partition, d.Partitions)
}

// PartitionConsumer reads one partition from a position it keeps: a
// plain reader with no group and no committed offsets. It is not safe for
// concurrent use.
type PartitionConsumer struct {
	c         *Client
	topic     string
	partition int32
	cfg       fetchConfig
	// pos is the next offset to read, or OffsetOldest or OffsetNewest
	// until the first fetch resolves it.
	pos int64
	hwm int64
}

// NewPartitionConsumer returns a consumer of one partition that starts at
// offset, or at OffsetOldest or OffsetNewest. It sends no request until
// the first fetch.
func (c *Client) NewPartitionConsumer(topic string, partition int32, offset int64, opts ...ConsumerOpt) (*PartitionConsumer, error) {
	cfg := defaultFetchConfig()
	for _, o := range opts {
		o.applyFetch(&cfg)
	}
	errs := cfg.errs
	if err := validateName("topic", topic); err != nil {
		errs = append(errs, err)
	}
	if partition < 0 {
		errs = append(errs, fmt.Errorf("%w: negative partition %d", ErrInvalidRequest, partition))
	}
	if offset < OffsetOldest {
		errs = append(errs, fmt.Errorf("%w: offset %d: want OffsetOldest, OffsetNewest or 0 and up", ErrInvalidRequest, offset))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("mamba partition consumer: %w", err)
	}
	return &PartitionConsumer{c: c, topic: topic, partition: partition, cfg: cfg, pos: offset, hwm: -1}, nil
}

// Position returns the next offset the consumer reads: one past the
// last record it returned, or the start offset (possibly OffsetOldest or
// OffsetNewest, until the first fetch resolves it).
func (pc *PartitionConsumer) Position() int64 { return pc.pos }

// HighWatermark returns the partition's high watermark as of the last
// fetch, or -1 before the first. The consumer's lag is HighWatermark
// minus Position.
func (pc *PartitionConsumer) HighWatermark() int64 { return pc.hwm }

// SetPosition moves the consumer to offset, or to OffsetOldest or
// OffsetNewest.
func (pc *PartitionConsumer) SetPosition(offset int64) error {
	if offset < OffsetOldest {
		return fmt.Errorf("seek %s/%d: %w: offset %d", pc.topic, pc.partition, ErrInvalidRequest, offset)
	}
	pc.pos = offset
	return nil
}

// fetchNext fetches from the position without moving it.
func (pc *PartitionConsumer) fetchNext(ctx context.Context) (fetchResult, error) {
	if pc.pos < 0 {
		off, err := pc.c.resolveOffset(ctx, pc.topic, pc.partition, pc.pos)
		if err != nil {
			return fetchResult{}, fmt.Errorf("fetch %s/%d: resolve start offset: %w", pc.topic, pc.partition, err)
		}
		pc.pos = off
	}
	res, err := pc.c.fetch(ctx, pc.topic, pc.partition, pc.pos, pc.cfg)
	if err != nil {
		return fetchResult{}, err
	}
	pc.hwm = res.highWatermark
	return res, nil
}

// Fetch returns the next records of the partition and moves the position
// past them. At the end of the partition it waits up to the max wait for
// new records and may return none. Errors are returned as they come
// (idempotent requests are retried as the client's WithRetries says);
// ErrOffsetOutOfRange means the position is below the log start offset
// (retention deleted the records) or above the high watermark.
func (pc *PartitionConsumer) Fetch(ctx context.Context) ([]ConsumedRecord, error) {
	res, err := pc.fetchNext(ctx)
	if err != nil {
		return nil, err
	}
	pc.pos = res.nextOffset
	return res.records, nil
}

// Records iterates over the partition's records from the position on,
// without end: at the end of the partition it long-polls for new ones.
// The position moves past each record as it is yielded, so after the
// loop breaks, Position is one past the last record the loop saw.
// Retryable errors (IsRetryable) are retried with backoff, each retry
// logged at warn level, for up to the client's retry timeout
// (WithRetryTimeout), or its connect timeout while the server was never
// reached; any other error, or one that outlasts that bound, is yielded
// once and ends the iteration. The iteration also ends, without an
// error, when ctx ends.
func (pc *PartitionConsumer) Records(ctx context.Context) iter.Seq2[ConsumedRecord, error] {
	return func(yield func(ConsumedRecord, error) bool) {
		attempt := 0
		var since time.Time // start of the current run of failures
		for ctx.Err() == nil {
			res, err := pc.fetchNext(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if attempt == 0 {
					since = time.Now()
				}
				attempt++
				wait := pc.c.retry.delay(attempt, err)
				if pc.c.keepRetrying(err, since, wait) {
					pc.c.log.Warn("mamba: fetch failed, retrying", "topic", pc.topic, "partition", pc.partition, "offset", pc.pos, "attempt", attempt, "backoff", wait, "err", err)
					if sleep(ctx, wait) != nil {
						return
					}
					continue
				}
				yield(ConsumedRecord{}, exhausted(err, since))
				return
			}
			attempt = 0
			for _, r := range res.records {
				pc.pos = r.Offset + 1
				if !yield(r, nil) {
					return
				}
			}
			pc.pos = res.nextOffset
		}
	}
}
