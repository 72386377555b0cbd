package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/bucket"
)

// fakeClock jumps to every time a sampler waits for, and records them.
type fakeClock struct {
	waits  []time.Time
	cancel func() // when set, called instead of jumping at the wait number stopAt
	stopAt int
}

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) bool {
	c.waits = append(c.waits, t)
	if c.cancel != nil && len(c.waits) == c.stopAt {
		c.cancel()
		return false
	}
	return ctx.Err() == nil
}

// fakeProbes return figures that grow by step each call; the node probe
// fails on its second call.
func fakeProbes(step int64) SoakProbes {
	var n int64
	calls := 0
	return SoakProbes{
		Acked: func() int64 { n++; return 1000 * n },
		RedisUsedMemory: func(context.Context) (int64, error) {
			return 1<<20 + step*n, nil
		},
		IndexEntries: func(context.Context) (int64, error) { return 100 + step*n, nil },
		Bucket: func(context.Context) (bucket.Usage, error) {
			return bucket.Usage{Objects: 10 * n, Bytes: 1 << 20 * n, NewestCheckpointBytes: 2048,
				Prefixes: map[string]bucket.PrefixUsage{"chunks/": {Objects: 10 * n, Bytes: 1 << 20 * n}}}, nil
		},
		Node: func(context.Context) (SoakNode, error) {
			calls++
			if calls == 2 {
				return SoakNode{}, errors.New("scrape: connection refused")
			}
			return SoakNode{CheckpointSeconds: 0.01, RSSBytes: 50 << 20}, nil
		},
	}
}

// TestSampleSoakSchedule checks when samples are due (every interval, the
// last at the duration even off the interval grid) and what each holds,
// failed probes included.
func TestSampleSoakSchedule(t *testing.T) {
	start := time.Unix(1_763_700_000, 0)
	clk := &fakeClock{}
	var seen []SoakSample
	samples := sampleSoak(t.Context(), clk, start, 100*time.Second, 30*time.Second, fakeProbes(1),
		func(s SoakSample) { seen = append(seen, s) })
	wantDue := []time.Duration{30 * time.Second, 60 * time.Second, 90 * time.Second, 100 * time.Second}
	if len(samples) != len(wantDue) || len(seen) != len(wantDue) || len(clk.waits) != len(wantDue) {
		t.Fatalf("%d samples, %d passed on, %d waits; want %d each", len(samples), len(seen), len(clk.waits), len(wantDue))
	}
	for i, s := range samples {
		if s.Elapsed != wantDue[i] || !clk.waits[i].Equal(start.Add(wantDue[i])) || s.Minute != wantDue[i].Minutes() {
			t.Errorf("sample %d due %v (minute %v), waited for %v; want %v", i, s.Elapsed, s.Minute, clk.waits[i], wantDue[i])
		}
		n := int64(i + 1)
		if s.Acked != 1000*n || s.IndexEntries != 100+n || s.BucketObjects != 10*n || s.BucketBytes != n<<20 ||
			s.CheckpointBytes != 2048 || s.BucketPrefixes["chunks/"].Objects != 10*n {
			t.Errorf("sample %d = %+v", i, s)
		}
	}
	if e := samples[1].Errors; len(e) != 1 || !strings.Contains(e[0], "node metrics: scrape: connection refused") ||
		samples[1].NodeRSSBytes != 0 || samples[2].NodeRSSBytes != 50<<20 {
		t.Errorf("failed probe: errors %q, RSS %d then %d", e, samples[1].NodeRSSBytes, samples[2].NodeRSSBytes)
	}
}

// TestSampleSoakInterrupted checks that a run stopped between samples
// keeps the samples taken before.
func TestSampleSoakInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	clk := &fakeClock{cancel: cancel, stopAt: 3}
	samples := sampleSoak(ctx, clk, time.Unix(0, 0), 10*time.Minute, time.Minute, fakeProbes(1), nil)
	if len(samples) != 2 || samples[1].Elapsed != 2*time.Minute {
		t.Fatalf("samples after an interrupt at the third = %+v, want the first two", samples)
	}
}

