package adversary

import (
	"context"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"
)

// The sampler sees memory this process touches: the suite's RSS check
// can fail.
func TestRSSSamplerSeesGrowth(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	before, err := ReadProcMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.RSS <= 0 || before.HWM < before.RSS {
		t.Fatalf("VmRSS %d, VmHWM %d", before.RSS, before.HWM)
	}
	s := SampleRSS(os.Getpid(), time.Millisecond)
	b := make([]byte, 256*MiB)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	maxRSS, samples, err := s.Stop()
	runtime.KeepAlive(b)
	if err != nil || samples == 0 {
		t.Fatalf("%d samples, %v", samples, err)
	}
	if maxRSS < before.RSS+128*MiB {
		t.Errorf("max VmRSS %d MiB after touching 256 MiB, was %d MiB", maxRSS/MiB, before.RSS/MiB)
	}
	if _, err := ReadProcMemory(1 << 30); err == nil {
		t.Error("ReadProcMemory of a process that does not exist succeeded")
	}
}

// The probe keeps the slowest call and counts failures per op.
func TestProbeKeepsSlowestAndFailures(t *testing.T) {
	calls, slowDone := make(chan struct{}, 100), make(chan struct{}, 100)
	p := StartProbe(time.Millisecond, map[string]func(context.Context) error{
		"slow": func(ctx context.Context) error {
			select {
			case <-time.After(20 * time.Millisecond): // the latency under test
			case <-ctx.Done():
			}
			select {
			case slowDone <- struct{}{}:
			default:
			}
			return nil
		},
		"failing": func(context.Context) error {
			select {
			case calls <- struct{}{}:
			default:
			}
			return errors.New("refused")
		},
	})
	for range 3 {
		<-calls
	}
	<-slowDone
	<-slowDone // the first call is recorded before the second starts
	stats := p.Stop()
	if s := stats["slow"]; s.Calls == 0 || s.Max < 20*time.Millisecond || s.Failures != 0 {
		t.Errorf("slow: %v", s)
	}
	if s := stats["failing"]; s.Failures < 3 || s.Failures != s.Calls || s.FirstErr == nil {
		t.Errorf("failing: %v, %v", s, s.FirstErr)
	}
}

// The honest clients' check finds each way a record can go wrong.
func TestCompareFindsLossMisplacementAndStrays(t *testing.T) {
	acked := map[string]position{"a": {0, 0}, "b": {0, 1}, "c": {1, 0}}
	read := map[string]position{"a": {0, 0}, "b": {1, 1}, "x": {1, 2}}
	lost, misplaced, unacked, sample := compare(acked, read)
	if lost != 1 || misplaced != 1 || unacked != 1 || len(sample) != 1 || sample[0] != "x" {
		t.Errorf("lost %d, misplaced %d, unacked %d %q; want 1, 1, 1 [x]", lost, misplaced, unacked, sample)
	}
	if lost, misplaced, unacked, _ := compare(acked, acked); lost+misplaced+unacked != 0 {
		t.Errorf("a log equal to the acknowledgements: lost %d, misplaced %d, unacked %d", lost, misplaced, unacked)
	}
}
