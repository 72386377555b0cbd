package adversary

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/tooling/testserver"
)

var longFlag = flag.Bool("long", false, "run the long version of the adversarial suite (also MAMBA_ADVERSARY_LONG=1)")

// long reports whether the suite runs at its long size: the attacks that
// take minutes (a body trickling for the whole-body limit) and the larger
// floods.
func long() bool {
	v, _ := strconv.ParseBool(os.Getenv("MAMBA_ADVERSARY_LONG"))
	return *longFlag || v
}

// The node's settings. The memory budget and its shares are scaled down
// from the defaults (768 MiB: 256 MiB buffer, 256 MiB cache, 64 MiB
// catch-up cache) so that an attack that escaped them would show in RSS
// at once, while the request limits stay at their defaults: the attacks
// are the real sizes.
var limits = Limits{
	MemoryBudget:      256 * MiB,
	MaxBufferedBytes:  128 * MiB,
	CacheBytes:        32 * MiB,
	CatchUpCacheBytes: 16 * MiB,
	MaxRequestBytes:   16 * MiB,
}

const (
	bodyReadTimeout = 2 * time.Second
	maxLongPolls    = 16
	maxWait         = 5 * time.Second
	flushInterval   = 50 * time.Millisecond
	writeTimeout    = 5 * time.Second
)

// Probe bounds: Redis must answer a PING, and the node a topic describe,
// within these while any attack runs. A blocking script (a rebalance over
// thousands of partitions) shows as a slow PING; the describe also waits
// for CPU on a node busy decoding (on two shared cores, seconds). A join
// at the group partition cap rebalances 10,000 partitions in one script,
// which holds Redis for up to a second on two shared cores: that attack's
// PING bound is joinPingLatency.
const (
	maxPingLatency     = time.Second
	maxDescribeLatency = 5 * time.Second
	joinPingLatency    = 2 * time.Second
)

// env is the suite's servers and clients, shared by the attacks.
type env struct {
	minio  *testserver.MinIO
	redis  *testserver.Redis
	node   *testserver.Mamba
	rdb    *redis.Client
	bin    string
	admin  *client.Client
	tokens tokens
}

// tokens are the suite's API tokens.
type tokens struct {
	Admin string
	// HonestProduce may produce to honest-*; HonestConsume may consume
	// honest-* and describe topics.
	HonestProduce, HonestConsume string
	// Attacker has every scope on attack-* topics and groups, nothing on
	// honest-*.
	Attacker string
	// Narrow is valid and matches no topic or group.
	Narrow string
	// Revoked was an admin token, and is revoked.
	Revoked string
}

const honestTopic = "honest-load"

func nodeArgs() []string {
	return append(limits.Args(), "--auth", "--flush-interval", flushInterval.String(),
		"--body-read-timeout", bodyReadTimeout.String(), "--max-long-polls", strconv.Itoa(maxLongPolls),
		"--max-wait", maxWait.String(), "--write-timeout", writeTimeout.String(), "--log-level", "warn")
}

