package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/tooling/servers"
)

// The systems a comparison can measure.
const (
	SysMinIOPut      = "minio-put"
	SysMamba         = "mamba"
	SysMambaJSON     = "mamba-json"
	SysNATSSync      = "nats-sync"
	SysNATS          = "nats"
	SysRedisAlways   = "redis-always"
	SysRedisEverysec = "redis-everysec"
)

// AllSystems lists every system, in the order of the table.
var AllSystems = []string{SysMinIOPut, SysMamba, SysMambaJSON, SysNATSSync, SysNATS, SysRedisAlways, SysRedisEverysec}

// CompareConfig is one side-by-side comparison: every system with the same
// message size and producer count, on servers the comparison starts.
type CompareConfig struct {
	// Binary is the mamba executable the node runs.
	Binary string
	// Dir holds the servers' data; empty means a temporary directory.
	Dir string
	// Systems to measure (default AllSystems).
	Systems []string
	// Runs of each system; the table gives medians.
	Runs int

	MessageSize int
	Producers   int
	Duration    time.Duration
	Warmup      time.Duration

	// Mamba's node and SDK settings. ObjectSize is the node's flush bytes
	// and the size of the raw PUTs; Uploads the node's uploads in flight
	// and the raw PUTs in flight.
	ObjectSize    int
	Uploads       int
	FlushInterval time.Duration
	Partitions    int
	SDKInFlight   int
	SDKBatchBytes int
	// QueueInFlight is, for NATS and Redis, the unacknowledged publishes
	// (pipelined commands) per producer.
	QueueInFlight int

	// Targets adds the runs that check the performance targets: half
	// load with consumers, 1 and 1000 partitions, and twice the
	// sustainable load.
	Targets bool
	// MaxBuffered and CacheBytes are the node's limits (for the RSS
	// target); zero keeps the node's defaults.
	MaxBuffered, CacheBytes int64

	// Log receives one line per step.
	Log func(string)
}

func (c *CompareConfig) defaults() {
	setDefault(&c.Runs, 3)
	setDefault(&c.MessageSize, 1024)
	setDefault(&c.Producers, 4)
	setDefault(&c.Duration, 15*time.Second)
	setDefault(&c.ObjectSize, 8<<20)
	setDefault(&c.Uploads, 4)
	setDefault(&c.FlushInterval, 250*time.Millisecond)
	setDefault(&c.Partitions, 8)
	setDefault(&c.SDKInFlight, client.DefaultMaxInFlight)
	setDefault(&c.SDKBatchBytes, client.DefaultMaxBatchBytes)
	setDefault(&c.QueueInFlight, 256)
	setDefault(&c.MaxBuffered, 256<<20)
	setDefault(&c.CacheBytes, 256<<20)
	if len(c.Systems) == 0 {
		c.Systems = AllSystems
	}
	if c.Log == nil {
		c.Log = func(string) {}
	}
}

// CompareRow is one system's medians over the runs.
type CompareRow struct {
	System        string  `json:"system"`
	Durability    string  `json:"durability"`
	MiBPerSec     float64 `json:"mib_per_sec"`
	RecordsPerSec float64 `json:"records_per_sec"`
	AckP50        float64 `json:"ack_p50_ms"`
	AckP99        float64 `json:"ack_p99_ms"`
	AckP999       float64 `json:"ack_p999_ms"`
	// OfPUTLimit is MiBPerSec over the raw PUT row's MiBPerSec.
	OfPUTLimit float64 `json:"of_put_limit,omitempty"`
	// MambaOver is Mamba's MiBPerSec over this row's.
	MambaOver float64        `json:"mamba_over,omitempty"`
	Runs      []SystemResult `json:"runs"`
}

// Target is one performance target of the issue, checked on measured
// numbers.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// Machine describes where a comparison ran.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryGiB int    `json:"memory_gib"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
}

