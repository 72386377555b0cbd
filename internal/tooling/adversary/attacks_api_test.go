package adversary

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mambamq/mamba/internal/wire"
)

// wideTopics are the topics of 10,000 partitions (the most a topic may
// have) that groupJoinCaps joins.
const wideTopics = 5

// groupJoinCaps joins, while the probe watches Redis, a group with five
// topics of 10,000 partitions (50,000 partitions, once a 9.8 s stall of
// Redis) and with 101 topics: both over the caps, 400, and nothing
// created. Then a join at the cap (one topic of 10,000 partitions) is
// accepted, the probe bounding how long its rebalance holds Redis, and a
// second member whose topic would take the group past 10,000 partitions
// gets 400.
func groupJoinCaps(ctx context.Context, t *testing.T, e *env) {
	c := e.as(e.tokens.Attacker)
	var names []string
	for i := range wideTopics {
		name := fmt.Sprintf("attack-wide-%d", i)
		if _, err := e.admin.CreateTopic(ctx, name, 10_000); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		names = append(names, name)
	}
	join := func(what string, topics []string, status int, code string) Answer {
		body, _ := json.Marshal(map[string]any{"topics": topics})
		a, err := c.Do(ctx, http.MethodPost, "/v1/groups/attack-grp/members", jsonType, body)
		expect(t, what, a, err, status, code)
		return a
	}
	join("join with 5 topics of 10,000 partitions", names, http.StatusBadRequest, wire.CodeInvalidRequest)
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("attack-t%d", i)
	}
	join("join with 101 topics", many, http.StatusBadRequest, wire.CodeInvalidRequest)
	if a, err := c.Do(ctx, http.MethodGet, "/v1/groups/attack-grp", "", nil); err != nil || a.Status != http.StatusNotFound {
		t.Errorf("the refused joins left a group behind: %v, %v", a, err)
	}
	a := join("join with one topic of 10,000 partitions", names[:1], http.StatusCreated, "")
	var joined struct {
		MemberID   string `json:"member_id"`
		SessionKey string `json:"session_key"`
	}
	if err := json.Unmarshal(a.Body, &joined); err != nil || joined.MemberID == "" {
		t.Fatalf("join answer of %d bytes: %v", len(a.Body), err)
	}
	join("second member past 10,000 partitions", names[1:2], http.StatusBadRequest, wire.CodeInvalidRequest)
	a, err := c.Do(ctx, http.MethodDelete, "/v1/groups/attack-grp/members/"+joined.MemberID, "", nil, sessionHeader, joined.SessionKey)
	expect(t, "leave", a, err, http.StatusNoContent, "")
}

// sessionHeader carries a group member's session key; someMember and
// someSessionKey are well-formed and belong to no member.
const (
	sessionHeader  = "Mamba-Session-Key"
	someMember     = "01J8ZK3V4T9M2Q6X7YBH5W0NRS"
	someSessionKey = "9f86d081884c7d659a2feaa0c55ad015"
)

// hostileNames sends names that would escape a key's hash tag or an
// object key's directory, in paths and in body fields, with the admin
// token so that only name validation can refuse them.
func hostileNames(ctx context.Context, t *testing.T, e *env) {
	c := e.as(e.tokens.Admin)
	for _, name := range []string{".", "..", "{honest-load}", "a/b", "a}b{"} {
		body, _ := json.Marshal(map[string]any{"name": name, "partitions": 1})
		a, err := c.Do(ctx, http.MethodPost, "/v1/topics", jsonType, body)
		expect(t, fmt.Sprintf("create topic %q", name), a, err, http.StatusBadRequest, wire.CodeInvalidRequest)
	}
	for _, path := range []string{"/v1/topics/%2E%2E/records", "/v1/topics/%7Bhonest-load%7D/records"} {
		a, err := c.Do(ctx, http.MethodPost, path, jsonType, []byte(`{"records":[{"value":"x"}]}`))
		expect(t, "produce to "+path, a, err, http.StatusNotFound, wire.CodeTopicNotFound)
	}
	a, err := c.Do(ctx, http.MethodPost, "/v1/groups/%7Bg%7D/members", jsonType, []byte(`{"topics":["attack-a"]}`))
	expect(t, "join group {g}", a, err, http.StatusBadRequest, wire.CodeInvalidRequest)
	for _, topic := range []string{"..", ".", "{honest-load}", "attack-a}x{"} {
		q, _ := json.Marshal(topic)
		for _, req := range []struct{ what, path, body string }{
			{"join", "/v1/groups/attack-g/members", `{"topics":[` + string(q) + `]}`},
			{"commit", "/v1/groups/attack-g/offsets", `{"member_id":"` + someMember + `","offsets":[{"topic":` + string(q) + `,"partition":0,"offset":0,"lease":1}]}`},
			{"reset", "/v1/groups/attack-g/offsets/reset", `{"topic":` + string(q) + `,"to":"earliest"}`},
		} {
			a, err := c.Do(ctx, http.MethodPost, req.path, jsonType, []byte(req.body), sessionHeader, someSessionKey)
			what := fmt.Sprintf("%s naming topic %q in the body", req.what, topic)
			expect(t, what, a, err, http.StatusBadRequest, wire.CodeInvalidRequest)
			if !strings.Contains(a.Message, fmt.Sprintf("%q", topic)) {
				t.Errorf("%s: refused for another reason: %s", what, a.Message)
			}
		}
	}
}

