package faultsuite

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/tooling/testserver"
)

var soakFlag = flag.Bool("soak", false, "run the long soak version of the fault suite (also MAMBA_SOAK=1)")

// size is the load and fault lengths of one run of the suite.
type size struct {
	load       time.Duration // producer load per scenario
	rounds     int           // times each fault is injected
	minioOut   time.Duration // MinIO outage
	faultyFor  time.Duration // time the store proxy misbehaves
	producers  int
	partitions int
}

// ciSize keeps the whole suite to well under a minute of load.
var ciSize = size{load: 4 * time.Second, rounds: 1, minioOut: 3 * time.Second, faultyFor: 3 * time.Second, producers: 4, partitions: 4}

// suiteSize is ciSize, or the soak size with -soak or MAMBA_SOAK=1.
func suiteSize() size {
	soak, _ := strconv.ParseBool(os.Getenv("MAMBA_SOAK"))
	if *soakFlag || soak {
		return size{load: 60 * time.Second, rounds: 3, minioOut: 10 * time.Second, faultyFor: 10 * time.Second, producers: 6, partitions: 8}
	}
	return ciSize
}

var (
	resultsMu sync.Mutex
	results   []Result
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if path := os.Getenv("MAMBA_FAULT_REPORT"); path != "" && len(results) > 0 {
		f, err := os.Create(path)
		if err == nil {
			err = WriteTable(f, results)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "write %s: %v\n", path, err)
			code = 1
		}
	}
	os.Exit(code)
}

// cluster is one scenario's servers: MinIO, Redis with appendfsync
// always, and two ingest nodes on one bucket.
type cluster struct {
	minio *testserver.MinIO
	redis *testserver.Redis
	nodes []*testserver.Mamba
	proxy *StoreProxy
}

const topic = "faults"

