package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/mambamq/mamba/client"
)

// MambaConfig is a Mamba workload: producers writing fixed-size records
// through the Go SDK, and optionally consumer groups reading them back.
type MambaConfig struct {
	// URL is the node's HTTP API; MetricsURL its Prometheus endpoint
	// (default URL + "/metrics").
	URL, MetricsURL string
	// Token, when set, is the API token sent to a node started with
	// --auth (client.WithToken, and as a bearer token to MetricsURL).
	Token string
	// NodePid, when the node runs on this machine, gives its exact peak
	// RSS over the window (VmHWM, reset when the window starts);
	// otherwise the peak of RSS sampled every 500 ms is reported.
	NodePid int
	// RedisAddr, when set, is read for the Redis commands per second.
	RedisAddr string
	// FlushInterval and FlushBytes are the node's flush settings, for the
	// PUT rate bound in the report.
	FlushInterval time.Duration
	FlushBytes    int64

	MessageSize int
	Topics      int
	Partitions  int
	Producers   int
	// Keys, when above zero, gives records keys cycling over that many
	// distinct values, which spreads them over every partition; zero
	// sends records without keys, placed by the SDK one partition per
	// batch.
	Keys int
	// Groups consumer groups of Consumers members each read every topic;
	// 0 groups measures producing only.
	Groups, Consumers int
	// Rate is the target records/s of all producers together; 0 means
	// as fast as the producers can go.
	Rate             float64
	Duration, Warmup time.Duration
	// Drain bounds how long consumers may take, after producing stops, to
	// read what was produced.
	Drain time.Duration
	// CatchUpReaders, when above zero, read every partition from its
	// oldest record once producing (and consuming) is over, in fetches of
	// CatchUpFetchBytes (default DefaultCatchUpFetchBytes): the catch-up
	// phase, reported with its GETs per MiB read.
	CatchUpReaders    int
	CatchUpFetchBytes int

	// SDK settings: ack mode, wire format and batching.
	AckBuffered bool
	JSON        bool
	Linger      time.Duration
	BatchBytes  int
	InFlight    int
	// BufferBytes bounds each producer's buffer; zero means (InFlight+1)
	// batches.
	BufferBytes int64

	// TopicPrefix names the topics the run creates (and deletes at the
	// end unless KeepTopics).
	TopicPrefix string
	KeepTopics  bool
	// Retention, when above zero, is the retention_ms of the topics the
	// run creates.
	Retention time.Duration

	// Progress, when set, is called about once a second; calls never
	// overlap.
	Progress func(Progress)
}