// CompareResult is the comparison's report.
type CompareResult struct {
	Machine  Machine       `json:"machine"`
	Settings string        `json:"settings"`
	Rows     []CompareRow  `json:"rows"`
	Targets  []Target      `json:"targets,omitempty"`
	Mamba    []MambaResult `json:"mamba_runs"`
	Extra    []MambaResult `json:"target_runs,omitempty"`
	// Failures lists target runs that failed (their targets are not met).
	Failures []string  `json:"failures,omitempty"`
	Started  time.Time `json:"started"`
	Took     string    `json:"took"`
}

// compareServer is every server of a comparison.
type compareServer struct {
	local                  *Local
	natsSync, nats         *servers.NATS
	redisAlways, redisEvry *servers.Redis
}

func (s *compareServer) close() {
	for _, n := range []*servers.NATS{s.natsSync, s.nats} {
		if n != nil {
			n.Kill()
		}
	}
	for _, r := range []*servers.Redis{s.redisAlways, s.redisEvry} {
		if r != nil {
			r.Kill()
		}
	}
	if s.local != nil {
		s.local.Close()
	}
}

func wants(systems []string, names ...string) bool {
	for _, n := range names {
		if slices.Contains(systems, n) {
			return true
		}
	}
	return false
}

func (c *CompareConfig) start(ctx context.Context) (*compareServer, error) {
	s := &compareServer{}
	var err error
	nodeArgs := []string{
		"--flush-bytes", fmt.Sprint(c.ObjectSize), "--flush-interval", c.FlushInterval.String(),
		"--upload-concurrency", fmt.Sprint(c.Uploads),
		"--max-buffered-bytes", fmt.Sprint(c.MaxBuffered), "--cache-bytes", fmt.Sprint(c.CacheBytes),
	}
	if s.local, err = StartLocal(ctx, LocalOptions{Binary: c.Binary, Dir: c.Dir, RedisFsync: "always", NodeArgs: nodeArgs}); err != nil {
		return s, err
	}
	// The queues' servers, each in its own directory, only when measured.
	for _, q := range []struct {
		sys   string
		start func(dir string) error
	}{
		{SysNATSSync, func(d string) (err error) {
			s.natsSync, err = servers.StartNATS(d, servers.NATSOptions{SyncAlways: true})
			return err
		}},
		{SysNATS, func(d string) (err error) { s.nats, err = servers.StartNATS(d, servers.NATSOptions{}); return err }},
		{SysRedisAlways, func(d string) (err error) {
			s.redisAlways, err = servers.StartRedis(d, servers.RedisOptions{AppendFsync: "always"})
			return err
		}},
		{SysRedisEverysec, func(d string) (err error) {
			s.redisEvry, err = servers.StartRedis(d, servers.RedisOptions{AppendFsync: "everysec"})
			return err
		}},
	} {
		if !wants(c.Systems, q.sys) {
			continue
		}
		d := filepath.Join(s.local.Dir, q.sys)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return s, err
		}
		if err := q.start(d); err != nil {
			return s, err
		}
	}
	return s, nil
}

// Validate reports a system Compare does not know, so that a front end
// can refuse it before looking for binaries.
func (c CompareConfig) Validate() error {
	for _, s := range c.Systems {
		if !slices.Contains(AllSystems, s) {
			return fmt.Errorf("bench: unknown system %q (want one of %s)", s, strings.Join(AllSystems, ", "))
		}
	}
	return nil
}

