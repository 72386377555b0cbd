package adversary

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Probe calls a few cheap operations over and over while an attack runs
// and keeps, for each, the longest a call took and how many failed: a
// Redis PING shows whether Redis itself is blocked (a long script runs
// alone), a topic describe through the node whether the node's own path
// to Redis is.
type Probe struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	stats map[string]*ProbeStats
}

// ProbeStats is what one probed operation saw.
type ProbeStats struct {
	Calls, Failures int
	Max             time.Duration
	FirstErr        error
}

func (s ProbeStats) String() string {
	return fmt.Sprintf("%d calls, slowest %v, %d failed", s.Calls, s.Max.Round(time.Millisecond), s.Failures)
}

// StartProbe calls each op every interval, each with its own goroutine,
// until Stop. A call slower than the interval delays the next call of the
// same op, never the others.
func StartProbe(interval time.Duration, ops map[string]func(context.Context) error) *Probe {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Probe{cancel: cancel, stats: map[string]*ProbeStats{}}
	// Every entry exists before any goroutine reads the map.
	for name := range ops {
		p.stats[name] = &ProbeStats{}
	}
	for name, op := range ops {
		p.wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				start := time.Now()
				err := op(ctx)
				if ctx.Err() != nil {
					return
				}
				p.record(name, time.Since(start), err)
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	return p
}

func (p *Probe) record(name string, d time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats[name]
	s.Calls++
	s.Max = max(s.Max, d)
	if err != nil {
		s.Failures++
		if s.FirstErr == nil {
			s.FirstErr = err
		}
	}
}

// Stop ends the probe and returns what each op saw.
func (p *Probe) Stop() map[string]ProbeStats {
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]ProbeStats, len(p.stats))
	for name, s := range p.stats {
		out[name] = *s
	}
	return out
}