func TestSoakReferenceAt(t *testing.T) {
	for _, c := range []struct{ run, want time.Duration }{
		{30 * time.Minute, 10 * time.Minute},
		{2 * time.Hour, 10 * time.Minute},
		{3 * time.Minute, time.Minute},
		{4 * time.Second, 4 * time.Second / 3},
	} {
		if got := (SoakConfig{Duration: c.run}).ReferenceAt(); got != c.want {
			t.Errorf("ReferenceAt of a %v run = %v, want %v", c.run, got, c.want)
		}
	}
}

// minuteSamples returns one sample a minute whose bounded figures are
// base at and after minute flatFrom, and rise by a tenth of base a minute
// before it, with grow added per minute to the index entries.
func minuteSamples(n int, grow int64) []SoakSample {
	var out []SoakSample
	for m := 1; m <= n; m++ {
		out = append(out, SoakSample{
			Elapsed: time.Duration(m) * time.Minute, Minute: float64(m), Acked: int64(m) * 60_000,
			RedisUsedMemory: 10 << 20, IndexEntries: 1000 + grow*int64(m), BucketObjects: 500, BucketBytes: 1 << 30,
			CheckpointBytes: 4096, CheckpointSeconds: 0.02, NodeRSSBytes: 100 << 20,
		})
	}
	return out
}

func TestCheckSoak(t *testing.T) {
	ratio := func(t *testing.T, checks []SoakCheck, col string) SoakCheck {
		t.Helper()
		for _, c := range checks {
			if c.Column == col {
				return c
			}
		}
		t.Fatalf("no check of %s in %+v", col, checks)
		return SoakCheck{}
	}
	t.Run("flat passes", func(t *testing.T) {
		samples := minuteSamples(30, 0)
		ref, checks := CheckSoak(samples, 10*time.Minute)
		rep := SoakReport{Samples: samples, Reference: ref, Checks: checks}
		if ref != 9 || len(checks) != 7 || !rep.Pass() {
			t.Fatalf("reference %d, %d checks, pass %v; want sample 9 (minute 10), 7 checks, pass", ref, len(checks), rep.Pass())
		}
		for _, c := range checks {
			if c.Column == "acked" || c.Column == "minute" {
				t.Errorf("%s is checked; it grows by design", c.Column)
			}
		}
	})
	t.Run("growth beyond the bound fails", func(t *testing.T) {
		// Index entries 1000+10m: 1100 at minute 10, 1300 at 30 (1.18x);
		// with 20 a minute: 1200, 1600 (1.33x).
		_, checks := CheckSoak(minuteSamples(30, 10), 10*time.Minute)
		if c := ratio(t, checks, "index_entries"); !c.Within || c.Reference != 1100 || c.Final != 1300 {
			t.Errorf("1.18x: %+v", c)
		}
		ref, checks := CheckSoak(minuteSamples(30, 20), 10*time.Minute)
		c := ratio(t, checks, "index_entries")
		if c.Within || c.Ratio == nil || *c.Ratio < 1.33 || *c.Ratio > 1.34 {
			t.Errorf("1.33x: %+v", c)
		}
		if (SoakReport{Reference: ref, Checks: checks}).Pass() {
			t.Error("a run with a column beyond the bound passes")
		}
	})
	t.Run("zero reference", func(t *testing.T) {
		samples := minuteSamples(3, 0)
		samples[0].CheckpointBytes, samples[2].CheckpointBytes = 0, 0
		samples[0].CheckpointSeconds = 0
		_, checks := CheckSoak(samples, time.Minute)
		if c := ratio(t, checks, "checkpoint_kib"); !c.Within || c.Ratio == nil || *c.Ratio != 1 {
			t.Errorf("0 then 0: %+v, want ratio 1, within", c)
		}
		if c := ratio(t, checks, "checkpoint_s"); c.Within || c.Ratio != nil {
			t.Errorf("0 then 0.02: %+v, want no ratio, not within", c)
		}
	})
	t.Run("stopped before the reference", func(t *testing.T) {
		ref, checks := CheckSoak(minuteSamples(9, 0), 10*time.Minute)
		if ref != -1 || checks != nil || (SoakReport{Reference: ref}).Pass() {
			t.Errorf("reference %d, checks %+v; want none", ref, checks)
		}
	})
}

