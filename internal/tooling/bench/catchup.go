// The catch-up phase of a Mamba run: after producing, readers replay every
// partition from its oldest record, as a consumer far behind the high
// watermark does, and the node's object-store counters say what that read
// cost in GETs.

package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mambamq/mamba/client"
)

// DefaultCatchUpFetchBytes is the max bytes of each catch-up fetch: the
// node's default fetch size, what a consumer asks for unless told.
const DefaultCatchUpFetchBytes = 1 << 20

// CatchUpResult is what the catch-up phase measured. Reads that hit the
// node's batch cache cost no GET: run the node with a small --cache-bytes
// (for example --node-arg=--cache-bytes=1MiB) to measure reads of history
// that is no longer in memory.
type CatchUpResult struct {
	Readers    int     `json:"readers"`
	FetchBytes int     `json:"fetch_max_bytes"`
	Records    int64   `json:"records"`
	Bytes      int64   `json:"bytes"` // record values read
	Fetches    int64   `json:"fetches"`
	Seconds    float64 `json:"seconds"`
	MiBPerSec  float64 `json:"mib_per_sec"`
	// GETs and GETBytes are the node's object-store reads during the
	// phase (mamba_objectstore_requests_total and
	// mamba_objectstore_read_bytes_total, op get and get_range).
	GETs     float64 `json:"gets"`
	GETBytes float64 `json:"get_bytes"`
	// GETsPerMiB is GETs per MiB of record values read; GETBytesPerByte is
	// the bytes the node read from the bucket per byte it returned.
	GETsPerMiB      float64 `json:"gets_per_mib"`
	GETBytesPerByte float64 `json:"get_bytes_per_byte"`
	// S3GETCostPerGiB is the GET cost of reading one GiB this way at AWS
	// list prices (GetPricePer1000).
	S3GETCostPerGiB float64 `json:"s3_get_cost_usd_per_gib"`
}

// catchUp, when cfg.CatchUpReaders > 0, reads every partition of every
// topic from its oldest record to the high watermark it has when the phase
// starts, with cfg.CatchUpReaders readers taking partitions from one
// queue, and sets r.catchUpResult to what it measured.
func (r *mambaRun) catchUp(ctx context.Context) error {
	cfg := r.cfg
	if cfg.CatchUpReaders == 0 {
		return nil
	}
	r.progressPhase("catch-up")
	res, err := r.readHistory(ctx)
	r.catchUpResult = res
	return err
}

func (r *mambaRun) readHistory(ctx context.Context) (*CatchUpResult, error) {
	cfg := r.cfg
	type part struct {
		topic string
		p     int32
		end   int64
	}
	var parts []part
	for _, t := range r.topics {
		d, err := r.admin.DescribeTopic(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("bench: catch-up: %w", err)
		}
		for _, s := range d.PartitionStats {
			if s.HighWatermark > s.LogStartOffset {
				parts = append(parts, part{t, s.Partition, s.HighWatermark})
			}
		}
	}
	res := &CatchUpResult{Readers: cfg.CatchUpReaders, FetchBytes: cfg.CatchUpFetchBytes}
	before, err := scrapeNode(ctx, r.hc, cfg.MetricsURL, cfg.Token)
	if err != nil {
		return nil, err
	}
	queue := make(chan part, len(parts))
	for _, p := range parts {
		queue <- p
	}
	close(queue)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range cfg.CatchUpReaders {
		wg.Go(func() {
			c, err := cfg.client()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			defer c.CloseIdleConnections()
			for p := range queue {
				records, bytes, fetches, err := readPartition(ctx, c, p.topic, p.p, p.end, cfg.CatchUpFetchBytes)
				mu.Lock()
				res.Records += records
				res.Bytes += bytes
				res.Fetches += fetches
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("bench: catch-up: %w", err)
	}
	after, err := scrapeNode(ctx, r.hc, cfg.MetricsURL, cfg.Token)
	if err != nil {
		return nil, err
	}
	res.Seconds = after.at.Sub(before.at).Seconds()
	res.GETs = after.gets - before.gets
	res.GETBytes = after.getBytes - before.getBytes
	if res.Seconds > 0 {
		res.MiBPerSec = float64(res.Bytes) / (1 << 20) / res.Seconds
	}
	if res.Bytes > 0 {
		res.GETsPerMiB = res.GETs / (float64(res.Bytes) / (1 << 20))
		res.GETBytesPerByte = res.GETBytes / float64(res.Bytes)
		res.S3GETCostPerGiB = res.GETsPerMiB * 1024 * GetPricePer1000 / 1000
	}
	return res, nil
}

// readPartition reads a partition from its oldest record to end.
func readPartition(ctx context.Context, c *client.Client, topic string, p int32, end int64, maxBytes int) (records, bytes, fetches int64, err error) {
	pc, err := c.NewPartitionConsumer(topic, p, client.OffsetOldest,
		client.WithMaxBytes(maxBytes), client.WithMaxRecords(fetchMaxRecords), client.WithMaxWait(0))
	if err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	for pc.Position() < 0 || pc.Position() < end {
		recs, err := pc.Fetch(ctx)
		if err != nil {
			return records, bytes, fetches, fmt.Errorf("read %s/%d at %d: %w", topic, p, pc.Position(), err)
		}
		fetches++
		if len(recs) == 0 && time.Since(start) > time.Minute {
			return records, bytes, fetches, fmt.Errorf("read %s/%d: no records at %d below %d", topic, p, pc.Position(), end)
		}
		for _, rec := range recs {
			records++
			bytes += int64(len(rec.Value))
		}
	}
	return records, bytes, fetches, nil
}
