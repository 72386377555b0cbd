package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/wire"
)

// produced is what a future said about one record.
type produced struct {
	key, value string
	res        client.Result
}

// checkReadBack reads topic and checks that it holds exactly the acked
// records, each once, at the partition and offset its future reported,
// with its key, value and headers.
func checkReadBack(t *testing.T, c *client.Client, topic string, acked []produced) map[int32][]client.ConsumedRecord {
	t.Helper()
	got := readAll(t, c, topic)
	total := 0
	byPos := make(map[[2]int64]client.ConsumedRecord)
	for p, recs := range got {
		total += len(recs)
		for i, r := range recs {
			if r.Partition != p || r.Topic != topic {
				t.Fatalf("record %d of partition %d says %s/%d", i, p, r.Topic, r.Partition)
			}
			byPos[[2]int64{int64(p), r.Offset}] = r
		}
	}
	if total != len(acked) {
		t.Errorf("topic holds %d records, %d were acknowledged", total, len(acked))
	}
	for _, a := range acked {
		r, ok := byPos[[2]int64{int64(a.res.Partition), a.res.Offset}]
		if !ok {
			t.Fatalf("record %q acked at %d/%d is not there", a.value, a.res.Partition, a.res.Offset)
		}
		if string(r.Value) != a.value || string(r.Key) != a.key {
			t.Fatalf("at %d/%d: key %q value %q, want %q %q", a.res.Partition, a.res.Offset, r.Key, r.Value, a.key, a.value)
		}
	}
	return got
}

