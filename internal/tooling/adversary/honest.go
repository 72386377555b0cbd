package adversary

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mambamq/mamba/client"
)

// StatusCounter is an http.RoundTripper that counts the answers an honest
// client gets by class, including those the SDK retries unseen: a 5xx
// the SDK hid by retrying is still a 5xx the node gave an honest client.
type StatusCounter struct {
	next http.RoundTripper
	// OK counts 2xx, TooMany 429, Other4xx other 4xx, Server 5xx;
	// Failed counts requests that got no answer.
	OK, TooMany, Other4xx, Server, Failed atomic.Int64
}

// NewStatusCounter counts the answers of a fresh transport.
func NewStatusCounter() *StatusCounter {
	return &StatusCounter{next: http.DefaultTransport.(*http.Transport).Clone()}
}

// RoundTrip implements http.RoundTripper.
func (s *StatusCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	switch {
	case err != nil:
		s.Failed.Add(1)
	case resp.StatusCode >= 500:
		s.Server.Add(1)
	case resp.StatusCode == http.StatusTooManyRequests:
		s.TooMany.Add(1)
	case resp.StatusCode >= 400:
		s.Other4xx.Add(1)
	default:
		s.OK.Add(1)
	}
	return resp, err
}

// position is where a record is in its topic.
type position struct {
	partition int32
	offset    int64
}

// Honest is a set of well-behaved clients on one topic: producers that
// send small records one at a time and wait for each acknowledgement, and
// one consumer per partition that tails it with long polls. Every value is
// unique, so what the producers were told can be compared with what the
// consumers read.
type Honest struct {
	Topic      string
	Partitions int
	// Producer and Consumer are the clients' answers (shared by all
	// producers, and by all consumers).
	Producer, Consumer *StatusCounter

	produce, consume *client.Client
	run              string
	stopProduce      context.CancelFunc
	stopConsume      context.CancelFunc
	producers        sync.WaitGroup
	consumers        sync.WaitGroup

	mu      sync.Mutex
	acked   map[string]position
	read    map[string]position
	next    map[int32]int64 // each consumer's position
	failed  []error
	readErr []error
	// changed is closed and replaced on every acknowledgement and every
	// fetch.
	changed chan struct{}
}

// HonestReport is what one run of honest clients saw.
type HonestReport struct {
	Acked, Read int
	// Lost acknowledged records were not read; Misplaced were read at
	// another position than they were acknowledged with. Unacked were
	// read but never acknowledged (their send failed), or come from no
	// producer of this run; UnackedSample names a few.
	Lost, Misplaced, Unacked int
	UnackedSample            []string
	// ProduceErrors and FetchErrors are calls that failed in the end
	// (after the SDK's retries).
	ProduceErrors, FetchErrors []error
	// Server5xx counts 5xx answers to any honest request, retried or
	// not; TooMany counts 429s.
	Server5xx, TooMany int64
}

func (r HonestReport) String() string {
	return fmt.Sprintf("acked %d, read %d, lost %d, misplaced %d, read unacknowledged %d %q, produce errors %d, fetch errors %d, 5xx %d, 429 %d",
		r.Acked, r.Read, r.Lost, r.Misplaced, r.Unacked, r.UnackedSample, len(r.ProduceErrors), len(r.FetchErrors), r.Server5xx, r.TooMany)
}

// StartHonest starts producers and consumers on topic (which has
// partitions partitions) of the node at url, producing with produceToken
// and consuming with consumeToken. run names this run in every value.
// Consumers start at each partition's high watermark, so a run reads only
// its own records.
func StartHonest(ctx context.Context, url, topic string, partitions, producers int, produceToken, consumeToken, run string) (*Honest, error) {
	h := &Honest{Topic: topic, Partitions: partitions, run: run, Producer: NewStatusCounter(), Consumer: NewStatusCounter(),
		acked: map[string]position{}, read: map[string]position{}, next: map[int32]int64{},
		changed: make(chan struct{})}
	var err error
	if h.produce, err = client.New(url, client.WithToken(produceToken),
		client.WithHTTPClient(&http.Client{Transport: h.Producer})); err != nil {
		return nil, err
	}
	if h.consume, err = client.New(url, client.WithToken(consumeToken),
		client.WithHTTPClient(&http.Client{Transport: h.Consumer})); err != nil {
		return nil, err
	}
	d, err := h.consume.DescribeTopic(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", topic, err)
	}
	consumeCtx, stopConsume := context.WithCancel(context.WithoutCancel(ctx))
	h.stopConsume = stopConsume
	for _, ps := range d.PartitionStats {
		h.next[ps.Partition] = ps.HighWatermark
		pc, err := h.consume.NewPartitionConsumer(topic, ps.Partition, ps.HighWatermark, client.WithMaxWait(time.Second))
		if err != nil {
			stopConsume()
			return nil, err
		}
		h.consumers.Go(func() { h.tail(consumeCtx, pc, ps.Partition) })
	}
	produceCtx, stopProduce := context.WithCancel(context.WithoutCancel(ctx))
	h.stopProduce = stopProduce
	for i := range producers {
		p, err := h.produce.NewProducer(client.WithLinger(time.Millisecond))
		if err != nil {
			stopProduce()
			stopConsume()
			return nil, err
		}
		h.producers.Go(func() { h.send(produceCtx, p, i) })
	}
	return h, nil
}

