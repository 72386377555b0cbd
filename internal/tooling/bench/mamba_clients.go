// The SDK clients of a Mamba run: producers stamping each record with its
// send time, and consumer groups reading everything back.

package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mambamq/mamba/client"
)

// produce runs one producer: records without keys, so the SDK places
// them as it places any keyless record (one partition per batch,
// preferring one with no request in flight), rotating over the topics.
// Each record carries its scheduled send time, and the SDK's ack and
// error handlers account for it, so no goroutine waits per record.
func (r *mambaRun) produce(ctx context.Context, id int) error {
	cfg := r.cfg
	opts := []client.ProducerOpt{
		client.WithLinger(cfg.Linger), client.WithMaxBatchBytes(cfg.BatchBytes),
		client.WithMaxInFlight(cfg.InFlight), client.WithMaxBufferedBytes(cfg.BufferBytes),
		client.WithAckHandler(func(rec client.Record, _ client.Result) { r.acknowledged(rec.Value) }),
		client.WithErrorHandler(func(client.Record, error) { r.errs.Add(1) }),
	}
	if cfg.AckBuffered {
		opts = append(opts, client.WithAckBuffered())
	}
	if cfg.JSON {
		opts = append(opts, client.WithJSON())
	}
	c, err := cfg.client()
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	p, err := c.NewProducer(opts...)
	if err != nil {
		return err
	}

	payloads := newPayloadSource(cfg.MessageSize)
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.Producers) / cfg.Rate)
	}
	// Producers start staggered over one interval so their sends
	// interleave.
	next := r.win.start.Add(interval * time.Duration(id) / time.Duration(cfg.Producers))
	for n := 0; ; n++ {
		now := time.Now()
		if !now.Before(r.win.measureEnd) || ctx.Err() != nil {
			break
		}
		sent := now
		if interval > 0 {
			// Pace by scheduled send time, and measure from it, so that a
			// stall delays the schedule's records rather than hiding them
			// (no coordinated omission).
			if next.Sub(now) > 200*time.Microsecond {
				if !sleepUntil(ctx, next) {
					break
				}
				now = time.Now()
			}
			sent = now
			if next.Before(now) {
				sent = next
			}
			next = next.Add(interval)
		}
		rec := client.Record{Topic: r.topics[n%len(r.topics)], Value: payloads.next(sent)}
		if len(r.keys) > 0 {
			rec.Key = r.keys[(n+id*7919)%len(r.keys)]
		}
		// Blocks while the producer's buffer is full.
		p.ProduceAsync(rec)
	}
	// Every record is acknowledged or failed once Close returns.
	closeCtx, cancel := context.WithTimeout(context.Background(), client.DefaultDeliveryTimeout)
	defer cancel()
	if ctx.Err() != nil {
		// Cancelled: give up on what is outstanding at once.
		closeCtx = ctx
	}
	if err := p.Close(closeCtx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("bench: producer %d: %w", id, err)
	}
	return nil
}

// acknowledged accounts for one acknowledged record.
func (r *mambaRun) acknowledged(value []byte) {
	done := time.Now()
	r.produced.Add(1)
	if r.win.counts(done) {
		sent := time.Unix(0, int64(binary.BigEndian.Uint64(value)))
		r.ack.Record(done.Sub(sent))
		r.acked.Add(1)
		r.ackedBytes.Add(int64(len(value)))
	}
}

// payloadSource hands out record values: the stamp, then incompressible
// filler. Values are carved from 1 MiB slabs, since the SDK keeps each
// value until its record is acknowledged and must not see it change.
type payloadSource struct {
	size   int
	filler []byte
	slab   []byte
	off    int
}

func newPayloadSource(size int) *payloadSource {
	filler := make([]byte, 64<<10+size)
	_, _ = rand.Read(filler)
	return &payloadSource{size: size, filler: filler}
}

func (s *payloadSource) next(stamp time.Time) []byte {
	if len(s.slab) < s.size {
		s.slab = make([]byte, max(1<<20, s.size))
	}
	v := s.slab[:s.size:s.size]
	s.slab = s.slab[s.size:]
	binary.BigEndian.PutUint64(v, uint64(stamp.UnixNano()))
	s.off = (s.off + 4093) % (len(s.filler) - s.size)
	copy(v[stampBytes:], s.filler[s.off:])
	return v
}

func (r *mambaRun) startConsumers(ctx context.Context) ([]*client.GroupConsumer, error) {
	var out []*client.GroupConsumer
	var buf [4]byte
	_, _ = rand.Read(buf[:])
	for g := range r.cfg.Groups {
		group := fmt.Sprintf("%s-%x-g%d", r.cfg.TopicPrefix, buf, g)
		for range r.cfg.Consumers {
			c, err := r.cfg.client()
			if err != nil {
				return out, err
			}
			gc, err := c.NewGroupConsumer(group, r.topics,
				client.WithMaxRecords(fetchMaxRecords), client.WithMaxBytes(fetchMaxBytes))
			if err != nil {
				return out, err
			}
			out = append(out, gc)
		}
	}
	return out, nil
}

// Consumers fetch up to the node's caps per partition and commit their
// offsets once a second, as a consumer after throughput would.
const (
	fetchMaxRecords = 10_000
	fetchMaxBytes   = 8 << 20
	commitInterval  = time.Second
)

// consume reads records for one member of group g until ctx ends.
func (r *mambaRun) consume(ctx context.Context, gc *client.GroupConsumer, g int) error {
	lastCommit := time.Now()
	for ctx.Err() == nil {
		recs, err := gc.Fetch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.errs.Add(1)
			continue
		}
		now := time.Now()
		inWindow := r.win.counts(now)
		for _, rec := range recs {
			if len(rec.Value) < stampBytes {
				r.errs.Add(1)
				continue
			}
			if inWindow {
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(rec.Value)))
				r.e2e.Record(now.Sub(sent))
				r.consumed.Add(1)
				r.consumedBytes.Add(int64(len(rec.Value)))
			}
		}
		r.reads[g].Add(int64(len(recs)))
		if time.Since(lastCommit) >= commitInterval {
			lastCommit = time.Now()
			if err := gc.Commit(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, client.ErrLeaseLost) {
				r.errs.Add(1)
			}
		}
	}
	return nil
}

// waitConsumed waits until every group has read as many records as were
// acknowledged, or ctx ends.
func (r *mambaRun) waitConsumed(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		caughtUp := true
		for i := range r.reads {
			caughtUp = caughtUp && r.reads[i].Load() >= r.produced.Load()
		}
		if caughtUp {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				var read []int64
				for i := range r.reads {
					read = append(read, r.reads[i].Load())
				}
				return fmt.Errorf("bench: consumers read %v of %d acknowledged records within the %v drain", read, r.produced.Load(), r.cfg.Drain)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}
