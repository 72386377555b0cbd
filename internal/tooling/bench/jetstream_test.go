package bench

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mambamq/mamba/internal/tooling/testserver"
)

func TestRunJetStream(t *testing.T) {
	n := testserver.StartNATS(t, testserver.NATSOptions{SyncAlways: true})
	nc, err := nats.Connect(n.URL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const stream = "BENCH_TEST"
	testRunner(t, runnerTarget{
		system:      "nats-jetstream",
		sampleBytes: 1024,
		pacedAcks:   200,
		fresh: func(t *testing.T) (runFunc, func() int64) {
			run := func(ctx context.Context, cfg BaselineConfig) (SystemResult, error) {
				res, err := RunJetStream(ctx, JetStreamConfig{BaselineConfig: cfg, URL: n.URL, Stream: stream, Subject: "bench.test", SyncAlways: true})
				if err == nil && res.Durability != "stream on file storage, sync_interval always" {
					t.Errorf("durability %q", res.Durability)
				}
				return res, err
			}
			stored := func() int64 {
				s, err := js.Stream(t.Context(), stream)
				if err != nil {
					t.Fatalf("stream %s: %v", stream, err)
				}
				info, err := s.Info(t.Context())
				if err != nil {
					t.Fatalf("stream info: %v", err)
				}
				if info.Config.Storage != jetstream.FileStorage || info.Config.Replicas != 1 {
					t.Errorf("stream storage %v, %d replicas; want file storage, 1 replica", info.Config.Storage, info.Config.Replicas)
				}
				return int64(info.State.Msgs)
			}
			return run, stored
		},
	})
}
