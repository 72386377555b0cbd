package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/internal/membudget"
	"github.com/mambamq/mamba/metadata"
)

// FuzzBatchPlan checks the promise admission makes to planning: every set
// of requests that place and accept admit is planned into batches and
// chunks that the chunk writer encodes, and decoding the chunks gives back
// every record at the slot its request was told. The input describes a
// node's flush size and codec and a run of produce requests (topic,
// idempotency key, record count, and a few record shapes repeated over the
// count, so that one input can reach the per-batch record and header limits
// without describing a million records byte by byte).
func FuzzBatchPlan(f *testing.F) {
	f.Add([]byte{0, 0, 1, 3, 1, 2, 0, 4, 0})
	f.Add([]byte{1, 1, 0x80 | 1, 0, 0x40 | 20, 0, 0, 0, 3, 0x41, 1, 0xc0 | 20, 2, 0, 5, 9, 1, 1})
	f.Add([]byte{2, 0, 0xc0 | 32, 1, 1, 0, 0x80 | 10, 0, 4, 0xc0 | 31, 1, 1, 0, 0x80 | 10, 0, 8, 2, 0x80 | 0x40 | 5, 0, 0})
	f.Add([]byte{3, 6, 0x42, 7, 2, 0, 0x80, 0, 0, 6, 0x43, 2, 0x3f, 0, 1, 0, 9, 0x42, 3, 0x22, 1, 0xff, 0, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := planInput{data: data}
		cfg := Config{NodeID: "fuzz", FlushBytes: 1024 << (in.next() % 21), MaxBufferedBytes: 1 << 40, MemoryBudget: 1 << 42,
			CacheBytes: 1 << 20, CatchUpCacheBytes: 4 << 20,
			FlushInterval: time.Hour, Codec: chunk.Codec(in.next() % 2)}
		n := planningNode(t, cfg)
		topics := []metadata.Topic{
			{Name: "a", ID: "ida", Partitions: 1},
			{Name: "b", ID: "idb", Partitions: 3},
			{Name: "c.long-topic_name", ID: "idc", Partitions: 70},
		}
		total := 0
		for req := 0; req < 12 && !in.done() && total < 3<<20; req++ {
			t := topics[int(in.next())%len(topics)]
			var key string
			if k := in.next(); k&1 == 1 {
				key = fmt.Sprintf("key-%d", k>>5)
			}
			records := in.records(t.Partitions)
			total += len(records)
			r := &produceReq{topic: t, idemKey: key, done: make(chan produceAnswer, 1), memory: n.budget.Start(membudget.Buffered)}
			if err := (ProduceRequest{Topic: t.Name, Records: records, Options: ProduceOptions{IdempotencyKey: key}}).Validate(); err != nil {
				continue
			}
			if err := n.place(r, records); err != nil {
				if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrInvalidRequest) && !errors.Is(err, ErrPartitionNotFound) {
					panic(fmt.Sprintf("admission refused with an error that is no client error: %v", err))
				}
				continue
			}
			if err := n.accept(r); err != nil {
				panic(fmt.Sprintf("accept: %v", err))
			}
		}
		n.mu.Lock()
		n.sealLocked()
		queue := n.sealQueue
		n.mu.Unlock()
		for _, pc := range queue {
			checkChunkPlan(n, pc)
		}
	})
}