// longPollFlood opens four times the node's long-poll cap of fetches
// waiting at the end of an idle partition. Each is answered 200 (no
// records): those within the cap when their wait ends, the others after
// at most about a second, so the flood holds no more than the cap.
func longPollFlood(ctx context.Context, t *testing.T, e *env) {
	c := e.as(e.tokens.Attacker)
	path := fmt.Sprintf("/v1/topics/attack-b/partitions/0/records?offset=%d&wait_ms=%d", highWatermark(ctx, t, e, "attack-b"), maxWait.Milliseconds())
	const polls = 4 * maxLongPolls
	var wg sync.WaitGroup
	var early atomic.Int64
	for i := range polls {
		wg.Go(func() {
			a, err := c.Do(ctx, http.MethodGet, path, "", nil)
			if err != nil || a.Status != http.StatusOK {
				expect(t, fmt.Sprintf("long poll %d", i), a, err, http.StatusOK, "")
				return
			}
			if a.Elapsed < maxWait/2 {
				early.Add(1)
			}
		})
	}
	wg.Wait()
	// The honest consumers' long polls count against the cap too, so at
	// least polls - maxLongPolls are answered early.
	t.Logf("%d of %d long polls answered early (cap %d)", early.Load(), polls, maxLongPolls)
	if n := early.Load(); n < polls-maxLongPolls {
		t.Errorf("%d long polls answered before their wait ended, want at least %d (cap %d)", n, polls-maxLongPolls, maxLongPolls)
	}
}

// idempotencyKeyFlood produces small records, each with a new
// Idempotency-Key, from many connections: every key costs Redis memory
// for the dedup window. Each is answered 200 or 429; the suite reports
// what the flood added to Redis.
func idempotencyKeyFlood(ctx context.Context, t *testing.T, e *env) {
	c := e.as(e.tokens.Attacker)
	before, err := e.rdb.DBSize(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	requests := 1000
	if long() {
		requests = 20_000
	}
	var wg sync.WaitGroup
	var ok, limited atomic.Int64
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				a, err := c.Do(ctx, http.MethodPost, "/v1/topics/attack-a/records", jsonType,
					[]byte(`{"records":[{"value":"k"}]}`), "Idempotency-Key", fmt.Sprintf("flood-%d-%d", time.Now().UnixNano(), i))
				switch {
				case err == nil && a.Status == http.StatusOK:
					ok.Add(1)
				case err == nil && a.Status == http.StatusTooManyRequests:
					limited.Add(1)
				default:
					expect(t, fmt.Sprintf("produce %d with a new key", i), a, err, http.StatusOK, "")
				}
			}
		})
	}
	for i := range requests {
		next <- i
	}
	close(next)
	wg.Wait()
	after, err := e.rdb.DBSize(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	mem, _ := e.rdb.Info(ctx, "memory").Result()
	t.Logf("%d keys: %d answered 200, %d 429; Redis keys %d -> %d; %s", requests, ok.Load(), limited.Load(), before, after,
		infoField(mem, "used_memory_human"))
}

// infoField returns name:value from an INFO answer.
func infoField(info, name string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return name + " " + v
		}
	}
	return name + " unknown"
}

