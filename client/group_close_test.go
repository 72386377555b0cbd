package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
)

// consumeUntilDone is the group consumer pattern of docs/sdk.md ("Group
// consumer"), word for word but for the names the test passes in:
// Records runs until ctx ends, and the deferred Close, given that ended
// context, still commits and leaves the group.
func consumeUntilDone(ctx context.Context, c *client.Client, group, topic string, handle func(client.ConsumedRecord)) error {
	g, err := c.NewGroupConsumer(group, []string{topic}, client.WithAutoCommit(time.Second))
	if err != nil {
		return err
	}
	defer g.Close(ctx)

	for rec, err := range g.Records(ctx) {
		if err != nil {
			return err
		}
		handle(rec)
	}
	return nil
}

func TestGroupCloseAfterContextEnded(t *testing.T) {
	c, topic, p := startWithTopic(t, 2)
	produceValues(t, p, topic, 0, 0, 5)
	produceValues(t, p, topic, 1, 0, 5)

	// The consume context ends once every record was handled.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	n := 0
	err := consumeUntilDone(ctx, c, "closing", topic, func(client.ConsumedRecord) {
		if n++; n == 10 {
			cancel()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 10 {
		t.Fatalf("handled %d records, want 10", n)
	}
	// Right after Close the group has no member, and its offsets cover
	// what was handled.
	d, err := c.DescribeGroup(t.Context(), "closing")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Members) != 0 {
		t.Fatalf("members after Close with an ended context: %+v", d.Members)
	}
	for _, o := range d.Offsets {
		if o.CommittedOffset != 5 {
			t.Fatalf("offsets after Close: %+v, want 5 committed in each partition", d.Offsets)
		}
	}
	if len(d.Offsets) != 2 {
		t.Fatalf("offsets after Close: %+v", d.Offsets)
	}

	// A deadline that passes while Records waits works as well as a
	// cancellation.
	produceValues(t, p, topic, 0, 5, 6)
	dctx, dcancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer dcancel()
	got := 0
	if err := consumeUntilDone(dctx, c, "closing", topic, func(client.ConsumedRecord) { got++ }); err != nil {
		t.Fatal(err)
	}
	if dctx.Err() == nil || got != 1 {
		t.Fatalf("consume returned with ctx error %v after %d records, want the deadline after 1", dctx.Err(), got)
	}
	d, err = c.DescribeGroup(t.Context(), "closing")
	if err != nil || len(d.Members) != 0 {
		t.Fatalf("members after Close with an expired deadline: %+v, %v", d.Members, err)
	}
	if d.Offsets[0].CommittedOffset != 6 {
		t.Fatalf("offsets after Close: %+v, want 6 committed in partition 0", d.Offsets)
	}
}