// planningNode is a Node with only what place, accept and encode use: no
// bucket, no Redis, no pipeline, and a memory budget no input fills.
func planningNode(t *testing.T, cfg Config) *Node {
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg = cfg.withDefaults()
	ids, err := chunkid.NewGenerator(cfg.NodeID, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	budget := membudget.New(cfg.MemoryBudget, reg)
	return &Node{cfg: cfg, ids: ids, now: time.Now, sealSignal: make(chan struct{}, 1), budget: budget,
		metrics: newNodeMetrics(reg, newBatchCache(0, budget.Start(membudget.Cache)), newBatchCache(0, budget.Start(membudget.Cache)))}
}

// checkChunkPlan encodes one sealed chunk as upload does, then decodes it
// and checks every admitted record against the slot planning gave it.
func checkChunkPlan(n *Node, pc *pendingChunk) {
	pc.timer.Stop()
	data, err := n.encode(pc)
	if err != nil {
		panic(fmt.Sprintf("admitted requests did not encode: %v", err))
	}
	c, err := chunk.Decode(data)
	if err != nil {
		panic(fmt.Sprintf("the encoded chunk does not decode: %v", err))
	}
	infos := c.Batches()
	decoded := make([][]chunk.Record, len(infos))
	g := 0
	first := map[*topicPlan]int{} // each plan's first batch in the chunk
	for _, tp := range pc.plans {
		first[tp] = g
		for b, mb := range tp.batches {
			info := infos[g]
			if info.Topic != tp.topic.Name || info.Partition != mb.Partition || info.IdempotencyKey != mb.IdempotencyKey ||
				info.Records != mb.Records || info.Offset != mb.Offset || info.Length != mb.Length {
				panic(fmt.Sprintf("batch %d (%s #%d): directory %+v, plan %+v", g, tp.topic.Name, b, info, mb))
			}
			batch, err := c.Batch(g)
			if err != nil {
				panic(fmt.Sprintf("batch %d does not decode: %v", g, err))
			}
			decoded[g] = batch.Records
			g++
		}
	}
	if g != len(infos) {
		panic(fmt.Sprintf("chunk has %d batches, the plans %d", len(infos), g))
	}
	seen := make([][]bool, len(infos))
	for i := range seen {
		seen[i] = make([]bool, len(decoded[i]))
	}
	for _, req := range pc.reqs {
		base := first[req.plan]
		for i, s := range req.slots {
			gb := base + s.b
			if got, want := infos[gb].Partition, req.parts[i]; got != want {
				panic(fmt.Sprintf("record %d placed in a batch of partition %d, admitted to %d", i, got, want))
			}
			if seen[gb][s.idx] {
				panic(fmt.Sprintf("two records planned at batch %d index %d", gb, s.idx))
			}
			seen[gb][s.idx] = true
			if !sameRecord(decoded[gb][s.idx], req.records[i]) {
				panic(fmt.Sprintf("record %d of a request decodes as %+v, was %+v", i, decoded[gb][s.idx], req.records[i]))
			}
		}
		if req.idemKey != "" {
			checkLayout(req)
		}
	}
	for gb := range seen {
		if i := slices.Index(seen[gb], false); i >= 0 {
			panic(fmt.Sprintf("batch %d index %d holds a record no request placed", gb, i))
		}
	}
}

// checkLayout checks that the layout stored with a request's idempotency
// key rebuilds the positions its records were planned at: a retry of the
// request is answered from it.
func checkLayout(req *produceReq) {
	tp := req.plan
	var own []int // the request's batches, in the order the layout names them
	for b, mb := range tp.batches {
		if mb.IdempotencyKey == req.idemKey {
			own = append(own, b)
		}
	}
	bases := make([]int64, len(own))
	baseOf := map[int]int64{}
	for k, b := range own {
		bases[k] = int64(b) * 10_000_000
		baseOf[b] = bases[k]
	}
	positions, err := metadata.DecodeLayout(tp.batches[own[0]].Layout, bases)
	if err != nil || len(positions) != len(req.slots) {
		panic(fmt.Sprintf("layout %q: %d positions, %v; want %d", tp.batches[own[0]].Layout, len(positions), err, len(req.slots)))
	}
	for i, s := range req.slots {
		want := metadata.RecordPosition{Partition: req.parts[i], Offset: baseOf[s.b] + int64(s.idx)}
		if positions[i] != want {
			panic(fmt.Sprintf("layout gives record %d %+v, planned %+v", i, positions[i], want))
		}
	}
}

func sameRecord(a, b chunk.Record) bool {
	return (a.Key == nil) == (b.Key == nil) && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) &&
		a.Timestamp == b.Timestamp && slices.EqualFunc(a.Headers, b.Headers, func(x, y chunk.Header) bool {
		return x.Name == y.Name && bytes.Equal(x.Value, y.Value)
	})
}

// planInput reads a fuzz input as a stream of small decisions; past its
// end every decision is 0.
type planInput struct {
	data []byte
	pos  int
}

func (p *planInput) done() bool { return p.pos >= len(p.data) }

func (p *planInput) next() byte {
	if p.done() {
		return 0
	}
	p.pos++
	return p.data[p.pos-1]
}

// bigValue backs the large values and header values of fuzzed records:
// records share it, so a request of a thousand 1 MiB records costs no
// memory of its own until it is encoded.
var bigValue = bytes.Repeat([]byte("0123456789abcdef"), (1<<20)/16)

// records reads a request: a count, in one of four scales (up to 63, up
// to 63 Ki, up to 2 Mi and around the 1 Mi record limit), then up to four
// record shapes that the records repeat in turn.
func (p *planInput) records(partitions int) []ProduceRecord {
	c := p.next()
	var count int
	switch c >> 6 {
	case 0:
		count = int(c & 63)
	case 1:
		count = int(c&63) << 10
	case 2:
		count = int(c&63) << 15
	default:
		count = chunk.MaxBatchRecords + int(c&63) - 32
	}
	shapes := make([]ProduceRecord, 1+p.next()%4)
	for i := range shapes {
		shapes[i] = p.shape(partitions)
	}
	if count > 3<<20 {
		count = 3 << 20
	}
	recs := make([]ProduceRecord, count)
	for i := range recs {
		recs[i] = shapes[i%len(shapes)]
	}
	return recs
}

// shape reads one record: its partition (any, one in range, or one out of
// range), key, value size, timestamp and headers (up to 300,000, sharing
// one slice, so that a few records reach the header limit).
func (p *planInput) shape(partitions int) ProduceRecord {
	var r ProduceRecord
	switch b := p.next(); b % 4 {
	case 0, 1:
		r.Partition = AnyPartition
	case 2:
		r.Partition = int32(int(b>>2) % partitions)
	default:
		r.Partition = int32(b>>2) - 8 // may be negative or past the last
	}
	switch b := p.next(); b % 3 {
	case 1:
		r.Key = []byte{}
	case 2:
		r.Key = bigValue[:b>>2]
	}
	v := p.next()
	switch v >> 6 {
	case 0:
		r.Value = bigValue[:v&63]
	case 1:
		r.Value = bigValue[:int(v&63)<<10]
	case 2:
		r.Value = bigValue[:min(len(bigValue), int(v&63)<<14)]
	default:
		r.Value = bigValue[:len(bigValue)-int(v&63)]
	}
	if b := p.next(); b&1 == 1 {
		r.Timestamp = int64(b) << 32
	}
	h := p.next()
	var nh int
	switch h >> 6 {
	case 0:
		nh = int(h & 7)
	case 1:
		nh = int(h&63) << 8
	default:
		nh = int(h&63) * 5000
	}
	if nh > 0 {
		name := []string{"h", "trace-id", "", "\xff", "x-" + string(bigValue[:h&31])}[int(h&63)%5]
		hs := make([]chunk.Header, nh)
		for i := range hs {
			hs[i] = chunk.Header{Name: name, Value: bigValue[:i%3]}
		}
		r.Headers = hs
	}
	return r
}