func startCluster(t *testing.T, binary string, withProxy bool, nodeArgs ...string) *cluster {
	t.Helper()
	c := &cluster{minio: testserver.StartMinIO(t), redis: testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})}
	bucket := c.minio.CreateBucket(t, "mamba-faults")
	opts := testserver.MambaOptions{Binary: binary}
	if withProxy {
		p, err := NewStoreProxy(c.minio.Endpoint, uint64(time.Now().UnixNano()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		c.proxy, opts.Endpoint = p, p.URL
	}
	for i := range 2 {
		c.nodes = append(c.nodes, testserver.StartMambaWith(t, c.minio, c.redis, bucket, fmt.Sprintf("node%d", i), opts,
			append([]string{"--flush-interval", "100ms"}, nodeArgs...)...))
	}
	return c
}

func mustStart(t *testing.T, p *testserver.Process) {
	t.Helper()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
}

// bufferedBytes reads a node's mamba_buffered_bytes gauge; -1 when the node
// does not answer.
func bufferedBytes(url string) float64 {
	return metricSum(url, "mamba_buffered_bytes", "")
}

// metricSum is the sum of every series of the metric name on the node at
// url whose labels contain match (any series when match is empty); -1 when
// the node does not answer or has no such series.
func metricSum(url, name, match string) float64 {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	sum, found := 0.0, false
	for line := range strings.SplitSeq(string(raw), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		labels, value := "", strings.TrimSpace(rest)
		if rest[0] == '{' {
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				continue
			}
			labels, value = rest[:end+1], strings.TrimSpace(rest[end+1:])
		}
		if !strings.Contains(labels, match) {
			continue
		}
		if f, err := strconv.ParseFloat(value, 64); err == nil {
			sum, found = sum+f, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

// killMidFlush kills node n with SIGKILL once it holds buffered bytes:
// records accepted and not yet acknowledged, on their way to the bucket.
func killMidFlush(ctx context.Context, t *testing.T, n *testserver.Mamba) {
	t.Helper()
	for bufferedBytes(n.URL) <= 0 {
		if ctx.Err() != nil {
			t.Fatalf("%s never had buffered bytes", n.Name)
		}
	}
	n.Kill()
}

type scenario struct {
	name  string
	proxy bool
	fault func(ctx context.Context, t *testing.T, c *cluster, sz size)

	// Optional: flags for every node, options of the topic, a load
	// length other than the suite's, what Check accepts, and a last look
	// at the cluster once the log is checked.
	nodeArgs  []string
	topicOpts []client.TopicOpt
	load      time.Duration
	check     CheckOptions
	after     func(ctx context.Context, t *testing.T, c *cluster)
}

var scenarios = []scenario{
	{name: "kill-9-node-mid-flush", fault: func(ctx context.Context, t *testing.T, c *cluster, _ size) {
		killMidFlush(ctx, t, c.nodes[0])
		mustStart(t, c.nodes[0].Process)
	}},
	{name: "sigterm-node", fault: func(ctx context.Context, t *testing.T, c *cluster, _ size) {
		n := c.nodes[1]
		if err := n.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := n.Wait(); code != 0 {
			t.Errorf("%s exited %d after SIGTERM, want 0", n.Name, code)
		}
		mustStart(t, n.Process)
	}},
	{name: "minio-outage", fault: func(ctx context.Context, t *testing.T, c *cluster, sz size) {
		c.minio.Kill()
		<-time.After(sz.minioOut) // the outage itself, not a synchronisation
		mustStart(t, c.minio.Process)
	}},
	{name: "slow-failing-store", proxy: true, fault: func(ctx context.Context, t *testing.T, c *cluster, sz size) {
		c.proxy.SetFaulty(true)
		<-time.After(sz.faultyFor) // how long the store misbehaves
		c.proxy.SetFaulty(false)
		t.Logf("store proxy: %v", c.proxy.Counts())
	}},
	{name: "kill-9-redis", fault: func(ctx context.Context, t *testing.T, c *cluster, _ size) {
		c.redis.Kill()
		mustStart(t, c.redis.Process)
	}},
	{name: "kill-9-all-nodes", fault: func(ctx context.Context, t *testing.T, c *cluster, _ size) {
		for _, n := range c.nodes {
			n.Kill()
		}
		for _, n := range c.nodes {
			mustStart(t, n.Process)
		}
	}},
}

// TestFaults runs every scenario against its own servers while producers
// are busy, and checks the log against what the producers were told.
func TestFaults(t *testing.T) {
	sz := suiteSize()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			res := runScenario(t, sc, "", sz)
			report(t, res)
			requireOK(t, sc, res)
			if res.Acked == 0 {
				t.Errorf("%s: no record was acknowledged", sc.name)
			}
		})
	}
}

// TestCheckerCatchesEarlyAck runs the kill -9 scenario against a node
// built with the mamba_fault_ackearly tag, which answers producers before
// uploading: the checker must report acknowledged records as lost.
func TestCheckerCatchesEarlyAck(t *testing.T) {
	bin := testserver.BuildMamba(t, "mamba_fault_ackearly")
	// A node that acknowledges at once takes records as fast as producers
	// send them: keep the ledger small whatever the suite's size.
	sz := ciSize
	sc := scenarios[0]
	sc.name = "kill-9-node-mid-flush (ack-early build)"
	res := runScenario(t, sc, bin, sz)
	report(t, res)
	if res.Lost == 0 {
		t.Fatalf("the checker found no loss against a node that acknowledges before uploading: %+v", res)
	}
}

// requireOK fails the test when the scenario broke a promise.
func requireOK(t *testing.T, sc scenario, res Result) {
	t.Helper()
	if !res.OK() {
		t.Errorf("%s: lost %d, duplicated %d, misplaced %d, corrupt %d, phantom %d, gaps %d, readable below start %d:\n%s",
			sc.name, res.Lost, res.Duplicated, res.Misplaced, res.Corrupt, res.Phantom, res.Gaps, res.ReadableBelowStart,
			strings.Join(res.Problems, "\n"))
	}
}

func report(t *testing.T, res Result) {
	t.Helper()
	var b strings.Builder
	_ = WriteTable(&b, []Result{res})
	t.Logf("\n%s", b.String())
	for _, p := range res.Problems {
		t.Log(p)
	}
	resultsMu.Lock()
	results = append(results, res)
	resultsMu.Unlock()
}