// Compare runs the comparison.
func Compare(ctx context.Context, cfg CompareConfig) (CompareResult, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return CompareResult{}, err
	}
	res := CompareResult{Machine: ReadMachine(), Started: time.Now()}
	res.Settings = fmt.Sprintf("%d B messages, %d producers, %d runs of %v after %v warm-up; %s objects with %d PUTs in flight (node: flush %v, %d uploads in flight); Mamba: %d partitions, SDK binary, %d requests of up to %d KiB in flight per producer; NATS/Redis: %d unacknowledged per producer",
		cfg.MessageSize, cfg.Producers, cfg.Runs, cfg.Duration, cfg.Warmup, byteString(cfg.ObjectSize), cfg.Uploads, cfg.FlushInterval, cfg.Uploads,
		cfg.Partitions, cfg.SDKInFlight, cfg.SDKBatchBytes>>10, cfg.QueueInFlight)
	cfg.Log("starting servers ...")
	srv, err := cfg.start(ctx)
	defer srv.close()
	if err != nil {
		return res, err
	}
	runs := map[string][]SystemResult{}
	for run := 1; run <= cfg.Runs; run++ {
		for _, sys := range cfg.Systems {
			r, err := cfg.runSystem(ctx, srv, sys, run, &res)
			if err != nil {
				return res, fmt.Errorf("%s run %d: %w", sys, run, err)
			}
			cfg.Log(fmt.Sprintf("run %d/%d %-15s %8.1f MiB/s  ack p50 %s p99 %s", run, cfg.Runs, sys, r.Produce.MiBPerSec, ms(r.Ack.P50), ms(r.Ack.P99)))
			runs[sys] = append(runs[sys], r)
			if err := cfg.cleanup(ctx, srv, sys, run); err != nil {
				return res, fmt.Errorf("%s run %d: clean up: %w", sys, run, err)
			}
		}
	}
	res.Rows = compareRows(cfg.Systems, runs)
	if cfg.Targets && wants(cfg.Systems, SysMamba) {
		if err := cfg.checkTargets(ctx, srv, &res); err != nil {
			return res, err
		}
	}
	res.Took = time.Since(res.Started).Round(time.Second).String()
	return res, nil
}

func (c *CompareConfig) base() BaselineConfig {
	return BaselineConfig{MessageSize: c.MessageSize, Producers: c.Producers, Duration: c.Duration, Warmup: c.Warmup, InFlight: c.QueueInFlight}
}

func (c *CompareConfig) mambaConfig(srv *compareServer) MambaConfig {
	m := MambaConfig{
		FlushInterval: c.FlushInterval, FlushBytes: int64(c.ObjectSize),
		MessageSize: c.MessageSize, Topics: 1, Partitions: c.Partitions, Producers: c.Producers,
		Duration: c.Duration, Warmup: c.Warmup,
		InFlight: c.SDKInFlight, BatchBytes: c.SDKBatchBytes,
	}
	srv.local.Configure(&m)
	return m
}

func (c *CompareConfig) runSystem(ctx context.Context, srv *compareServer, sys string, run int, res *CompareResult) (SystemResult, error) {
	name := fmt.Sprintf("bench-%d", run)
	switch sys {
	case SysMinIOPut:
		b := c.base()
		b.InFlight = c.Uploads
		m := srv.local.MinIO
		return RunMinIOPut(ctx, MinIOPutConfig{BaselineConfig: b, Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey,
			Bucket: srv.local.Bucket, ObjectSize: c.ObjectSize})
	case SysMamba, SysMambaJSON:
		m := c.mambaConfig(srv)
		m.JSON = sys == SysMambaJSON
		r, err := RunMamba(ctx, m)
		if err != nil {
			return SystemResult{}, err
		}
		res.Mamba = append(res.Mamba, r)
		return r.SystemResult, nil
	case SysNATSSync, SysNATS:
		n, sync := srv.nats, false
		if sys == SysNATSSync {
			n, sync = srv.natsSync, true
		}
		r, err := RunJetStream(ctx, JetStreamConfig{BaselineConfig: c.base(), URL: n.URL, Stream: strings.ToUpper(name), Subject: name, SyncAlways: sync})
		r.System = sys
		return r, err
	case SysRedisAlways, SysRedisEverysec:
		rd, fsync := srv.redisAlways, "always"
		if sys == SysRedisEverysec {
			rd, fsync = srv.redisEvry, "everysec"
		}
		r, err := RunRedisStreams(ctx, RedisStreamsConfig{BaselineConfig: c.base(), Addr: rd.Addr, Key: name, AppendFsync: fsync})
		r.System = sys
		return r, err
	}
	return SystemResult{}, fmt.Errorf("unknown system %q", sys)
}

