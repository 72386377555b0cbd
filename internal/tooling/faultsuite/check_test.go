package faultsuite

import (
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// TestCheckerRefusesDurableAckWithoutOffset checks the checker itself: a
// durable acknowledgement must carry the record's offset, so one with a
// negative offset is a violation even when the record is in the log,
// while an ack=buffered acknowledgement (which promises no offset) only
// needs the record to be there.
func TestCheckerRefusesDurableAckWithoutOffset(t *testing.T) {
	m := testserver.StartMinIO(t)
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	node := testserver.StartMamba(t, m, r, m.CreateBucket(t, "mamba-check"), "node-a", "--flush-interval", "20ms", "--log-level", "warn")
	ctx := t.Context()
	c, err := client.New(node.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic(ctx, topic, 1); err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	ids := []RecordID{{0, 0}, {0, 1}, {0, 2}}
	sums := map[RecordID]uint32{}
	acks := map[RecordID]client.Result{}
	for _, id := range ids {
		v, sum := Payload(id, 16)
		res, err := p.Produce(ctx, client.Record{Topic: topic, Value: v})
		if err != nil {
			t.Fatal(err)
		}
		sums[id], acks[id] = sum, res
	}

	check := func(lie Ack) Result {
		t.Helper()
		l := NewLedger()
		for _, id := range ids {
			l.Sent(id, sums[id])
			a := Ack{Partition: acks[id].Partition, Offset: acks[id].Offset}
			if id == ids[1] {
				a = lie
			}
			l.Acked(id, a, time.Now())
		}
		res, err := Check(ctx, c, topic, l)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := check(Ack{Partition: 0, Offset: -1}); res.OK() || res.Misplaced != 1 {
		t.Errorf("a durable acknowledgement with offset -1: OK %v, misplaced %d, want a violation (%v)", res.OK(), res.Misplaced, res.Problems)
	}
	if res := check(Ack{Partition: 0, Offset: -1, Buffered: true}); !res.OK() {
		t.Errorf("an ack=buffered acknowledgement of a record in the log: %+v, want OK", res)
	}
	if res := check(Ack{Partition: 0, Offset: acks[ids[1]].Offset}); !res.OK() {
		t.Errorf("the true acknowledgements: %+v, want OK", res)
	}
}