func TestWriteSoakReport(t *testing.T) {
	samples := minuteSamples(30, 20)
	samples[4].Errors = []string{"bucket: list bucket: connection refused"}
	ref, checks := CheckSoak(samples, 10*time.Minute)
	rep := SoakReport{
		Settings: SoakSettings{Duration: "30m0s", SampleInterval: "1m0s", Rate: 1000, RecordBytes: 1024,
			Partitions: 8, Producers: 2, Retention: "5m0s", RedisFsync: "always", NodeArgs: []string{"--gc-interval=1m"}},
		Samples: samples, Reference: ref, ReferenceAt: "10m0s", Checks: checks,
		Produce: &SystemResult{Produce: NewThroughput(1_800_000, 1_800_000*1024, 30*time.Minute)},
	}
	var buf bytes.Buffer
	if err := WriteSoakTable(&buf, rep); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"soak: 30m0s at 1000 records/s of 1024 B, 8 partition(s)", "node flags: --gc-interval=1m",
		"redis_used_mib  index_entries  bucket_objects", "30.00", "1800000", "1024.00", // minute 30, acked, 1 GiB in MiB
		"minute 5.00: bucket: list bucket: connection refused",
		"last sample (minute 30.00) against the reference (minute 10.00), bound 1.25x",
		"1.33x", "verdict: FAIL, 1 of 7 columns beyond 1.25x", "produce: 1800000 records at 1000 records/s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if got := strings.Count(out, "\n"); got < 30+7 {
		t.Errorf("table has %d lines, want a row per sample and per check:\n%s", got, out)
	}

	buf.Reset()
	if err := WriteSoakCSV(&buf, rep); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 31 || rows[0][0] != "minute" || rows[0][5] != "bucket_bytes" || rows[30][5] != "1073741824" ||
		rows[5][9] != "bucket: list bucket: connection refused" || rows[10][3] != "1200" {
		t.Errorf("csv = %q", rows)
	}

	buf.Reset()
	rep.Reference, rep.Checks, rep.Interrupted, rep.Samples = -1, nil, true, samples[:3]
	if err := WriteSoakTable(&buf, rep); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "interrupted after 3 sample(s)") ||
		!strings.Contains(out, "no verdict: the run stopped before its reference sample (due at 10m0s)") {
		t.Errorf("interrupted run:\n%s", out)
	}
}

func TestSoakConfigValidate(t *testing.T) {
	ok := SoakConfig{Duration: time.Minute, SampleInterval: 10 * time.Second, Rate: 100, RecordBytes: 64,
		Partitions: 1, Producers: 1, Retention: time.Minute}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	err := SoakConfig{SampleInterval: time.Second, Rate: -1, RecordBytes: 4}.Validate()
	for _, want := range []string{"duration 0s", "sample interval 1s", "rate -1", "record bytes 4", "partitions 0", "retention 0s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %q", err, want)
		}
	}
}

func TestInfoInt(t *testing.T) {
	info := "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n"
	if v, err := infoInt(info, "used_memory"); err != nil || v != 1<<20 {
		t.Errorf("used_memory = %d, %v", v, err)
	}
	if _, err := infoInt(info, "used_memory_rss"); err == nil {
		t.Error("a missing field has no error")
	}
}

func TestNodeKeyPrefix(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--flush-interval=50ms"}, ""},
		{[]string{"--key-prefix=soak"}, "soak"},
		{[]string{"--key-prefix", "a", "-key-prefix=b"}, "b"},
		{[]string{"--key-prefix"}, ""},
	} {
		if got := nodeKeyPrefix(c.args); got != c.want {
			t.Errorf("nodeKeyPrefix(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}