// startEnv starts MinIO, Redis and an authenticating node, with an admin
// token made as an operator would (mamba auth token create --redis), and
// the honest and attacking tokens made through the API.
func startEnv(t *testing.T) *env {
	t.Helper()
	e := &env{minio: testserver.StartMinIO(t), redis: testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})}
	bucket := e.minio.CreateBucket(t, "mamba-adversary")
	e.bin = testserver.MambaBinary(t)
	e.rdb = redis.NewClient(&redis.Options{Addr: e.redis.Addr})
	t.Cleanup(func() { e.rdb.Close() })
	out, err := exec.Command(e.bin, "auth", "token", "create", "--redis", "redis://"+e.redis.Addr+"/0",
		"--name", "root", "--scope", "admin").Output()
	if err != nil {
		t.Fatalf("mamba auth token create --redis: %v", err)
	}
	e.tokens.Admin = strings.TrimSpace(string(out))
	e.node = testserver.StartMambaWith(t, e.minio, e.redis, bucket, "adversary", testserver.MambaOptions{Binary: e.bin}, nodeArgs()...)
	if e.admin, err = client.New(e.node.URL, client.WithToken(e.tokens.Admin)); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	mk := func(name string, scopes ...string) string {
		raw, _, err := e.admin.CreateToken(ctx, name, scopes)
		if err != nil {
			t.Fatalf("create token %s: %v", name, err)
		}
		return raw
	}
	e.tokens.HonestProduce = mk("honest-producer", "produce:honest-*")
	e.tokens.HonestConsume = mk("honest-consumer", "consume:honest-*", "group:honest-*")
	e.tokens.Attacker = mk("attacker", "produce:attack-*", "consume:attack-*", "group:attack-*")
	e.tokens.Narrow = mk("narrow", "consume:nothing-*")
	e.tokens.Revoked = mk("revoked", "admin")
	id := strings.SplitN(e.tokens.Revoked, "_", 3)[1]
	if err := e.admin.RevokeToken(ctx, id); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if _, err := e.admin.CreateTopic(ctx, honestTopic, 2); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"attack-a", "attack-b", "attack-c"} {
		if _, err := e.admin.CreateTopic(ctx, name, 1); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// as returns an attacking client with the token given.
func (e *env) as(token string) Client { return Client{URL: e.node.URL, Token: token} }

// attack is one abuse and what it may cost.
type attack struct {
	name string
	// outage runs the attack without honest clients and without the
	// probe's bounds: it stops the node's dependencies on purpose, so
	// everyone gets 503 and Redis does not answer for a while.
	outage bool
	// pingBound replaces maxPingLatency for an attack that makes Redis
	// run a script of documented, bounded cost.
	pingBound time.Duration
	// quietHonest also requires that no honest request was answered 429:
	// the attack is refused by limits of the attacker's own token, or
	// fills the memory budget, whose headroom for small requests keeps
	// the honest clients' small ones going.
	quietHonest bool
	run         func(ctx context.Context, t *testing.T, e *env)
}

// TestAttacks runs every attack against a freshly restarted node (so that
// VmHWM is the attack's own peak) while honest clients produce and
// consume, and checks the four promises of the package documentation.
func TestAttacks(t *testing.T) {
	e := startEnv(t)
	for i, a := range attacks() {
		t.Run(a.name, func(t *testing.T) {
			if i > 0 {
				e.node.Stop()
				if err := e.node.Start(); err != nil {
					t.Fatal(err)
				}
			}
			runAttack(t, e, a, i)
		})
	}
}

func runAttack(t *testing.T, e *env, a attack, run int) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	pid := e.node.Pid()
	rss := SampleRSS(pid, 10*time.Millisecond)
	honestRead, err := client.New(e.node.URL, client.WithToken(e.tokens.HonestConsume), client.WithRetries(1, time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	probe := StartProbe(50*time.Millisecond, map[string]func(context.Context) error{
		"redis PING": func(ctx context.Context) error { return e.rdb.Ping(ctx).Err() },
		"describe": func(ctx context.Context) error {
			_, err := honestRead.DescribeTopic(ctx, honestTopic)
			return err
		},
	})
	var honest *Honest
	if !a.outage {
		honest, err = StartHonest(ctx, e.node.URL, honestTopic, 2, 3, e.tokens.HonestProduce, e.tokens.HonestConsume, fmt.Sprintf("run%d", run))
		if err != nil {
			t.Fatal(err)
		}
		if err := honest.WaitAcked(ctx, 10); err != nil {
			t.Fatalf("before the attack: %v", err)
		}
	}
	a.run(ctx, t, e)
	if honest != nil {
		// The honest clients go on a little past the attack, so what
		// they send right after it is checked too.
		if err := honest.WaitAcked(ctx, honest.AckedCount()+10); err != nil {
			t.Errorf("after the attack: %v", err)
		}
		rep, err := honest.Stop(ctx)
		if err != nil {
			t.Fatalf("honest clients: %v", err)
		}
		t.Logf("honest clients: %v", rep)
		checkHonest(t, rep)
		if a.quietHonest && rep.TooMany > 0 {
			t.Errorf("honest clients got %d answers 429 while only the attacker was over a limit", rep.TooMany)
		}
	}
	if stats := probe.Stop(); !a.outage {
		checkProbe(t, stats, cmp.Or(a.pingBound, maxPingLatency))
	}
	maxRSS, samples, rerr := rss.Stop()
	mem, err := ReadProcMemory(pid)
	if rerr != nil || err != nil {
		t.Fatalf("read the node's memory: %v, %v", rerr, err)
	}
	bound := limits.Bound() + RSSAllowance
	t.Logf("node memory: max VmRSS %d MiB over %d samples, VmHWM %d MiB; bound %d MiB (%d MiB configured + %d MiB allowance)",
		maxRSS/MiB, samples, mem.HWM/MiB, bound/MiB, limits.Bound()/MiB, RSSAllowance/MiB)
	if maxRSS > bound || mem.HWM > bound {
		t.Errorf("the node's memory passed its bound: max VmRSS %d MiB, VmHWM %d MiB, bound %d MiB", maxRSS/MiB, mem.HWM/MiB, bound/MiB)
	}
}

func checkHonest(t *testing.T, r HonestReport) {
	t.Helper()
	if r.Lost > 0 || r.Misplaced > 0 || r.Unacked > 0 {
		t.Errorf("honest records lost, misplaced or read unacknowledged: %v", r)
	}
	if r.Acked == 0 {
		t.Error("no honest record was acknowledged")
	}
	if r.Server5xx > 0 {
		t.Errorf("honest clients got %d answers 5xx", r.Server5xx)
	}
	for i, err := range append(r.ProduceErrors, r.FetchErrors...) {
		if i == 5 {
			break
		}
		t.Errorf("honest client failed: %v", err)
	}
}

func checkProbe(t *testing.T, stats map[string]ProbeStats, pingBound time.Duration) {
	t.Helper()
	for name, bound := range map[string]time.Duration{"redis PING": pingBound, "describe": maxDescribeLatency} {
		s := stats[name]
		t.Logf("probe %s: %v (bound %v)", name, s, bound)
		switch {
		case s.Calls == 0:
			t.Errorf("probe %s never completed a call", name)
		case s.Failures > 0:
			t.Errorf("probe %s failed %d times, first: %v", name, s.Failures, s.FirstErr)
		case s.Max > bound:
			t.Errorf("probe %s took %v, over its bound of %v", name, s.Max, bound)
		}
	}
}

// expect fails the test unless a has the status and code given.
func expect(t *testing.T, what string, a Answer, err error, status int, code string) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v, want %d %s", what, err, status, code)
		return
	}
	if !a.Is(status, code) {
		t.Errorf("%s: %v, want %d %s", what, a, status, code)
		return
	}
	t.Logf("%s: %v in %v", what, a, a.Elapsed.Round(time.Millisecond))
}
