package mambatest_test

import (
	"context"
	"testing"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/mambatest"
)

// A test of your own code that produces to a topic and reads the record
// back, against a node of its own.
func ExampleStart() {
	testOrders := func(t *testing.T) {
		srv := mambatest.Start(t, mambatest.WithTopic("orders", 1))

		p, err := srv.Client.NewProducer()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close(context.Background()) })
		res, err := p.Produce(t.Context(), client.Record{Topic: "orders", Key: []byte("customer-7"), Value: []byte("hello")})
		if err != nil {
			t.Fatal(err)
		}

		pc, err := srv.Client.NewPartitionConsumer("orders", res.Partition, res.Offset)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := pc.Fetch(t.Context())
		if err != nil || len(recs) == 0 || string(recs[0].Value) != "hello" {
			t.Fatalf("read back %v, %v; want the record produced", recs, err)
		}
	}
	_ = testOrders // go test runs it as func TestOrders(t *testing.T)
}