// send produces one record at a time until ctx ends. Each record it
// starts is waited for (up to a minute) even when ctx ends meanwhile, so
// every record sent is either acknowledged or failed, never in doubt.
func (h *Honest) send(ctx context.Context, p *client.Producer, id int) {
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = p.Close(closeCtx)
	}()
	for seq := 0; ctx.Err() == nil; seq++ {
		v := fmt.Sprintf("honest %s p%d s%d", h.run, id, seq)
		recCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := p.Produce(recCtx, client.Record{Topic: h.Topic, Value: []byte(v)})
		cancel()
		h.mu.Lock()
		if err == nil {
			h.acked[v] = position{res.Partition, res.Offset}
			close(h.changed)
			h.changed = make(chan struct{})
		} else {
			h.failed = append(h.failed, fmt.Errorf("%s: %w", v, err))
		}
		h.mu.Unlock()
	}
}

// AckedCount returns how many records the producers were acknowledged.
func (h *Honest) AckedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.acked)
}

// WaitAcked waits until the producers were acknowledged n records, or ctx
// ends.
func (h *Honest) WaitAcked(ctx context.Context, n int) error {
	for {
		h.mu.Lock()
		got, ch := len(h.acked), h.changed
		h.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("honest producers have %d acknowledgements, want %d: %w", got, n, ctx.Err())
		}
	}
}

// tail reads partition p from its position until ctx ends.
func (h *Honest) tail(ctx context.Context, pc *client.PartitionConsumer, p int32) {
	for ctx.Err() == nil {
		recs, err := pc.Fetch(ctx)
		h.mu.Lock()
		if err != nil && ctx.Err() == nil {
			h.readErr = append(h.readErr, fmt.Errorf("fetch %s/%d: %w", h.Topic, p, err))
		}
		for _, r := range recs {
			h.read[string(r.Value)] = position{r.Partition, r.Offset}
		}
		h.next[p] = pc.Position()
		close(h.changed)
		h.changed = make(chan struct{})
		h.mu.Unlock()
	}
}

// Stop stops the producers, lets the consumers read up to the high
// watermarks the producers left, stops them, and compares what was
// acknowledged with what was read.
func (h *Honest) Stop(ctx context.Context) (HonestReport, error) {
	h.stopProduce()
	h.producers.Wait()
	defer func() { h.stopConsume(); h.consumers.Wait() }()
	d, err := h.consume.DescribeTopic(ctx, h.Topic)
	if err != nil {
		return HonestReport{}, fmt.Errorf("describe %s: %w", h.Topic, err)
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		caughtUp := true
		h.mu.Lock()
		for _, ps := range d.PartitionStats {
			caughtUp = caughtUp && h.next[ps.Partition] >= ps.HighWatermark
		}
		ch := h.changed
		h.mu.Unlock()
		if caughtUp {
			break
		}
		select {
		case <-ch:
		case <-deadline.C:
			return HonestReport{}, errors.New("the honest consumers did not reach the high watermarks within 30s")
		case <-ctx.Done():
			return HonestReport{}, ctx.Err()
		}
	}
	h.stopConsume()
	h.consumers.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	r := HonestReport{Acked: len(h.acked), Read: len(h.read), ProduceErrors: h.failed, FetchErrors: h.readErr,
		Server5xx: h.Producer.Server.Load() + h.Consumer.Server.Load(), TooMany: h.Producer.TooMany.Load() + h.Consumer.TooMany.Load()}
	r.Lost, r.Misplaced, r.Unacked, r.UnackedSample = compare(h.acked, h.read)
	return r, nil
}

// compare checks what was read against what was acknowledged: lost
// acknowledged records were not read, misplaced ones were read at another
// position, unacked ones were read and never acknowledged (sample names a
// few).
func compare(acked, read map[string]position) (lost, misplaced, unacked int, sample []string) {
	for v := range read {
		if _, ok := acked[v]; !ok {
			unacked++
			if len(sample) < 3 {
				sample = append(sample, v)
			}
		}
	}
	for v, a := range acked {
		got, ok := read[v]
		switch {
		case !ok:
			lost++
		case got != a:
			misplaced++
		}
	}
	return lost, misplaced, unacked, sample
}
