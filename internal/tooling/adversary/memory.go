// Package adversary is Mamba's adversarial suite: it starts a real node
// (`mamba serve --auth`) on real Redis and MinIO, runs one attack at a
// time against it (the abuses docs/security.md lists: header floods,
// bodies of millions of empty records, stalled and chunked bodies, huge
// group joins, hostile names, long-poll and idempotency-key floods, and
// requests without the right token) while honest clients with tokens of
// their own produce and consume on other topics, and checks, for every
// attack:
//
//   - the attacker got the documented answer (status and error code);
//   - every record an honest producer was acknowledged is read back by the
//     honest consumers at the partition and offset it was acknowledged
//     with, and no honest request was answered 5xx;
//   - the node's resident memory (VmRSS, sampled from /proc, and VmHWM at
//     the end) stayed under its configured memory bound plus a constant;
//   - Redis stayed responsive: a concurrent probe (PING, and a topic
//     describe through the node) never waited longer than its bound.
//
// The tests in this package are the suite; the non-test files are its
// instruments: the memory bound and /proc sampler, the latency probe, the
// honest clients and their ledger, and raw HTTP helpers for attacks the
// SDK would refuse to send. See docs/security.md, "How this is tested".
package adversary

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MiB is a mebibyte.
const MiB = 1 << 20

// Limits are the memory settings a node runs with: the flags of `mamba
// serve` that bound what it holds.
type Limits struct {
	// MemoryBudget is --memory-budget: what buffered records, request
	// bodies, decoding, fetch answers, long polls and both caches reserve
	// from before they are allocated.
	MemoryBudget int64
	// MaxBufferedBytes, CacheBytes and CatchUpCacheBytes are
	// --max-buffered-bytes, --cache-bytes and --catchup-cache-bytes, the
	// budget's shares.
	MaxBufferedBytes, CacheBytes, CatchUpCacheBytes int64
	// MaxRequestBytes is --max-request-bytes.
	MaxRequestBytes int64
}

// Args returns the node flags that set l.
func (l Limits) Args() []string {
	return []string{
		"--memory-budget", strconv.FormatInt(l.MemoryBudget, 10),
		"--max-buffered-bytes", strconv.FormatInt(l.MaxBufferedBytes, 10),
		"--cache-bytes", strconv.FormatInt(l.CacheBytes, 10),
		"--catchup-cache-bytes", strconv.FormatInt(l.CatchUpCacheBytes, 10),
		"--max-request-bytes", strconv.FormatInt(l.MaxRequestBytes, 10),
	}
}

// Bound is the node's configured memory bound, whatever a client does:
// its memory budget, which everything a request can make it hold
// reserves from.
func (l Limits) Bound() int64 { return l.MemoryBudget }

// RSSAllowance is the stated constant a node's resident memory may exceed
// its Bound by: the soft memory limit's headroom over the budget
// (--memory-limit auto is the budget plus 64 MiB), and 128 MiB for what
// no budget counts: the Go runtime, the binary, goroutine stacks,
// connections, and pages the garbage collector freed that the kernel has
// not taken back yet (an idle node is about 30 MiB resident).
const RSSAllowance = 192 * MiB

// ProcMemory is a process's memory as /proc/PID/status reports it.
type ProcMemory struct {
	// RSS is VmRSS, the resident set now; HWM is VmHWM, its peak over
	// the process's life.
	RSS, HWM int64
}

// ReadProcMemory reads VmRSS and VmHWM of process pid from
// /proc/PID/status.
func ReadProcMemory(pid int) (ProcMemory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcMemory{}, err
	}
	defer f.Close()
	var m ProcMemory
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return ProcMemory{}, fmt.Errorf("/proc/%d/status: %s: %w", pid, name, err)
		}
		if name == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return ProcMemory{}, err
	}
	if found != 2 {
		return ProcMemory{}, fmt.Errorf("/proc/%d/status has no VmRSS or VmHWM", pid)
	}
	return m, nil
}

// RSSSampler samples a process's VmRSS every interval until stopped and
// keeps the largest.
type RSSSampler struct {
	pid    int
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	max     int64
	samples int
	err     error
}

// SampleRSS starts sampling process pid every interval.
func SampleRSS(pid int, interval time.Duration) *RSSSampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &RSSSampler{pid: pid, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			s.sample()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *RSSSampler) sample() {
	m, err := ReadProcMemory(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return
	}
	s.max = max(s.max, m.RSS)
	s.samples++
}

// Stop ends the sampling, takes a last sample and returns the largest
// VmRSS seen, the number of samples, and the first error reading
// /proc (the process had exited).
func (s *RSSSampler) Stop() (maxRSS int64, samples int, err error) {
	s.cancel()
	<-s.done
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max, s.samples, s.err
}