// serverErrorBodies stops MinIO and produces, then stops Redis and
// describes a topic: each 503 must be the fixed text, naming no object
// key, bucket, address or Redis detail, and carry a request id.
func serverErrorBodies(ctx context.Context, t *testing.T, e *env) {
	c := e.as(e.tokens.Attacker)
	e.minio.Kill()
	a, err := c.Do(ctx, http.MethodPost, "/v1/topics/attack-a/records", jsonType, []byte(`{"records":[{"value":"x"}]}`))
	if err := e.minio.Start(); err != nil {
		t.Fatal(err)
	}
	expect(t, "produce while the bucket is down", a, err, http.StatusServiceUnavailable, wire.CodeUnavailable)
	checkFixedText(t, a, e)
	e.redis.Kill()
	a, err = c.Do(ctx, http.MethodGet, "/v1/topics/attack-b", "", nil)
	if err := e.redis.Start(); err != nil {
		t.Fatal(err)
	}
	expect(t, "describe while Redis is down", a, err, http.StatusServiceUnavailable, wire.CodeUnavailable)
	checkFixedText(t, a, e)
}

// checkFixedText fails the test if a 5xx message names anything internal.
func checkFixedText(t *testing.T, a Answer, e *env) {
	t.Helper()
	for _, leak := range []string{"chunks/", "mamba-adversary", e.minio.Addr, e.redis.Addr, "127.0.0.1", "redis", "dial",
		"connection refused", "{", "mamba:"} {
		if strings.Contains(strings.ToLower(a.Message), strings.ToLower(leak)) {
			t.Errorf("the %d message %q carries %q", a.Status, a.Message, leak)
		}
	}
	if a.RequestID == "" || a.Header.Get("X-Request-Id") != a.RequestID {
		t.Errorf("the %d carries request id %q, header %q", a.Status, a.RequestID, a.Header.Get("X-Request-Id"))
	}
}

// fetchFloodRecords is how many 1 MiB records fetchFlood writes.
const fetchFloodRecords = 24

// fetchFloodReaders is how many fetches fetchFlood runs at once: four in
// CI, eight in the long run.
func fetchFloodReaders() int {
	if long() {
		return 8
	}
	return 4
}

// fetchFlood writes 24 MiB to a partition and has several fetches read
// all of it at once, each with max_bytes 32 MiB (the node's cap): each
// fetch is answered 200, with all the records or, once the answers fill
// the memory budget, fewer, or 429 overloaded; at least one gets all of
// them, and the node's memory stays within its bound.
func fetchFlood(ctx context.Context, t *testing.T, e *env) {
	c := e.as(e.tokens.Attacker)
	from := highWatermark(ctx, t, e, "attack-b")
	body := []byte(`{"records":[{"value":"` + strings.Repeat("f", MiB-64) + `"}]}`)
	for i := range fetchFloodRecords {
		a, err := c.Do(ctx, http.MethodPost, "/v1/topics/attack-b/records", jsonType, body)
		if err != nil || a.Status != http.StatusOK {
			expect(t, fmt.Sprintf("produce 1 MiB record %d", i), a, err, http.StatusOK, "")
			return
		}
	}
	path := fmt.Sprintf("/v1/topics/attack-b/partitions/0/records?offset=%d&max_records=%d&max_bytes=%d", from, fetchFloodRecords, 32*MiB)
	var wg sync.WaitGroup
	var whole atomic.Int64
	for i := range fetchFloodReaders() {
		wg.Go(func() {
			a, err := c.Do(ctx, http.MethodGet, path, "", nil)
			switch {
			case err == nil && a.Is(http.StatusTooManyRequests, wire.CodeOverloaded):
			case err != nil || a.Status != http.StatusOK || len(a.Body) < fetchFloodRecords*(MiB-64):
				expect(t, fmt.Sprintf("fetch %d of 24 MiB (%d bytes answered)", i, len(a.Body)), a, err, http.StatusOK, "")
			default:
				whole.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("%d of %d fetches answered all 24 MiB; the others fewer records (the budget shrinks an answer to fit) or 429 overloaded",
		whole.Load(), fetchFloodReaders())
	if whole.Load() == 0 {
		t.Error("no fetch was answered all the records")
	}
}