func TestProducerAsyncKeysFlushReadBack(t *testing.T) {
	node := startNode(t)
	c := newClient(t, node.URL)
	ctx := t.Context()
	const partitions = 4
	topic := createTopic(t, c, partitions)

	var handled sync.Mutex
	var handlerErrs []error
	p, err := c.NewProducer(client.WithMaxBatchRecords(50), client.WithErrorHandler(func(_ client.Record, err error) {
		handled.Lock()
		handlerErrs = append(handlerErrs, err)
		handled.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)

	const n = 2000
	futures := make([]*client.Future, n)
	keys := make([]string, n)
	ts := time.UnixMilli(1_700_000_000_000)
	for i := range n {
		keys[i] = "key-" + strconv.Itoa(i%37)
		futures[i] = p.ProduceAsync(client.Record{
			Topic:     topic,
			Key:       []byte(keys[i]),
			Value:     []byte("value-" + strconv.Itoa(i)),
			Headers:   []client.Header{{Name: "i", Value: []byte(strconv.Itoa(i))}, {Name: "i", Value: []byte("again")}},
			Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
		})
	}
	// A keyless record and one pinned to a partition.
	keyless := p.ProduceAsync(client.Record{Topic: topic, Value: []byte("no key")})
	pinned := p.ProduceAsync(client.Record{Topic: topic, Value: []byte("pinned"), Partition: new(int32(3))})
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	var acked []produced
	lastOffset := map[int32]int64{}
	for i, f := range futures {
		select {
		case <-f.Done():
		default:
			t.Fatalf("future %d is not done after Flush", i)
		}
		res, err := f.Result()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if want := wire.Partition([]byte(keys[i]), partitions); res.Partition != want || res.Topic != topic {
			t.Fatalf("record %d with key %q went to %s/%d, want partition %d", i, keys[i], res.Topic, res.Partition, want)
		}
		// Records of a partition are stored in the order produced.
		if last, ok := lastOffset[res.Partition]; ok && res.Offset <= last {
			t.Fatalf("record %d at offset %d of partition %d, after offset %d", i, res.Offset, res.Partition, last)
		}
		lastOffset[res.Partition] = res.Offset
		acked = append(acked, produced{keys[i], "value-" + strconv.Itoa(i), res})
	}
	for _, f := range []*client.Future{keyless, pinned} {
		res, err := f.Result()
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, produced{value: map[*client.Future]string{keyless: "no key", pinned: "pinned"}[f], res: res})
	}
	if r, _ := pinned.Result(); r.Partition != 3 {
		t.Fatalf("pinned record went to partition %d", r.Partition)
	}
	if len(handlerErrs) != 0 {
		t.Fatalf("error handler called: %v", handlerErrs)
	}
	got := checkReadBack(t, c, topic, acked)
	// Headers (repeated names, in order) and timestamps survive.
	for _, recs := range got {
		for _, r := range recs {
			if len(r.Headers) == 0 {
				continue
			}
			i, _ := strconv.Atoi(string(r.Headers[0].Value))
			if len(r.Headers) != 2 || r.Headers[1].Name != "i" || string(r.Headers[1].Value) != "again" || string(r.Value) != "value-"+strconv.Itoa(i) {
				t.Fatalf("record at %d/%d: headers %+v", r.Partition, r.Offset, r.Headers)
			}
			if !r.Timestamp.Equal(ts.Add(time.Duration(i) * time.Millisecond)) {
				t.Fatalf("record %d: timestamp %v", i, r.Timestamp)
			}
		}
	}
}

func TestProducerJSONAndAckBuffered(t *testing.T) {
	node := startNode(t)
	c := newClient(t, node.URL)
	ctx := t.Context()
	topic := createTopic(t, c, 2)

	jp, err := c.NewProducer(client.WithJSON())
	if err != nil {
		t.Fatal(err)
	}
	binary := []byte{0, 1, 2, 0xff, 0xfe}
	// The empty key is a key: it hashes to partition 1 of 2.
	res, err := jp.Produce(ctx, client.Record{Topic: topic, Key: []byte{}, Value: binary, Headers: []client.Header{{Name: "h", Value: binary}}})
	if err != nil {
		t.Fatal(err)
	}
	// Headers go as a list over JSON too: repeated names keep their order.
	repeated := []client.Header{{Name: "h", Value: []byte("2")}, {Name: "a"}, {Name: "h", Value: []byte{0xff}}}
	rres, err := jp.Produce(ctx, client.Record{Topic: topic, Value: binary, Headers: repeated, Partition: new(int32(1))})
	if err != nil {
		t.Fatalf("repeated header names over JSON: %v", err)
	}
	if res.Partition != 1 || res.Offset != 0 {
		t.Fatalf("JSON produce: %+v, want partition 1 offset 0", res)
	}
	if err := jp.Close(ctx); err != nil {
		t.Fatal(err)
	}

	bp, err := c.NewProducer(client.WithAckBuffered())
	if err != nil {
		t.Fatal(err)
	}
	bres, err := bp.Produce(ctx, client.Record{Topic: topic, Value: []byte("buffered"), Partition: new(int32(0))})
	if err != nil {
		t.Fatal(err)
	}
	if bres.Offset != -1 || bres.Partition != 0 {
		t.Fatalf("buffered ack: %+v, want partition 0 offset -1", bres)
	}
	if err := bp.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// The buffered record becomes readable after the node's flush.
	pc, err := c.NewPartitionConsumer(topic, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := pc.Fetch(ctx)
	if err != nil || len(recs) != 1 || string(recs[0].Value) != "buffered" {
		t.Fatalf("read buffered record: %v %v", recs, err)
	}
	pc, err = c.NewPartitionConsumer(topic, res.Partition, res.Offset, client.WithMaxWait(0))
	if err != nil {
		t.Fatal(err)
	}
	recs, err = pc.Fetch(ctx)
	if err != nil || len(recs) == 0 {
		t.Fatalf("read JSON record: %v %v", recs, err)
	}
	r := recs[0]
	if r.Key == nil || len(r.Key) != 0 || !bytes.Equal(r.Value, binary) || len(r.Headers) != 1 || !bytes.Equal(r.Headers[0].Value, binary) {
		t.Fatalf("JSON record read back as key %q value %q headers %+v", r.Key, r.Value, r.Headers)
	}
	pc, err = c.NewPartitionConsumer(topic, rres.Partition, rres.Offset, client.WithMaxWait(0))
	if err != nil {
		t.Fatal(err)
	}
	recs, err = pc.Fetch(ctx)
	if err != nil || len(recs) == 0 {
		t.Fatalf("read JSON record with repeated headers: %v %v", recs, err)
	}
	if got := recs[0].Headers; len(got) != len(repeated) ||
		got[0].Name != "h" || string(got[0].Value) != "2" || got[1].Name != "a" || len(got[1].Value) != 0 ||
		got[2].Name != "h" || !bytes.Equal(got[2].Value, []byte{0xff}) {
		t.Fatalf("repeated headers read back as %+v, want %+v in that order", got, repeated)
	}
}

func TestProducerClosed(t *testing.T) {
	node := startNode(t)
	c := newClient(t, node.URL)
	ctx := t.Context()
	topic := createTopic(t, c, 1)
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	f := p.ProduceAsync(client.Record{Topic: topic, Value: []byte("before")})
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Close delivered what was produced before it.
	if res, err := f.Result(); err != nil || res.Offset != 0 {
		t.Fatalf("record produced before Close: %+v %v", res, err)
	}
	if _, err := p.Produce(ctx, client.Record{Topic: topic, Value: []byte("after")}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Produce after Close: %v, want ErrClosed", err)
	}
	if err := p.ProduceAsync(client.Record{Topic: topic, Value: []byte("after")}).Err(); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("ProduceAsync after Close: %v, want ErrClosed", err)
	}
	if _, err := p.TryProduce(client.Record{Topic: topic, Value: []byte("after")}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("TryProduce after Close: %v, want ErrClosed", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Close while several goroutines produce: every future is done, with an
// offset or an error, and every acknowledged record is in the log once.
func TestProducerCloseRacesProduceAsync(t *testing.T) {
	node := startNode(t)
	c := newClient(t, node.URL)
	topic := createTopic(t, c, 3)
	// A small buffer makes producers block for space while Close runs.
	p, err := c.NewProducer(client.WithMaxBufferedBytes(8<<10), client.WithMaxBatchBytes(2<<10))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var futures []*client.Future
	values := map[*client.Future]string{}
	var wg sync.WaitGroup
	started := make(chan struct{}, 6)
	for w := range 6 {
		wg.Go(func() {
			for i := 0; ; i++ {
				v := fmt.Sprintf("w%d-%d", w, i)
				f := p.ProduceAsync(client.Record{Topic: topic, Key: []byte(v), Value: []byte(v)})
				mu.Lock()
				futures = append(futures, f)
				values[f] = v
				mu.Unlock()
				if i == 20 {
					started <- struct{}{}
				}
				if isDoneWith(f, client.ErrClosed) {
					return
				}
			}
		})
	}
	for range 6 {
		<-started
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	var acked []produced
	closed := 0
	for _, f := range futures {
		select {
		case <-f.Done():
		default:
			t.Fatal("a future is not done after Close returned")
		}
		res, err := f.Result()
		switch {
		case err == nil:
			acked = append(acked, produced{values[f], values[f], res})
		case errors.Is(err, client.ErrClosed):
			closed++
		default:
			t.Fatalf("record %s: %v", values[f], err)
		}
	}
	t.Logf("%d records acknowledged, %d refused with ErrClosed", len(acked), closed)
	if len(acked) == 0 || closed == 0 {
		t.Fatalf("want both acknowledged and refused records, got %d and %d", len(acked), closed)
	}
	checkReadBack(t, c, topic, acked)
}

// isDoneWith reports whether f is done with an error matching target,
// without waiting.
func isDoneWith(f *client.Future, target error) bool {
	select {
	case <-f.Done():
		return errors.Is(f.Err(), target)
	default:
		return false
	}
}

// Close whose context ends before delivery: every future is done with
// an error wrapping ErrClosed and the context's error.
func TestProducerCloseDeadline(t *testing.T) {
	node := startNode(t)
	c := newClient(t, node.URL)
	topic := createTopic(t, c, 1)
	gate := newGateProxy(t, node.URL)
	pc := newClient(t, gate.URL)
	p, err := pc.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	// Learn the topic's partitions first, so that the records below wait
	// on the blocked produce request.
	if _, err := p.Produce(t.Context(), client.Record{Topic: topic, Value: []byte("warm-up")}); err != nil {
		t.Fatal(err)
	}
	gate.close()
	var futures []*client.Future
	for i := range 10 {
		futures = append(futures, p.ProduceAsync(client.Record{Topic: topic, Value: []byte(strconv.Itoa(i))}))
	}
	gate.waitBlocked(t, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v, want DeadlineExceeded", err)
	}
	for i, f := range futures {
		select {
		case <-f.Done():
		default:
			t.Fatalf("future %d not done after Close", i)
		}
		if err := f.Err(); !errors.Is(err, client.ErrClosed) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("future %d: %v, want ErrClosed and DeadlineExceeded", i, err)
		}
	}
	gate.open()
}

func TestTryProduceBufferFull(t *testing.T) {
	node := startNode(t)
	c := newClient(t, node.URL)
	topic := createTopic(t, c, 2)
	gate := newGateProxy(t, node.URL)
	pc := newClient(t, gate.URL)
	const maxBuffered = 4 << 10
	p, err := pc.NewProducer(client.WithMaxBufferedBytes(maxBuffered), client.WithMaxBatchBytes(1<<10), client.WithLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(t.Context())
	if _, err := p.Produce(t.Context(), client.Record{Topic: topic, Value: []byte("warm-up")}); err != nil {
		t.Fatal(err)
	}
	// The node stops answering: the buffer fills and stays full.
	gate.close()
	value := bytes.Repeat([]byte("v"), 100)
	var futures []*client.Future
	var full error
	for i := 0; i < 1000 && full == nil; i++ {
		f, err := p.TryProduce(client.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: value})
		if err != nil {
			full = err
			break
		}
		futures = append(futures, f)
	}
	if !errors.Is(full, client.ErrBufferFull) {
		t.Fatalf("TryProduce with a full buffer: %v, want ErrBufferFull", full)
	}
	if n := len(futures); n == 0 || n*116 > maxBuffered {
		t.Fatalf("%d records of 116 bytes fit in a %d-byte buffer", n, maxBuffered)
	}
	// Produce blocks for space and gives up with its context.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := p.Produce(ctx, client.Record{Topic: topic, Value: value}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Produce with a full buffer: %v, want DeadlineExceeded", err)
	}
	// Once the node answers again everything is delivered.
	gate.open()
	for _, f := range futures {
		if err := f.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	f, err := p.TryProduce(client.Record{Topic: topic, Value: value})
	if err != nil {
		t.Fatalf("TryProduce after the buffer drained: %v", err)
	}
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
}

// A producer behind a proxy that answers 503 and 429 without passing
// requests on, and drops connections after the node committed the
// records: nothing is lost, nothing is duplicated, and a single
// partition keeps the order records were produced in.
func TestProducerRetriesFaultsExactlyOnce(t *testing.T) {
	node := startNode(t)
	c := newClient(t, node.URL)
	ordered := createTopic(t, c, 1)
	keyed := createTopic(t, c, 4)
	schedule := []fault{
		forward, unavailable, dropAfterNode, forward, unavailable, unavailable, forward, dropAfterNode,
		overloaded, forward, dropAfterNode, dropAfterNode, forward, unavailable, forward,
	}
	fp := newFaultProxy(t, node.URL, schedule, []fault{unavailable, dropAfterNode}, nil)
	pcl := newClient(t, fp.URL, client.WithRetries(3, 10*time.Millisecond, 200*time.Millisecond))
	p, err := pcl.NewProducer(client.WithMaxBatchRecords(7), client.WithLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	var futures []*client.Future
	var want []produced
	for i := range n {
		v := "o-" + strconv.Itoa(i)
		futures = append(futures, p.ProduceAsync(client.Record{Topic: ordered, Value: []byte(v)}))
		want = append(want, produced{value: v})
		k := "k-" + strconv.Itoa(i%11)
		v = "k-" + strconv.Itoa(i)
		futures = append(futures, p.ProduceAsync(client.Record{Topic: keyed, Key: []byte(k), Value: []byte(v)}))
		want = append(want, produced{key: k, value: v})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var ackedOrdered, ackedKeyed []produced
	for i, f := range futures {
		res, err := f.Result()
		if err != nil {
			t.Fatalf("record %q: %v", want[i].value, err)
		}
		want[i].res = res
		if res.Topic == ordered {
			ackedOrdered = append(ackedOrdered, want[i])
		} else {
			ackedKeyed = append(ackedKeyed, want[i])
		}
	}
	for _, f := range []fault{unavailable, overloaded, dropAfterNode, forward} {
		if fp.count(f) == 0 {
			t.Errorf("the proxy never injected %v", f)
		}
	}
	t.Logf("proxy: %d forwarded, %d 503, %d 429, %d dropped after the node answered",
		fp.count(forward), fp.count(unavailable), fp.count(overloaded), fp.count(dropAfterNode))

	got := checkReadBack(t, c, ordered, ackedOrdered)
	for i, r := range got[0] {
		if r.Offset != int64(i) || string(r.Value) != "o-"+strconv.Itoa(i) {
			t.Fatalf("offset %d holds %q (offset %d), want o-%d", i, r.Value, r.Offset, i)
		}
	}
	got = checkReadBack(t, c, keyed, ackedKeyed)
	// Per key (so per partition), values come in the order produced.
	last := map[string]int{}
	for _, recs := range got {
		for _, r := range recs {
			i, _ := strconv.Atoi(strings.TrimPrefix(string(r.Value), "k-"))
			if prev, ok := last[string(r.Key)]; ok && i <= prev {
				t.Fatalf("key %s: %s after k-%d", r.Key, r.Value, prev)
			}
			last[string(r.Key)] = i
		}
	}
}

// The ack handler sees every acknowledged async record once, with the
// result its future holds, and never a record produced with Produce.
func TestProducerAckHandler(t *testing.T) {
	node := startNode(t)
	c := newClient(t, node.URL)
	ctx := t.Context()
	topic := createTopic(t, c, 3)

	var mu sync.Mutex
	seen := map[string]client.Result{}
	p, err := c.NewProducer(client.WithMaxBatchRecords(40), client.WithAckHandler(func(r client.Record, res client.Result) {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := seen[string(r.Value)]; dup {
			t.Errorf("record %q acknowledged twice", r.Value)
		}
		seen[string(r.Value)] = res
	}))
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	futures := make([]*client.Future, n)
	for i := range n {
		futures[i] = p.ProduceAsync(client.Record{Topic: topic, Value: []byte("v" + strconv.Itoa(i))})
	}
	if _, err := p.Produce(ctx, client.Record{Topic: topic, Value: []byte("sync")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != n {
		t.Errorf("handler saw %d records, want %d", len(seen), n)
	}
	if _, ok := seen["sync"]; ok {
		t.Error("handler called for a record produced with Produce")
	}
	for i, f := range futures {
		res, err := f.Result()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if got := seen["v"+strconv.Itoa(i)]; got != res {
			t.Errorf("record %d: handler saw %+v, future says %+v", i, got, res)
		}
	}
	if _, err := c.NewProducer(client.WithAckHandler(nil)); err == nil {
		t.Error("WithAckHandler(nil) accepted")
	}
}
