package metadata_test

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
)

// The script tests (scripts_*_test.go) run every Lua script in scripts/
// through the package's API, in table tests, and check the reply and every
// key the call wrote or deleted. Each table runs on two engines: miniredis,
// whose Lua engine is gopher-lua and which is always there, and a real
// redis-server, which is skipped when it is not installed (unless
// CI=true). The same assertions on both keep the scripts within what both
// Lua engines agree on. Cases that need the clock to jump (an expired
// marker, lease or idempotency record) run on miniredis only.

// dedupWindow is the dedup window of the stores under test.
const dedupWindow = time.Minute

// scriptEnv is a Store on one engine.
type scriptEnv struct {
	s   *metadata.Store
	rdb *redis.Client
	mr  *miniredis.Miniredis // nil on a real redis-server
}

// wait moves the engine's clock by d, which only miniredis can do.
func (e *scriptEnv) wait(t *testing.T, d time.Duration) {
	t.Helper()
	if e.mr == nil {
		t.Skip("the case needs miniredis's clock to jump")
	}
	e.mr.FastForward(d)
}

type engine struct {
	name  string
	start func(*testing.T) *scriptEnv
}

var engines = []engine{
	{"miniredis", func(t *testing.T) *scriptEnv {
		mr := miniredis.RunT(t)
		return newScriptEnv(t, mr.Addr(), mr)
	}},
	{"redis-server", func(t *testing.T) *scriptEnv {
		r := testserver.StartRedis(t, testserver.RedisOptions{})
		return newScriptEnv(t, r.Addr, nil)
	}},
}

func newScriptEnv(t *testing.T, addr string, mr *miniredis.Miniredis) *scriptEnv {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	s := metadata.New(rdb, metadata.Options{DedupWindow: dedupWindow})
	if err := s.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &scriptEnv{s: s, rdb: rdb, mr: mr}
}

// runOnEngines runs fn for each case on each engine: one server per
// engine, emptied before each case.
func runOnEngines[C any](t *testing.T, cases []C, name func(C) string, fn func(*testing.T, *scriptEnv, C)) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			env := eng.start(t)
			for _, tc := range cases {
				t.Run(name(tc), func(t *testing.T) {
					if err := env.rdb.FlushAll(t.Context()).Err(); err != nil {
						t.Fatal(err)
					}
					fn(t, env, tc)
				})
			}
		})
	}
}

// keyState renders every key as one string per key: its value (hash
// fields, set and sorted set members sorted) and its TTL, to the second,
// when it has one.
func keyState(t *testing.T, rdb *redis.Client) map[string]string {
	t.Helper()
	ctx := t.Context()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		var v string
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			v = rdb.Get(ctx, k).Val()
		case "hash":
			h := rdb.HGetAll(ctx, k).Val()
			var parts []string
			for _, f := range slices.Sorted(maps.Keys(h)) {
				parts = append(parts, f+"="+h[f])
			}
			v = strings.Join(parts, " ")
		case "list":
			v = strings.Join(rdb.LRange(ctx, k, 0, -1).Val(), " ")
		case "set":
			members := rdb.SMembers(ctx, k).Val()
			slices.Sort(members)
			v = strings.Join(members, " ")
		case "zset":
			var parts []string
			for _, z := range rdb.ZRangeWithScores(ctx, k, 0, -1).Val() {
				parts = append(parts, strconv.FormatFloat(z.Score, 'f', -1, 64)+":"+z.Member.(string))
			}
			v = strings.Join(parts, " ")
		default:
			t.Fatalf("key %s has unexpected type %s", k, typ)
		}
		if ttl := rdb.PTTL(ctx, k).Val(); ttl > 0 {
			v += " ttl=" + ttl.Round(time.Second).String()
		}
		out[k] = v
	}
	return out
}

// gone marks a deleted key in a changes map.
const gone = "<deleted>"

// checkChanges fails the test unless the keys whose state differs from
// before are exactly want: their new state, or gone.
func checkChanges(t *testing.T, rdb *redis.Client, before, want map[string]string) {
	t.Helper()
	after := keyState(t, rdb)
	got := map[string]string{}
	for k, v := range after {
		if before[k] != v {
			got[k] = v
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			got[k] = gone
		}
	}
	if want == nil {
		want = map[string]string{}
	}
	if !maps.Equal(got, want) {
		for _, k := range slices.Sorted(maps.Keys(got)) {
			t.Logf("got  %s = %q", k, got[k])
		}
		for _, k := range slices.Sorted(maps.Keys(want)) {
			t.Logf("want %s = %q", k, want[k])
		}
		t.Error("the call changed other keys than expected")
	}
}

// keyOf is the session key the tests give a member when it joins.
func keyOf(member string) string { return "key-of-" + member }
