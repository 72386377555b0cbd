package bench

import (
	"context"
	"errors"
	"math"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBaselineConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  BaselineConfig
		want []string // substrings of the error; none: valid
	}{
		{name: "zero is all defaults", cfg: BaselineConfig{}},
		{name: "typical", cfg: BaselineConfig{MessageSize: 1024, Producers: 4, Duration: time.Second, Warmup: time.Second, Rate: 1000, InFlight: 8}},
		{
			name: "every bad field at once",
			cfg:  BaselineConfig{MessageSize: -1, Producers: -1, Duration: -1, Warmup: -1, Rate: -1, InFlight: -1},
			want: []string{"message size", "producers", "duration", "warm-up", "rate", "in flight"},
		},
		{name: "NaN rate", cfg: BaselineConfig{Rate: math.NaN()}, want: []string{"rate"}},
		{name: "infinite rate", cfg: BaselineConfig{Rate: math.Inf(1)}, want: []string{"rate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted a bad config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestRunnerConfigValidate(t *testing.T) {
	for name, err := range map[string]error{
		"minio":         MinIOPutConfig{ObjectSize: -1}.Validate(),
		"minio url":     MinIOPutConfig{Endpoint: "127.0.0.1:9000", Bucket: "b"}.Validate(),
		"jetstream":     JetStreamConfig{}.Validate(),
		"redis":         RedisStreamsConfig{AppendFsync: "sometimes"}.Validate(),
		"redis nothing": RedisStreamsConfig{}.Validate(),
	} {
		if err == nil {
			t.Errorf("%s: Validate accepted a bad config", name)
		}
	}
	if err := (MinIOPutConfig{Endpoint: "http://127.0.0.1:9000", Bucket: "b"}).Validate(); err != nil {
		t.Errorf("minio: %v", err)
	}
}

func TestPacerSchedulesByIntendedTime(t *testing.T) {
	begin := time.Unix(1000, 0)
	// Two senders at 1000/s in total: each sends every 2 ms, the second
	// offset by 1 ms so that their sends interleave.
	p0 := newPacer(begin, 1000, 0, 2)
	p1 := newPacer(begin, 1000, 1, 2)

	// Far behind schedule, every overdue send is ready at once, each with
	// its own intended time (from which its latency is measured).
	now := begin.Add(5 * time.Millisecond)
	var got []time.Duration
	for {
		sent, ok := p0.ready(now)
		if !ok {
			break
		}
		got = append(got, sent.Sub(begin))
	}
	want := []time.Duration{0, 2 * time.Millisecond, 4 * time.Millisecond}
	if !equalDurations(got, want) {
		t.Errorf("sender 0 ready at %v, want %v", got, want)
	}
	if sent, ok := p1.ready(now); !ok || sent.Sub(begin) != time.Millisecond {
		t.Errorf("sender 1 first send at %v (ok %v), want 1ms", sent.Sub(begin), ok)
	}

	// An unpaced sender is always ready and leaves the stamp to the caller.
	var free pacer
	if sent, ok := free.ready(now); !ok || !sent.IsZero() {
		t.Errorf("unpaced ready = %v, %v; want zero, true", sent, ok)
	}
	if stamp(begin) != begin || stamp(time.Time{}).IsZero() {
		t.Error("stamp must keep an intended time and fill in a zero one")
	}
}

func TestPacerPaceWaitsForDueTime(t *testing.T) {
	// A rate of one send per hour: the first send is due at once, the
	// second only after ctx has ended.
	ctx, cancel := context.WithCancel(t.Context())
	p := newPacer(time.Now(), 1.0/3600, 0, 1)
	first, ok := p.pace(ctx)
	if !ok || first.IsZero() {
		t.Fatalf("first pace = %v, %v", first, ok)
	}
	cancel()
	if _, ok := p.pace(ctx); ok {
		t.Fatal("pace returned a send an hour early")
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTallyCountsAcksArrivingInWindow(t *testing.T) {
	start := time.Unix(1000, 0)
	w := &tally{recordSize: 100, start: start, end: start.Add(time.Second), stopped: start.Add(time.Second), lat: NewRecorder()}
	sent := start.Add(-time.Second)
	w.ack(sent, start.Add(-time.Nanosecond), 100)     // during warm-up: dropped
	w.ack(sent, start, 100)                           // first instant of the window
	w.ack(sent, start.Add(999*time.Millisecond), 300) // inside
	w.ack(sent, start.Add(time.Second), 100)          // after the window: dropped
	if got := w.samples.Load(); got != 2 {
		t.Errorf("samples = %d, want 2", got)
	}
	if got := w.lat.Summary().Count; got != 2 {
		t.Errorf("latency count = %d, want 2", got)
	}
	if got := w.records(w.bytes.Load()); got != 4 {
		t.Errorf("records = %d, want 4 (400 bytes of 100-byte records)", got)
	}
	if got := w.acked.Load(); got != 4 {
		t.Errorf("acked = %d, want 4 (warm-up and late acks count as successes)", got)
	}
	if _, err := w.result("x", "y", ""); err != nil {
		t.Errorf("result: %v", err)
	}
}

func TestTallyAbortsWhenNothingSucceeds(t *testing.T) {
	ctx := t.Context()
	end := time.Now().Add(time.Hour)
	newTally := func() (*tally, *bool) {
		cancelled := new(bool)
		return &tally{recordSize: 1, end: end, lat: NewRecorder(), cancel: func() { *cancelled = true }}, cancelled
	}
	boom := errors.New("boom")

	w, cancelled := newTally()
	for range abortAfterErrors - 1 {
		w.fail(ctx, boom)
	}
	if *cancelled || w.aborted != nil {
		t.Fatalf("aborted after %d errors: %v", abortAfterErrors-1, w.aborted)
	}
	w.fail(ctx, boom)
	if !*cancelled || !errors.Is(w.aborted, boom) {
		t.Fatalf("after %d errors: cancelled %v, aborted %v; want cancelled, carrying the first error", abortAfterErrors, *cancelled, w.aborted)
	}

	// One success earlier means the system works: errors are counted, and
	// the run goes on.
	w, cancelled = newTally()
	w.ack(time.Now(), time.Now(), 1)
	for range 2 * abortAfterErrors {
		w.fail(ctx, boom)
	}
	if *cancelled || w.errs.Load() != 2*abortAfterErrors {
		t.Fatalf("after a success: cancelled %v, errors %d", *cancelled, w.errs.Load())
	}

	// Failures once the run is over are the run stopping, not errors.
	done, cancel := context.WithCancel(ctx)
	cancel()
	w.fail(done, boom)
	if w.errs.Load() != 2*abortAfterErrors {
		t.Fatal("a failure after the run ended was counted")
	}

	// A window with nothing in it is an error that says why.
	w, _ = newTally()
	w.fail(ctx, boom)
	if _, err := w.result("x", "y", ""); !errors.Is(err, boom) {
		t.Fatalf("result of an empty window = %v, want an error carrying the first failure", err)
	}
}

// runFunc runs one system's baseline with cfg.
type runFunc func(ctx context.Context, cfg BaselineConfig) (SystemResult, error)

// runnerTarget is one system under test: how to run it against a fresh
// destination, and how to count what that destination holds afterwards.
type runnerTarget struct {
	system string
	// sampleBytes is what one acknowledgement (one latency sample) carries:
	// MessageSize for the queues, the object size for MinIO PUTs.
	sampleBytes int64
	// pacedAcks is the rate of the paced run in acknowledgements per
	// second, well under what the system sustains on a loaded test machine
	// under the race detector, so that the run shows the pacer's accuracy
	// and not the system's limit.
	pacedAcks float64
	// fresh returns a runner and a counter of acknowledgement units stored
	// at its destination (messages, stream entries, objects).
	fresh func(t *testing.T) (runFunc, func() int64)
}

// testRunner checks a runner for correctness, not speed: what it reports
// is consistent and really stored, pacing holds the rate, and cancelling
// stops it at once with nothing left running.
func testRunner(t *testing.T, rt runnerTarget) {
	base := BaselineConfig{MessageSize: 1024, Producers: 2, InFlight: 8}

	t.Run("measures", func(t *testing.T) {
		run, stored := rt.fresh(t)
		cfg := base
		cfg.Duration, cfg.Warmup = 500*time.Millisecond, 200*time.Millisecond
		var mu sync.Mutex
		var calls [][2]int64
		cfg.Progress = func(records, bytes int64) {
			mu.Lock()
			calls = append(calls, [2]int64{records, bytes})
			mu.Unlock()
		}
		res, err := run(t.Context(), cfg)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		checkNothingLeftRunning(t)
		p := res.Produce
		t.Logf("%s: %+v, ack %+v", res.System, p, res.Ack)
		if res.System != rt.system || res.Durability == "" {
			t.Errorf("system %q, durability %q; want system %q", res.System, res.Durability, rt.system)
		}
		if res.Errors != 0 {
			t.Errorf("%d errors (%s)", res.Errors, res.Notes)
		}
		if p.Records <= 0 {
			t.Fatalf("records = %d", p.Records)
		}
		if p.Bytes%rt.sampleBytes != 0 || p.Records != p.Bytes/int64(cfg.MessageSize) {
			t.Errorf("records %d and bytes %d do not match %d-byte records sent %d bytes at a time", p.Records, p.Bytes, cfg.MessageSize, rt.sampleBytes)
		}
		acks := p.Bytes / rt.sampleBytes
		if res.Ack.Count != acks {
			t.Errorf("latency samples = %d, want one per acknowledgement in the window (%d)", res.Ack.Count, acks)
		}
		if p.Seconds != cfg.Duration.Seconds() {
			t.Errorf("throughput over %vs, want the window's %vs", p.Seconds, cfg.Duration.Seconds())
		}
		if n := stored(); n < acks {
			t.Errorf("destination holds %d, fewer than the %d acknowledged", n, acks)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(calls) == 0 || calls[len(calls)-1] != [2]int64{p.Records, p.Bytes} {
			t.Errorf("progress calls %v do not end at the result's %d records, %d bytes", calls, p.Records, p.Bytes)
		}
		for i := 1; i < len(calls); i++ {
			if calls[i][0] < calls[i-1][0] || calls[i][1] < calls[i-1][1] {
				t.Errorf("progress went backwards: %v", calls)
				break
			}
		}
	})

	t.Run("paced", func(t *testing.T) {
		run, _ := rt.fresh(t)
		cfg := base
		// The warm-up keeps connecting (and MinIO's bucket lookup) out of
		// the window: the test is about the pacer, not set-up costs.
		cfg.Duration, cfg.Warmup = time.Second, 500*time.Millisecond
		cfg.Rate = rt.pacedAcks * float64(rt.sampleBytes) / float64(cfg.MessageSize)
		res, err := run(t.Context(), cfg)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		checkNothingLeftRunning(t)
		want := cfg.Rate * cfg.Duration.Seconds()
		if got := float64(res.Produce.Records); got < 0.7*want || got > 1.3*want {
			t.Errorf("paced at %v records/s for %v: %v records, want %v ± 30%%", cfg.Rate, cfg.Duration, got, want)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		run, _ := rt.fresh(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var cancelled time.Time
		cfg := base
		cfg.Duration = 30 * time.Second
		// Cancel from the first progress report that shows traffic, in
		// the middle of the run.
		cfg.Progress = func(records, _ int64) {
			if records > 0 && cancelled.IsZero() {
				cancelled = time.Now()
				cancel()
			}
		}
		_, err := run(ctx, cfg)
		returned := time.Now()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("run = %v, want context.Canceled", err)
		}
		if cancelled.IsZero() {
			t.Fatal("returned without being cancelled")
		}
		// A correctness bound, not a speed one: the requirement is about
		// 1 s; a runner that waited for the window would take 30.
		if d := returned.Sub(cancelled); d > 2*time.Second {
			t.Errorf("returned %v after ctx was cancelled", d)
		}
		checkNothingLeftRunning(t)
	})
}

// baselineFrame matches a stack frame in the baseline runners' code.
var baselineFrame = regexp.MustCompile(`/internal/tooling/bench/(baseline|minioput|jetstream|redisstreams)\.go:\d+`)

// checkNothingLeftRunning fails the test if a goroutine is still in the
// baseline runners' code: a runner must have joined everything it started
// before it returns. (The client libraries' own goroutines end
// asynchronously once their connections are closed, so they are not
// checked.)
func checkNothingLeftRunning(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if baselineFrame.MatchString(g) {
			t.Errorf("goroutine left running:\n%s", g)
		}
	}
}