// runScenario starts a cluster and producers, injects the fault sz.rounds
// times, waits for every producer to be acknowledged again after each,
// keeps the load up for sz.load, closes the producers and runs the checker.
func runScenario(t *testing.T, sc scenario, binary string, sz size) Result {
	c := startCluster(t, binary, sc.proxy, sc.nodeArgs...)
	if sc.load > 0 {
		sz.load = sc.load
	}
	ctx, cancel := context.WithTimeout(t.Context(), sz.load+5*time.Minute)
	defer cancel()
	admin, err := client.New(c.nodes[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateTopic(ctx, topic, sz.partitions, sc.topicOpts...); err != nil {
		t.Fatal(err)
	}

	l := NewLedger()
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	start := time.Now()
	for p := range sz.producers {
		url := c.nodes[p%len(c.nodes)].URL
		wg.Go(func() {
			if err := produce(loadCtx, p, url, l); err != nil {
				t.Errorf("producer %d: %v", p, err)
			}
		})
	}
	defer func() { stopLoad(); wg.Wait() }()

	// Every producer acknowledged at least n more times than in base.
	progressed := func(base map[int]int, n int) func(map[int]int) bool {
		return func(now map[int]int) bool {
			for p := range sz.producers {
				if now[p] < base[p]+n {
					return false
				}
			}
			return true
		}
	}
	waitCtx, waitDone := context.WithTimeout(ctx, 2*time.Minute)
	defer waitDone()
	if err := l.WaitAcks(waitCtx, progressed(nil, 20)); err != nil {
		t.Fatalf("before the fault: %v", err)
	}
	for range sz.rounds {
		sc.fault(ctx, t, c, sz)
		if err := l.WaitAcks(waitCtx, progressed(l.AckCounts(), 20)); err != nil {
			t.Errorf("producers did not recover after the fault: %v", err)
			break
		}
	}
	// The rest of the load, on the recovered cluster.
	select {
	case <-time.After(time.Until(start.Add(sz.load))):
	case <-ctx.Done():
	}
	stopLoad()
	wg.Wait()

	res, err := CheckWith(ctx, admin, topic, l, sc.check)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if sc.after != nil {
		sc.after(ctx, t, c)
	}
	res.Scenario = sc.name
	res.LongestUnavailability = l.LongestUnavailability()
	return res
}

// produce sends records to the node at url until ctx ends, recording each
// in the ledger, then closes its producer, which delivers what it holds.
func produce(ctx context.Context, id int, url string, l *Ledger) error {
	c, err := client.New(url, client.WithTimeout(10*time.Second), client.WithRetries(5, 50*time.Millisecond, time.Second))
	if err != nil {
		return err
	}
	p, err := c.NewProducer(client.WithDeliveryTimeout(90*time.Second), client.WithMaxBatchBytes(256<<10), client.WithMaxBufferedBytes(1<<20))
	if err != nil {
		return err
	}
	type pending struct {
		id RecordID
		f  *client.Future
	}
	futures := make(chan pending, 256) // bounds records in flight
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for pf := range futures {
			res, err := pf.f.Result()
			if err != nil {
				l.Failed(pf.id, err)
				continue
			}
			l.Acked(pf.id, Ack{Partition: res.Partition, Offset: res.Offset}, time.Now())
		}
	}()
	l.Start(id, time.Now())
	for seq := int64(0); ctx.Err() == nil; seq++ {
		rid := RecordID{Producer: id, Seq: seq}
		v, sum := Payload(rid, 32+int(seq%200))
		l.Sent(rid, sum)
		// The collector always drains futures, so this send only waits
		// while 256 records are in flight.
		futures <- pending{rid, p.ProduceAsync(client.Record{Topic: topic, Value: v})}
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cerr := p.Close(closeCtx)
	close(futures)
	<-collected
	if cerr != nil && !errors.Is(cerr, context.Canceled) {
		return fmt.Errorf("close producer: %w", cerr)
	}
	return nil
}
