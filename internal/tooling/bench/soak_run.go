package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore/miniostore"
)

// SoakReport is a soak run: its settings, its samples and the verdict.
type SoakReport struct {
	Settings SoakSettings `json:"settings"`
	Samples  []SoakSample `json:"samples"`
	// Reference is the index in Samples of the sample the last one is
	// compared with (the first due at ReferenceAt); -1 when the run
	// stopped before it.
	Reference   int         `json:"reference"`
	ReferenceAt string      `json:"reference_at"`
	Checks      []SoakCheck `json:"checks"`
	// Interrupted is set when the run was stopped before its duration.
	Interrupted bool `json:"interrupted"`
	// Produce is the workload's throughput and ack latency, when it
	// finished.
	Produce *SystemResult `json:"produce,omitempty"`
}

// Pass reports whether the run reached its reference sample and every
// bounded column stayed within SoakBound of it.
func (r SoakReport) Pass() bool {
	if r.Reference < 0 || len(r.Checks) == 0 {
		return false
	}
	for _, c := range r.Checks {
		if !c.Within {
			return false
		}
	}
	return true
}

// SoakSettings echoes the run in the report.
type SoakSettings struct {
	Duration       string   `json:"duration"`
	SampleInterval string   `json:"sample_interval"`
	Rate           float64  `json:"rate"`
	RecordBytes    int      `json:"record_bytes"`
	Partitions     int      `json:"partitions"`
	Producers      int      `json:"producers"`
	Retention      string   `json:"retention"`
	RedisFsync     string   `json:"redis_appendfsync"`
	NodeArgs       []string `json:"node_args"`
}

// RunSoak starts a local MinIO, Redis and node with opts, produces at
// cfg's steady rate to one topic of cfg.Partitions partitions with
// cfg.Retention for cfg.Duration, and samples the figures every
// cfg.SampleInterval, passing each sample to onSample (if set) as it is
// taken. When ctx ends early it returns what it has, with Interrupted
// set. The report is returned with any error, so that a failed run still
// shows its samples.
func RunSoak(ctx context.Context, opts LocalOptions, cfg SoakConfig, onSample func(SoakSample)) (SoakReport, error) {
	rep := SoakReport{Reference: -1, ReferenceAt: cfg.ReferenceAt().String(), Settings: SoakSettings{
		Duration: cfg.Duration.String(), SampleInterval: cfg.SampleInterval.String(), Rate: cfg.Rate,
		RecordBytes: cfg.RecordBytes, Partitions: cfg.Partitions, Producers: cfg.Producers,
		Retention: cfg.Retention.String(), RedisFsync: opts.RedisFsync, NodeArgs: opts.NodeArgs,
	}}
	if err := cfg.Validate(); err != nil {
		return rep, fmt.Errorf("soak: %w", err)
	}
	l, err := StartLocal(ctx, opts)
	if err != nil {
		return rep, err
	}
	defer l.Close()
	var acked soakAcked
	probes, closeProbes, err := LocalSoakProbes(l, nodeKeyPrefix(opts.NodeArgs), acked.n.Load)
	if err != nil {
		return rep, err
	}
	defer closeProbes()

	work := MambaConfig{
		MessageSize: cfg.RecordBytes, Topics: 1, Partitions: cfg.Partitions, Producers: cfg.Producers,
		Rate: cfg.Rate, Duration: cfg.Duration, TopicPrefix: "soak", Retention: cfg.Retention,
		// The last sample is taken as producing ends: the topic must
		// still be there. The servers go at the end anyway.
		KeepTopics: true,
		Progress:   acked.progress,
	}
	l.Configure(&work)
	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	type outcome struct {
		res MambaResult
		err error
	}
	done := make(chan outcome, 1)
	start := time.Now()
	go func() {
		res, err := RunMamba(ctx, work)
		if err != nil {
			stopSampling() // no point sampling a workload that failed
		}
		done <- outcome{res, err}
	}()
	rep.Samples = sampleSoak(sampleCtx, wallClock{}, start, cfg.Duration, cfg.SampleInterval, probes, onSample)
	out := <-done
	rep.Interrupted = ctx.Err() != nil
	rep.Reference, rep.Checks = CheckSoak(rep.Samples, cfg.ReferenceAt())
	if rep.Interrupted {
		return rep, nil
	}
	if out.err != nil {
		return rep, fmt.Errorf("soak: workload: %w", out.err)
	}
	rep.Produce = &out.res.SystemResult
	return rep, nil
}

// LocalSoakProbes reads the figures of a soak from the local servers:
// Redis's INFO, the metadata store's index (under keyPrefix; empty means
// metadata.DefaultPrefix), one listing of the bucket and the node's
// /metrics. close releases the connections.
func LocalSoakProbes(l *Local, keyPrefix string, acked func() int64) (p SoakProbes, close func(), err error) {
	rdb := redis.NewClient(&redis.Options{Addr: l.Redis.Addr, PoolSize: 2})
	meta := metadata.New(rdb, metadata.Options{Prefix: keyPrefix})
	store, err := miniostore.New(miniostore.Config{
		Endpoint: l.MinIO.Endpoint, Bucket: l.Bucket, Region: "us-east-1", PathStyle: true,
		Credentials: credentials.NewStaticV4(l.MinIO.AccessKey, l.MinIO.SecretKey, ""),
	})
	if err != nil {
		rdb.Close()
		return SoakProbes{}, nil, err
	}
	b := bucket.New(store)
	hc := &http.Client{Timeout: 10 * time.Second}
	metricsURL := l.Node.URL + "/metrics"
	return SoakProbes{
		Acked:           acked,
		RedisUsedMemory: func(ctx context.Context) (int64, error) { return redisUsedMemory(ctx, rdb) },
		IndexEntries:    meta.IndexEntries,
		Bucket:          b.Usage,
		Node: func(ctx context.Context) (SoakNode, error) {
			s, err := scrapeNode(ctx, hc, metricsURL, "")
			return SoakNode{CheckpointSeconds: s.checkpointSeconds, RSSBytes: int64(s.rssBytes)}, err
		},
	}, func() { rdb.Close(); hc.CloseIdleConnections() }, nil
}

// redisUsedMemory returns used_memory of the server's INFO memory.
func redisUsedMemory(ctx context.Context, rc *redis.Client) (int64, error) {
	info, err := rc.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	return infoInt(info, "used_memory")
}

// infoInt returns the integer field name of a Redis INFO reply.
func infoInt(info, name string) (int64, error) {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("redis INFO has no " + name)
}

// nodeKeyPrefix returns the value of the last --key-prefix among the
// node's flags (as "--key-prefix=P" or "--key-prefix P"), or "" for the
// default, so that the index is counted where the node writes it.
func nodeKeyPrefix(args []string) string {
	prefix := ""
	for i, a := range args {
		a = "--" + strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, "--key-prefix="); ok {
			prefix = v
		} else if a == "--key-prefix" && i+1 < len(args) {
			prefix = args[i+1]
		}
	}
	return prefix
}