// Defaults fills the zero fields of cfg with the benchmark's defaults.
func (cfg *MambaConfig) Defaults() {
	setDefault(&cfg.MetricsURL, cfg.URL+"/metrics")
	setDefault(&cfg.MessageSize, 1024)
	setDefault(&cfg.Topics, 1)
	setDefault(&cfg.Partitions, 8)
	setDefault(&cfg.Producers, 4)
	setDefault(&cfg.Consumers, 1)
	setDefault(&cfg.Duration, 30*time.Second)
	setDefault(&cfg.Drain, 30*time.Second)
	setDefault(&cfg.Linger, client.DefaultLinger)
	setDefault(&cfg.BatchBytes, client.DefaultMaxBatchBytes)
	setDefault(&cfg.InFlight, client.DefaultMaxInFlight)
	// A producer holds what it has in flight and one batch more: a deeper
	// client queue only adds waiting to the ack latency at full load.
	setDefault(&cfg.BufferBytes, int64(cfg.InFlight+1)*int64(cfg.BatchBytes))
	setDefault(&cfg.TopicPrefix, "bench")
	setDefault(&cfg.CatchUpFetchBytes, DefaultCatchUpFetchBytes)
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// stampBytes is the prefix of every payload: the record's intended send
// time in Unix nanoseconds, read back by consumers for end-to-end latency.
const stampBytes = 8

func (cfg *MambaConfig) validate() error {
	switch {
	case cfg.URL == "":
		return errors.New("bench: no node URL")
	case cfg.MessageSize < stampBytes:
		return fmt.Errorf("bench: message size %d is below the %d-byte timestamp every record carries", cfg.MessageSize, stampBytes)
	case cfg.Topics < 1 || cfg.Partitions < 1 || cfg.Producers < 1:
		return errors.New("bench: topics, partitions and producers must be at least 1")
	case cfg.Keys < 0:
		return errors.New("bench: keys must not be negative")
	case cfg.Groups < 0 || cfg.Consumers < 1:
		return errors.New("bench: groups must be 0 or more and consumers per group at least 1")
	case cfg.CatchUpReaders < 0 || cfg.CatchUpFetchBytes < 1:
		return errors.New("bench: catch-up readers must not be negative and catch-up fetch bytes must be at least 1")
	case cfg.Rate < 0 || cfg.Duration <= 0 || cfg.Warmup < 0:
		return errors.New("bench: rate, duration and warm-up must not be negative (duration above zero)")
	}
	return nil
}

// Progress is the state of a running benchmark.
type Progress struct {
	Elapsed time.Duration
	// Phase is "warmup", "measure", "drain" or "catch-up".
	Phase               string
	Acked, AckedBytes   int64 // acknowledged in the measured window so far
	Consumed            int64 // read by consumers in the measured window
	Errors              int64
	AckP99, EndToEndP99 time.Duration
	Overloaded          float64 // 429 answers of the node so far
}

// NodeStats is what the node reported during the measured window.
type NodeStats struct {
	// PUTs and GETs are object store requests made by the node.
	PUTs       float64 `json:"puts"`
	GETs       float64 `json:"gets"`
	PUTsPerSec float64 `json:"puts_per_sec"`
	GETsPerSec float64 `json:"gets_per_sec"`
	// PUTBoundPerSec is the design bound 1/flush interval + MiB/s divided
	// by flush MiB at the measured throughput.
	PUTBoundPerSec float64 `json:"put_bound_per_sec"`
	// S3CostPerGiB is the request cost of ingesting (and, with consumers,
	// reading) one GiB at AWS list prices (PutPricePer1000,
	// GetPricePer1000).
	S3CostPerGiB float64 `json:"s3_request_cost_usd_per_gib"`
	// Overloaded counts produce requests answered 429.
	Overloaded float64 `json:"overloaded_429"`
	// CPUCores is the node's CPU time divided by wall time (1.0 = one
	// core busy).
	CPUCores     float64 `json:"cpu_cores"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	// RedisCommandsPerSec counts every command the Redis server processed
	// (all clients), when its address is known.
	RedisCommandsPerSec float64 `json:"redis_commands_per_sec,omitempty"`
}

// MambaResult is the report of one Mamba workload.
type MambaResult struct {
	SystemResult
	EndToEnd Latency    `json:"end_to_end_latency"`
	Consume  Throughput `json:"consume"`
	Node     NodeStats  `json:"node"`
	// CatchUp is the catch-up phase, when MambaConfig.CatchUpReaders > 0.
	CatchUp  *CatchUpResult `json:"catch_up,omitempty"`
	Settings MambaSettings  `json:"settings"`
}

// MambaSettings echoes the workload in the report.
type MambaSettings struct {
	MessageSize int     `json:"message_size"`
	Topics      int     `json:"topics"`
	Partitions  int     `json:"partitions"`
	Producers   int     `json:"producers"`
	Keys        int     `json:"keys"`
	Groups      int     `json:"groups"`
	Consumers   int     `json:"consumers_per_group"`
	Rate        float64 `json:"target_rate"`
	Duration    string  `json:"duration"`
	Warmup      string  `json:"warmup"`
	Ack         string  `json:"ack"`
	Format      string  `json:"format"`
	Linger      string  `json:"linger"`
	BatchBytes  int     `json:"batch_bytes"`
	InFlight    int     `json:"in_flight"`
}

// phases are the times of a run. An event counts when it happens inside
// the measured window [measureStart, measureEnd]: an acknowledgement when
// it arrives, a consumed record when it is read, whenever it was sent. So
// throughput is what the system delivered during the window, and the
// latencies are those of the deliveries made in it.
type phases struct {
	start                    time.Time
	measureStart, measureEnd time.Time
}

func (w phases) counts(at time.Time) bool {
	return !at.Before(w.measureStart) && !at.After(w.measureEnd)
}

// RunMamba runs the workload against a node and reports what it measured.
func RunMamba(ctx context.Context, cfg MambaConfig) (MambaResult, error) {
	cfg.Defaults()
	if err := cfg.validate(); err != nil {
		return MambaResult{}, err
	}
	r := &mambaRun{cfg: cfg, ack: NewRecorder(), e2e: NewRecorder(), hc: &http.Client{Timeout: 10 * time.Second},
		reads: make([]atomic.Int64, cfg.Groups)}
	return r.run(ctx)
}

type mambaRun struct {
	cfg      MambaConfig
	hc       *http.Client
	admin    *client.Client
	topics   []string
	keys     [][]byte // shared and read-only
	ack, e2e *Recorder
	win      phases

	acked, ackedBytes, errs atomic.Int64
	produced                atomic.Int64   // acknowledged over the whole run, for consumers to catch up to
	consumed, consumedBytes atomic.Int64   // in the measured window
	reads                   []atomic.Int64 // per group, over the whole run
	peakRSS                 atomic.Int64
	progressMu              sync.Mutex
	overloaded              atomic.Uint64  // float64 bits of the last scraped 429 count
	catchUpResult           *CatchUpResult // set by catchUp, before report
}

func (r *mambaRun) run(ctx context.Context) (MambaResult, error) {
	cfg := r.cfg
	var err error
	if r.admin, err = cfg.client(); err != nil {
		return MambaResult{}, err
	}
	defer r.admin.CloseIdleConnections()
	for i := range cfg.Keys {
		r.keys = append(r.keys, []byte("key-"+strconv.Itoa(i)))
	}
	if err := r.createTopics(ctx); err != nil {
		return MambaResult{}, err
	}
	if !cfg.KeepTopics {
		defer r.deleteTopics()
	}

	var rc *redis.Client
	if cfg.RedisAddr != "" {
		rc = redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, PoolSize: 1})
		defer rc.Close()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Consumers join before anything is produced, so that they read from
	// the start and their set-up is not measured.
	consumers, err := r.startConsumers(ctx)
	if err != nil {
		return MambaResult{}, err
	}
	defer func() {
		for _, gc := range consumers {
			_ = gc.Close(context.Background())
		}
	}()

	now := time.Now()
	r.win = phases{start: now, measureStart: now.Add(cfg.Warmup), measureEnd: now.Add(cfg.Warmup + cfg.Duration)}

	samplerDone := make(chan struct{})
	samplerCtx, stopSampler := context.WithCancel(ctx)
	go func() {
		defer close(samplerDone)
		r.sample(samplerCtx)
	}()

	// Node and Redis counters at the start and end of the measured window.
	var before, after nodeSample
	var cmdsBefore, cmdsAfter int64
	var sampleErr error
	hwmReset := false
	snap := func(s *nodeSample, cmds *int64) {
		if s == &before && cfg.NodePid > 0 {
			hwmReset = resetPeakRSS(cfg.NodePid) == nil
		}
		var err error // this runs in its own goroutine
		if *s, err = scrapeNode(ctx, r.hc, cfg.MetricsURL, cfg.Token); err != nil {
			sampleErr = errors.Join(sampleErr, err)
		}
		if rc != nil {
			if *cmds, err = redisCommands(ctx, rc); err != nil {
				sampleErr = errors.Join(sampleErr, err)
			}
		}
	}
	snapDone := make(chan struct{})
	go func() {
		defer close(snapDone)
		if !sleepUntil(ctx, r.win.measureStart) {
			return
		}
		snap(&before, &cmdsBefore)
		if !sleepUntil(ctx, r.win.measureEnd) {
			return
		}
		snap(&after, &cmdsAfter)
	}()

	// Produce until the window ends, then wait for every outstanding
	// record, then for consumers to read everything acknowledged.
	g, gctx := errgroup.WithContext(ctx)
	for i := range cfg.Producers {
		g.Go(func() error { return r.produce(gctx, i) })
	}
	cg, cgctx := errgroup.WithContext(ctx)
	for i, gc := range consumers {
		cg.Go(func() error { return r.consume(cgctx, gc, i/cfg.Consumers) })
	}
	produceErr := g.Wait()
	<-snapDone
	if produceErr == nil {
		produceErr = ctx.Err()
	}
	if produceErr == nil && len(consumers) > 0 {
		r.progressPhase("drain")
		drainCtx, cancelDrain := context.WithTimeout(ctx, cfg.Drain)
		produceErr = r.waitConsumed(drainCtx)
		cancelDrain()
	}
	if produceErr == nil {
		produceErr = r.catchUp(ctx)
	}
	cancel()
	_ = cg.Wait()
	stopSampler()
	<-samplerDone
	if produceErr != nil {
		return MambaResult{}, produceErr
	}
	if sampleErr != nil {
		return MambaResult{}, sampleErr
	}

	res := r.report(before, after, cmdsBefore, cmdsAfter, hwmReset)
	return res, nil
}

func (r *mambaRun) createTopics(ctx context.Context) error {
	var buf [4]byte
	_, _ = rand.Read(buf[:])
	id := fmt.Sprintf("%x", buf)
	for i := range r.cfg.Topics {
		name := fmt.Sprintf("%s-%s-%d", r.cfg.TopicPrefix, id, i)
		var opts []client.TopicOpt
		if r.cfg.Retention > 0 {
			opts = append(opts, client.WithRetention(r.cfg.Retention))
		}
		if _, err := r.admin.CreateTopic(ctx, name, r.cfg.Partitions, opts...); err != nil {
			return fmt.Errorf("bench: create topic %s: %w", name, err)
		}
		r.topics = append(r.topics, name)
	}
	return nil
}

func (r *mambaRun) deleteTopics() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, t := range r.topics {
		_ = r.admin.DeleteTopic(ctx, t)
	}
}

// sample scrapes the node every 500 ms for its RSS and 429 count, and
// reports progress every second, until ctx ends.
func (r *mambaRun) sample(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if s, err := scrapeNode(ctx, r.hc, r.cfg.MetricsURL, r.cfg.Token); err == nil {
			if rss := int64(s.rssBytes); r.win.counts(s.at) && rss > r.peakRSS.Load() {
				r.peakRSS.Store(rss)
			}
			r.overloaded.Store(math.Float64bits(s.overloaded))
		}
		if n%2 == 1 {
			r.progressPhase("")
		}
	}
}

// progressPhase reports progress; an empty phase is taken from the clock.
func (r *mambaRun) progressPhase(phase string) {
	if r.cfg.Progress == nil {
		return
	}
	now := time.Now()
	if phase == "" {
		switch {
		case now.Before(r.win.measureStart):
			phase = "warmup"
		case now.Before(r.win.measureEnd):
			phase = "measure"
		default:
			phase = "drain"
		}
	}
	ack, e2e := r.ack.Summary(), r.e2e.Summary()
	r.progressMu.Lock()
	defer r.progressMu.Unlock()
	r.cfg.Progress(Progress{
		Elapsed: now.Sub(r.win.start), Phase: phase,
		Acked: r.acked.Load(), AckedBytes: r.ackedBytes.Load(),
		Consumed: r.consumed.Load(), Errors: r.errs.Load(),
		AckP99:      time.Duration(ack.P99 * float64(time.Millisecond)),
		EndToEndP99: time.Duration(e2e.P99 * float64(time.Millisecond)),
		Overloaded:  math.Float64frombits(r.overloaded.Load()),
	})
}

func (r *mambaRun) report(before, after nodeSample, cmdsBefore, cmdsAfter int64, hwmReset bool) MambaResult {
	cfg := r.cfg
	elapsed := cfg.Duration
	res := MambaResult{
		SystemResult: SystemResult{
			System:     "mamba",
			Durability: "chunk PUT answered by the object store, then offsets committed in Redis",
			Produce:    NewThroughput(r.acked.Load(), r.ackedBytes.Load(), elapsed),
			Ack:        r.ack.Summary(),
			Errors:     r.errs.Load(),
		},
		EndToEnd: r.e2e.Summary(),
		CatchUp:  r.catchUpResult,
		Consume:  NewThroughput(r.consumed.Load(), r.consumedBytes.Load(), elapsed),
		Settings: MambaSettings{
			MessageSize: cfg.MessageSize, Topics: cfg.Topics, Partitions: cfg.Partitions,
			Producers: cfg.Producers, Keys: cfg.Keys, Groups: cfg.Groups, Consumers: cfg.Consumers, Rate: cfg.Rate,
			Duration: cfg.Duration.String(), Warmup: cfg.Warmup.String(),
			Ack: "durable", Format: "binary", Linger: cfg.Linger.String(),
			BatchBytes: cfg.BatchBytes, InFlight: cfg.InFlight,
		},
	}
	if cfg.AckBuffered {
		res.Settings.Ack = "buffered"
		res.Durability = "accepted into the node's memory (ack=buffered)"
	}
	if cfg.JSON {
		res.Settings.Format = "json"
		res.System = "mamba-json"
	}
	secs := after.at.Sub(before.at).Seconds()
	if secs <= 0 {
		return res
	}
	n := &res.Node
	n.PUTs = after.puts - before.puts
	n.GETs = after.gets - before.gets
	n.PUTsPerSec = n.PUTs / secs
	n.GETsPerSec = n.GETs / secs
	if cfg.FlushInterval > 0 && cfg.FlushBytes > 0 {
		n.PUTBoundPerSec = 1/cfg.FlushInterval.Seconds() + res.Produce.MiBPerSec/(float64(cfg.FlushBytes)/(1<<20))
	}
	n.S3CostPerGiB = requestCostPerGiB(n.PUTs, n.GETs, res.Produce.Bytes)
	n.Overloaded = after.overloaded - before.overloaded
	n.CPUCores = (after.cpuSeconds - before.cpuSeconds) / secs
	n.PeakRSSBytes = r.peakRSS.Load()
	if cfg.NodePid > 0 && hwmReset {
		// The kernel's exact peak since the window began.
		if hwm := peakRSS(cfg.NodePid); hwm > 0 {
			n.PeakRSSBytes = hwm
		}
	}
	if cmdsAfter > cmdsBefore {
		n.RedisCommandsPerSec = float64(cmdsAfter-cmdsBefore) / secs
	}
	return res
}

// sleepUntil waits until t or ctx's end, and reports whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// client returns an SDK client of the node, with the token if there is
// one.
func (c MambaConfig) client(opts ...client.Opt) (*client.Client, error) {
	if c.Token != "" {
		opts = append(opts, client.WithToken(c.Token))
	}
	return client.New(c.URL, opts...)
}
