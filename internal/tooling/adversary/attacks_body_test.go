package adversary

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mambamq/mamba/internal/wire"
)

const (
	jsonType   = "application/json"
	binaryType = "application/vnd.mamba.v1+binary"
)

// attacks is the suite, in the order it runs.
func attacks() []attack {
	return []attack{
		{name: "header-flood", run: headerFlood},
		{name: "empty-records", quietHonest: true, run: emptyRecords},
		{name: "stalled-bodies", run: stalledBodies},
		{name: "chunked-bodies", run: chunkedBodies},
		{name: "group-join-caps", pingBound: joinPingLatency, run: groupJoinCaps},
		{name: "hostile-names", run: hostileNames},
		{name: "long-poll-flood", run: longPollFlood},
		{name: "fetch-flood", quietHonest: true, run: fetchFlood},
		{name: "idempotency-key-flood", run: idempotencyKeyFlood},
		{name: "produce-quota", quietHonest: true, run: quotaAttack},
		{name: "tokens", run: tokenAttack},
		{name: "5xx-bodies", outage: true, run: serverErrorBodies},
	}
}

// headerRecords is a JSON produce body of n records, each with perRecord
// headers of unique three-character names (62^3 names exist).
func headerRecords(n, perRecord int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b bytes.Buffer
	b.WriteString(`{"records":[`)
	for r := range n {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"value":"v","headers":{`)
		for h := range perRecord {
			if h > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('"')
			b.WriteByte(alphabet[h%62])
			b.WriteByte(alphabet[h/62%62])
			b.WriteByte(alphabet[h/(62*62)%62])
			b.WriteString(`":""`)
		}
		b.WriteString(`}}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// headerFlood sends, while honest producers use another topic, the body
// that once failed every request sharing its chunk: 7 records of 149,000
// unique header names (1,043,000 headers, each record just under 1 MiB),
// which is within every limit and must be committed without failing
// anyone; and the same with 8 records, over the 1,048,576 headers a
// request may hold, which must be refused alone with 413.
//
// The 7 records go with ack=buffered, so that their 202 says they are in
// the open chunk; two records to a third topic follow at once, within the
// flush interval, one with ack=buffered (once answered 202 and then lost
// with the chunk) and one durable (once answered 500): both must be
// committed, and so must the flood.
func headerFlood(ctx context.Context, t *testing.T, e *env) {
	c := e.as(e.tokens.Attacker)
	within, over := headerRecords(7, 149_000), headerRecords(8, 149_000)
	fromA, fromC := highWatermark(ctx, t, e, "attack-a"), highWatermark(ctx, t, e, "attack-c")
	var wg sync.WaitGroup
	wg.Go(func() {
		a, err := c.Do(ctx, http.MethodPost, "/v1/topics/attack-b/records", jsonType, over)
		expect(t, fmt.Sprintf("8 records of 149,000 headers (%d bytes)", len(over)), a, err, http.StatusRequestEntityTooLarge, wire.CodePayloadTooLarge)
	})
	a, err := c.Do(ctx, http.MethodPost, "/v1/topics/attack-a/records?ack=buffered", jsonType, within)
	expect(t, fmt.Sprintf("7 records of 149,000 headers (%d bytes), ack=buffered", len(within)), a, err, http.StatusAccepted, "")
	wg.Go(func() {
		a, err := c.Do(ctx, http.MethodPost, "/v1/topics/attack-c/records?ack=buffered", jsonType, []byte(`{"records":[{"value":"buffered-beside-the-flood"}]}`))
		expect(t, "ack=buffered record right after the flood", a, err, http.StatusAccepted, "")
	})
	wg.Go(func() {
		a, err := c.Do(ctx, http.MethodPost, "/v1/topics/attack-c/records", jsonType, []byte(`{"records":[{"value":"durable-beside-the-flood"}]}`))
		expect(t, "durable record right after the flood", a, err, http.StatusOK, "")
	})
	wg.Wait()
	a, err = c.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/topics/attack-c/partitions/0/records?offset=%d&wait_ms=5000", fromC), "", nil)
	for _, v := range []string{"buffered-beside-the-flood", "durable-beside-the-flood"} {
		if err != nil || a.Status != http.StatusOK || !bytes.Contains(a.Body, []byte(`"`+v+`"`)) {
			t.Errorf("%s is not in attack-c: %v, %v: %.300s", v, a, err, a.Body)
		}
	}
	if hw := highWatermark(ctx, t, e, "attack-a"); hw != fromA+7 {
		t.Errorf("attack-a's high watermark is %d after the flood, want %d", hw, fromA+7)
	}
}

// expectRefused is expect for a request the node may refuse for itself
// (status and code) or, when the memory budget is full, with 429
// overloaded.
func expectRefused(t *testing.T, what string, a Answer, err error, status int, code string) {
	t.Helper()
	if err == nil && a.Is(http.StatusTooManyRequests, wire.CodeOverloaded) {
		t.Logf("%s: %v in %v", what, a, a.Elapsed.Round(time.Millisecond))
		return
	}
	expect(t, what, a, err, status, code)
}

// highWatermark returns partition 0's high watermark of topic.
func highWatermark(ctx context.Context, t *testing.T, e *env, topic string) int64 {
	t.Helper()
	d, err := e.admin.DescribeTopic(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	return d.PartitionStats[0].HighWatermark
}

// jsonFloods is how many 16 MiB JSON bodies emptyRecords sends at once:
// three in the long run, two in CI, where decoding each takes seconds of
// CPU.
func jsonFloods() int {
	if long() {
		return 3
	}
	return 2
}

// emptyRecords sends 16 MiB JSON bodies of empty records at once (5.6
// million records each, over the 1,048,576 a request may hold) and a
// binary body of exactly 1,048,576 empty records (5 MiB, within the count
// but, at 284 bytes a record in memory, over the node's whole buffer).
func emptyRecords(ctx context.Context, t *testing.T, e *env) {
	c := e.as(e.tokens.Attacker)
	var js bytes.Buffer
	js.WriteString(`{"records":[{}`)
	for js.Len() < int(limits.MaxRequestBytes)-8 {
		js.WriteString(`,{}`)
	}
	js.WriteString(`]}`)
	bin := wire.AppendProduceRequest(nil, make([]wire.ProduceRecord, wire.MaxRecords))
	var wg sync.WaitGroup
	for i := range jsonFloods() {
		wg.Go(func() {
			a, err := c.Do(ctx, http.MethodPost, "/v1/topics/attack-a/records", jsonType, js.Bytes())
			expectRefused(t, fmt.Sprintf("JSON body %d: %d bytes of empty records", i, js.Len()), a, err, http.StatusRequestEntityTooLarge, wire.CodePayloadTooLarge)
		})
	}
	wg.Go(func() {
		a, err := c.Do(ctx, http.MethodPost, "/v1/topics/attack-a/records", binaryType, bin)
		expectRefused(t, fmt.Sprintf("binary body of %d empty records (%d bytes)", wire.MaxRecords, len(bin)), a, err,
			http.StatusRequestEntityTooLarge, wire.CodePayloadTooLarge)
	})
	wg.Wait()
}

// stalledConns is how many connections stalledBodies opens.
const stalledConns = 40

// stalledBodies opens 40 connections that announce a 16 MiB body, send
// 1 MiB of it and stop. Those the attacker's produce_bytes quota (the
// node's default, 64 MiB/s, charged on Content-Length before the body is
// read) lets in must get 408 within the body read timeout (plus slack),
// holding no more than the bytes that came; the others 429
// quota_exceeded, as soon as their body (read and dropped) stalls for the
// body read timeout. In the long run, a body that trickles a byte
// at a time, never idle for the read timeout, must still get 408 at the
// whole-body limit (2 minutes).
func stalledBodies(ctx context.Context, t *testing.T, e *env) {
	c := e.as(e.tokens.Attacker)
	prefix := append([]byte(`{"records":[{"value":"`), bytes.Repeat([]byte("x"), MiB-22)...)
	head := "POST /v1/topics/attack-a/records HTTP/1.1\r\nContent-Type: " + jsonType +
		"\r\nContent-Length: " + strconv.Itoa(int(limits.MaxRequestBytes))
	var wg sync.WaitGroup
	var timedOut, overQuota atomic.Int64
	for i := range stalledConns {
		wg.Go(func() {
			a, err := c.Raw(ctx, head, Stall(prefix))
			if err == nil && a.Elapsed > bodyReadTimeout+5*time.Second {
				t.Errorf("stalled body %d: answered %v after %v, body read timeout %v", i, a, a.Elapsed, bodyReadTimeout)
			}
			switch {
			case err == nil && a.Is(http.StatusTooManyRequests, wire.CodeQuotaExceeded):
				overQuota.Add(1)
			case err == nil && a.Is(http.StatusRequestTimeout, wire.CodeRequestTimeout):
				timedOut.Add(1)
			default:
				expect(t, fmt.Sprintf("stalled body %d (1 MiB of 16 MiB)", i), a, err, http.StatusRequestTimeout, wire.CodeRequestTimeout)
			}
		})
	}
	if long() {
		wg.Go(func() {
			a, err := c.Raw(ctx, head, Trickle(prefix, bodyReadTimeout/2))
			expect(t, "trickling body", a, err, http.StatusRequestTimeout, wire.CodeRequestTimeout)
		})
	}
	wg.Wait()
	t.Logf("%d stalled bodies answered 408, %d 429 quota_exceeded", timedOut.Load(), overQuota.Load())
	if timedOut.Load() == 0 {
		t.Error("no stalled body was let in to time out")
	}
}

// chunkedBodies sends bodies without Content-Length, which no early
// check sees: a 17 MiB chunked body must get 413 once 16 MiB arrived, a
// chunked body that stalls 408, and a small chunked body is produced.
func chunkedBodies(ctx context.Context, t *testing.T, e *env) {
	c := e.as(e.tokens.Attacker)
	head := "POST /v1/topics/attack-a/records HTTP/1.1\r\nContent-Type: " + jsonType + "\r\nTransfer-Encoding: chunked"
	big := append([]byte(`{"records":[{"value":"`), bytes.Repeat([]byte("x"), 17*MiB)...)
	big = append(big, `"}]}`...)
	var wg sync.WaitGroup
	wg.Go(func() {
		a, err := c.Raw(ctx, head, Chunked(big, 64<<10))
		expect(t, "chunked body of 17 MiB", a, err, http.StatusRequestEntityTooLarge, wire.CodePayloadTooLarge)
	})
	wg.Go(func() {
		a, err := c.Raw(ctx, head, Stall([]byte("100000\r\n"+`{"records":[{"value":"`)))
		expect(t, "chunked body that stalls", a, err, http.StatusRequestTimeout, wire.CodeRequestTimeout)
	})
	wg.Go(func() {
		a, err := c.Raw(ctx, head, Chunked([]byte(`{"records":[{"value":"small"}]}`), 7))
		expect(t, "small chunked body", a, err, http.StatusOK, "")
	})
	wg.Wait()
}