// cleanup removes what run of sys stored, so that a comparison needs
// the disk of one run rather than of all of them (a run at full speed
// writes several GiB): the bucket's raw PUTs and chunks (the comparison
// owns the bucket, and Mamba's topics are deleted after each run, which
// leaves their chunks: Mamba has no garbage collection yet), the
// JetStream stream, the Redis stream.
func (c *CompareConfig) cleanup(ctx context.Context, srv *compareServer, sys string, run int) error {
	name := fmt.Sprintf("bench-%d", run)
	switch sys {
	case SysMinIOPut, SysMamba, SysMambaJSON:
		return srv.local.RemoveObjects(ctx, "bench/", bucket.ChunkPrefix)
	case SysNATSSync, SysNATS:
		n := srv.nats
		if sys == SysNATSSync {
			n = srv.natsSync
		}
		nc, err := nats.Connect(n.URL)
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		if err := js.DeleteStream(ctx, strings.ToUpper(name)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
	case SysRedisAlways, SysRedisEverysec:
		rd := srv.redisAlways
		if sys == SysRedisEverysec {
			rd = srv.redisEvry
		}
		rc := redis.NewClient(&redis.Options{Addr: rd.Addr})
		defer rc.Close()
		if err := rc.Del(ctx, name).Err(); err != nil {
			return err
		}
		// Compact the AOF now rather than in the middle of a later run. A
		// refusal (one is already running) changes nothing that matters.
		_ = rc.BgRewriteAOF(ctx).Err()
	}
	return nil
}

func compareRows(systems []string, runs map[string][]SystemResult) []CompareRow {
	var rows []CompareRow
	var put, mamba float64
	for _, sys := range systems {
		rs := runs[sys]
		if len(rs) == 0 {
			continue
		}
		row := CompareRow{System: sys, Durability: rs[0].Durability, Runs: rs}
		row.MiBPerSec = median(rs, func(r SystemResult) float64 { return r.Produce.MiBPerSec })
		row.RecordsPerSec = median(rs, func(r SystemResult) float64 { return r.Produce.RecordsPerSec })
		row.AckP50 = median(rs, func(r SystemResult) float64 { return r.Ack.P50 })
		row.AckP99 = median(rs, func(r SystemResult) float64 { return r.Ack.P99 })
		row.AckP999 = median(rs, func(r SystemResult) float64 { return r.Ack.P999 })
		switch sys {
		case SysMinIOPut:
			put = row.MiBPerSec
		case SysMamba:
			mamba = row.MiBPerSec
		}
		rows = append(rows, row)
	}
	for i := range rows {
		if put > 0 && rows[i].System != SysMinIOPut {
			rows[i].OfPUTLimit = rows[i].MiBPerSec / put
		}
		if mamba > 0 && rows[i].MiBPerSec > 0 && rows[i].System != SysMamba {
			rows[i].MambaOver = mamba / rows[i].MiBPerSec
		}
	}
	return rows
}

// median of f over rs (the mean of the middle two for an even count).
func median[T any](rs []T, f func(T) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func row(rows []CompareRow, sys string) (CompareRow, bool) {
	for _, r := range rows {
		if r.System == sys {
			return r, true
		}
	}
	return CompareRow{}, false
}

// checkTargets runs Mamba at half its measured throughput (with a consumer
// group), at 1 and 1000 partitions, and at twice its throughput, and
// compares the numbers with the targets.
func (c *CompareConfig) checkTargets(ctx context.Context, srv *compareServer, res *CompareResult) error {
	mamba, _ := row(res.Rows, SysMamba)
	put, havePut := row(res.Rows, SysMinIOPut)
	if havePut {
		res.Targets = append(res.Targets, Target{
			Name: "throughput vs raw PUT", Want: fmt.Sprintf(">= 60%% of %.1f MiB/s = %.1f MiB/s", put.MiBPerSec, 0.6*put.MiBPerSec),
			Got: fmt.Sprintf("%.1f MiB/s (%.0f%%)", mamba.MiBPerSec, 100*mamba.OfPUTLimit), Met: mamba.MiBPerSec >= 0.6*put.MiBPerSec,
		})
	}
	if nats, ok := row(res.Rows, SysNATSSync); ok {
		res.Targets = append(res.Targets, Target{
			Name: "throughput vs NATS JetStream (sync always)", Want: fmt.Sprintf("> %.1f MiB/s", nats.MiBPerSec),
			Got: fmt.Sprintf("%.1f MiB/s (x%.2f)", mamba.MiBPerSec, mamba.MiBPerSec/nats.MiBPerSec), Met: mamba.MiBPerSec > nats.MiBPerSec,
		})
	}
	half := mamba.RecordsPerSec / 2
	// Each target configuration runs c.Runs times; the check uses the
	// medians, the highest peak RSS and the fewest 429s of the runs. A
	// run that fails is reported, and its target is not met; the other
	// targets are still run.
	run := func(label string, mutate func(*MambaConfig)) (MambaResult, []string) {
		var rs []MambaResult
		var failed []string
		for i := range c.Runs {
			m := c.mambaConfig(srv)
			m.Rate = half
			mutate(&m)
			r, err := RunMamba(ctx, m)
			if err != nil {
				c.Log(fmt.Sprintf("run %d/%d %s failed: %v", i+1, c.Runs, label, err))
				failed = append(failed, fmt.Sprintf("run %d: %v", i+1, err))
				res.Failures = append(res.Failures, fmt.Sprintf("%s, run %d: %v", label, i+1, err))
				continue
			}
			r.System = "mamba " + label
			res.Extra = append(res.Extra, r)
			c.Log(fmt.Sprintf("run %d/%d %-34s %6.1f MiB/s  ack p99 %s  e2e p99 %s  PUTs/s %.1f (bound %.1f)  429s %.0f  peak RSS %s",
				i+1, c.Runs, label, r.Produce.MiBPerSec, ms(r.Ack.P99), ms(r.EndToEnd.P99), r.Node.PUTsPerSec, r.Node.PUTBoundPerSec, r.Node.Overloaded, byteString(int(r.Node.PeakRSSBytes))))
			rs = append(rs, r)
		}
		if len(rs) == 0 {
			return MambaResult{}, failed
		}
		return aggregate(rs), failed
	}
	// add records a target, not met if any of its runs failed.
	add := func(t Target, failed []string) {
		if len(failed) > 0 {
			t.Met = false
			t.Got += fmt.Sprintf(" (%d of %d runs failed: %s)", len(failed), c.Runs, strings.Join(failed, "; "))
		}
		res.Targets = append(res.Targets, t)
	}

	h, failed := run("half load, 1 group", func(m *MambaConfig) { m.Groups = 1 })
	if havePut {
		bound := c.FlushInterval.Seconds()*1000 + 2*put.AckP99
		add(Target{
			Name: "produce p99 at half load", Want: fmt.Sprintf("<= flush interval + 2 x PUT p99 = %s", ms(bound)),
			Got: ms(h.Ack.P99), Met: h.Ack.Count > 0 && h.Ack.P99 <= bound,
		}, failed)
	}
	add(Target{
		Name: "end-to-end p99 at half load", Want: fmt.Sprintf("<= produce p99 + 50ms = %s", ms(h.Ack.P99+50)),
		Got: ms(h.EndToEnd.P99), Met: h.EndToEnd.Count > 0 && h.EndToEnd.P99 <= h.Ack.P99+50,
	}, failed)
	for _, parts := range []int{1, 1000} {
		// Keyed records, so that with 1000 partitions every request
		// carries many partitions and every chunk holds them all.
		r, failed := run(fmt.Sprintf("half load, %d partition(s), keyed", parts), func(m *MambaConfig) {
			m.Partitions, m.Keys = parts, 100_000
		})
		add(Target{
			Name: fmt.Sprintf("PUTs/s with %d partition(s)", parts), Want: fmt.Sprintf("<= %.1f (1/flush interval + MiB/s / flush MiB)", r.Node.PUTBoundPerSec),
			Got: fmt.Sprintf("%.1f at %.1f MiB/s", r.Node.PUTsPerSec, r.Produce.MiBPerSec), Met: r.Node.PUTs > 0 && r.Node.PUTsPerSec <= r.Node.PUTBoundPerSec,
		}, failed)
	}
	// Twice the sustainable load, from four times the producers, so that
	// what the producers keep in flight is well beyond the node's buffer
	// and the node, not the SDK, is what pushes back.
	o, failed := run("twice the load", func(m *MambaConfig) {
		m.Rate = 2 * mamba.RecordsPerSec
		m.Producers *= 4
	})
	rssBound := c.MaxBuffered + c.CacheBytes + 150<<20
	add(Target{
		Name: "twice the load: 429s, RSS bound", Want: fmt.Sprintf("429s > 0, peak RSS <= max buffered + cache + 150 MiB = %s", byteString(int(rssBound))),
		Got: fmt.Sprintf("%.0f 429s, peak RSS %s", o.Node.Overloaded, byteString(int(o.Node.PeakRSSBytes))),
		Met: o.Node.Overloaded > 0 && o.Node.PeakRSSBytes > 0 && o.Node.PeakRSSBytes <= rssBound,
	}, failed)
	if jsonRow, ok := row(res.Rows, SysMambaJSON); ok {
		res.Targets = append(res.Targets, jsonTarget(jsonRow, mamba))
	}
	return nil
}

// jsonTarget checks the JSON path's row: it is met only when the row has
// runs and every one of them acknowledged records, at a measured rate,
// without errors.
func jsonTarget(jsonRow, binary CompareRow) Target {
	t := Target{Name: "JSON path measured", Want: "every run acknowledged records without errors"}
	var records, errs int64
	measured := len(jsonRow.Runs) > 0
	for _, r := range jsonRow.Runs {
		records += r.Produce.Records
		errs += r.Errors
		measured = measured && r.Produce.Records > 0 && r.Produce.MiBPerSec > 0
	}
	t.Met = measured && errs == 0
	t.Got = fmt.Sprintf("%d run(s), %d records, %d errors, %.1f MiB/s", len(jsonRow.Runs), records, errs, jsonRow.MiBPerSec)
	if binary.MiBPerSec > 0 {
		t.Got += fmt.Sprintf(" (x%.2f of binary)", jsonRow.MiBPerSec/binary.MiBPerSec)
	}
	return t
}

// aggregate folds the runs of one target configuration: medians of the
// throughput, latencies and PUT rates, the highest peak RSS and the
// fewest 429s.
func aggregate(rs []MambaResult) MambaResult {
	out := rs[0]
	med := func(f func(MambaResult) float64) float64 { return median(rs, f) }
	out.Produce.MiBPerSec = med(func(r MambaResult) float64 { return r.Produce.MiBPerSec })
	out.Ack.P99 = med(func(r MambaResult) float64 { return r.Ack.P99 })
	out.EndToEnd.P99 = med(func(r MambaResult) float64 { return r.EndToEnd.P99 })
	out.Node.PUTsPerSec = med(func(r MambaResult) float64 { return r.Node.PUTsPerSec })
	out.Node.PUTBoundPerSec = med(func(r MambaResult) float64 { return r.Node.PUTBoundPerSec })
	for _, r := range rs {
		out.Node.PeakRSSBytes = max(out.Node.PeakRSSBytes, r.Node.PeakRSSBytes)
		out.Node.Overloaded = min(out.Node.Overloaded, r.Node.Overloaded)
		out.EndToEnd.Count = min(out.EndToEnd.Count, r.EndToEnd.Count)
	}
	return out
}

// ReadMachine describes this machine.
func ReadMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var kb int64
			if _, err := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); err == nil {
				m.MemoryGiB = int((kb + 1<<19) >> 20)
				break
			}
		}
		f.Close()
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	return m
}
