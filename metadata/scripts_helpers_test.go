package metadata_test

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/metadata"
)

// The script tests run every Lua script in scripts/ on miniredis, whose
// Lua engine is gopher-lua, through the package's API, and check the
// reply and every key the call wrote or deleted. The tests in
// metadata_test.go and the others run the same scripts on a real
// redis-server.

// dedupWindow is the dedup window of the stores under test.
const dedupWindow = time.Minute

// newMiniStore returns a Store on a fresh miniredis, its scripts loaded.
func newMiniStore(t *testing.T) (*metadata.Store, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	s := metadata.New(rdb, metadata.Options{DedupWindow: dedupWindow})
	if err := s.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, mr
}

// keyState renders every key of mr as one string per key: its value (hash
// fields, set and sorted set members sorted) and its TTL when it has one.
func keyState(t *testing.T, mr *miniredis.Miniredis) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range mr.Keys() {
		var v string
		switch typ := mr.Type(k); typ {
		case "string":
			v, _ = mr.Get(k)
		case "hash":
			fields, _ := mr.HKeys(k)
			slices.Sort(fields)
			var parts []string
			for _, f := range fields {
				parts = append(parts, f+"="+mr.HGet(k, f))
			}
			v = strings.Join(parts, " ")
		case "set":
			members, _ := mr.Members(k)
			v = strings.Join(members, " ")
		case "zset":
			members, _ := mr.ZMembers(k)
			var parts []string
			for _, m := range members {
				score, _ := mr.ZScore(k, m)
				parts = append(parts, strconv.FormatFloat(score, 'f', -1, 64)+":"+m)
			}
			v = strings.Join(parts, " ")
		default:
			t.Fatalf("key %s has unexpected type %s", k, typ)
		}
		if ttl := mr.TTL(k); ttl > 0 {
			v += fmt.Sprintf(" ttl=%v", ttl)
		}
		out[k] = v
	}
	return out
}

// gone marks a deleted key in a changes map.
const gone = "<deleted>"

// changes returns the keys whose state differs from before: their new
// state, or gone.
func changes(t *testing.T, mr *miniredis.Miniredis, before map[string]string) map[string]string {
	t.Helper()
	after := keyState(t, mr)
	out := map[string]string{}
	for k, v := range after {
		if before[k] != v {
			out[k] = v
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out[k] = gone
		}
	}
	return out
}

// checkChanges fails the test unless the keys changed since before are
// exactly want.
func checkChanges(t *testing.T, mr *miniredis.Miniredis, before, want map[string]string) {
	t.Helper()
	got := changes(t, mr, before)
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
