package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for JetStreamConfig.
const (
	DefaultJetStreamStream   = "MAMBA_BENCH"
	DefaultJetStreamSubject  = "mamba.bench"
	DefaultJetStreamInFlight = 256
)

// JetStreamConfig configures RunJetStream.
type JetStreamConfig struct {
	BaselineConfig
	// URL is the NATS server, for example nats://127.0.0.1:4222.
	URL string
	// Stream is created afresh for the run (deleted first if it exists),
	// with file storage and one replica, and left in place afterwards.
	Stream string
	// Subject is the one subject the stream captures and producers publish
	// to.
	Subject string
	// SyncAlways says that the server runs with jetstream sync_interval
	// "always" (fsync before every ack). It is the server's setting, not
	// the client's: it only selects the Durability text.
	SyncAlways bool
}

// Validate reports every bad field at once.
func (c JetStreamConfig) Validate() error {
	errs := []error{c.BaselineConfig.Validate()}
	if c.URL == "" {
		errs = append(errs, errors.New("no NATS URL"))
	}
	return errors.Join(errs...)
}

// RunJetStream measures NATS JetStream as a durable queue: each producer,
// with its own connection, publishes asynchronously with up to InFlight
// publishes awaiting their acks, and a record counts once its PubAck (the
// stream has stored it) is back.
func RunJetStream(ctx context.Context, cfg JetStreamConfig) (SystemResult, error) {
	cfg.BaselineConfig = cfg.withDefaults(DefaultJetStreamInFlight)
	if cfg.Stream == "" {
		cfg.Stream = DefaultJetStreamStream
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultJetStreamSubject
	}
	if err := cfg.Validate(); err != nil {
		return SystemResult{}, fmt.Errorf("jetstream: %w", err)
	}
	if err := recreateStream(ctx, cfg); err != nil {
		return SystemResult{}, fmt.Errorf("jetstream: %w", err)
	}

	producers := make([]jetstream.JetStream, cfg.Producers)
	for i := range producers {
		nc, err := nats.Connect(cfg.URL, nats.Name("mamba-bench-"+strconv.Itoa(i)))
		if err != nil {
			return SystemResult{}, fmt.Errorf("jetstream: connect producer %d: %w", i, err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.InFlight))
		if err != nil {
			return SystemResult{}, fmt.Errorf("jetstream: producer %d: %w", i, err)
		}
		producers[i] = js
	}

	payload := randomPayload(cfg.MessageSize)
	w, runErr := drive(ctx, cfg.BaselineConfig, cfg.Producers, cfg.Rate, func(ctx context.Context, w *sender) {
		js := producers[w.id]
		// Closing the connection fails whatever is outstanding, so that
		// neither a publish nor a wait for an ack outlives the run.
		defer closeOnDone(ctx, js.Conn().Close)()
		publishAsync(ctx, w, cfg.InFlight, int64(len(payload)), func() (jetstream.PubAckFuture, error) {
			return js.PublishAsync(cfg.Subject, payload)
		})
	})

	durability := "stream on file storage, default sync (every 2 min)"
	if cfg.SyncAlways {
		durability = "stream on file storage, sync_interval always"
	}
	res, err := w.result("nats-jetstream", durability,
		fmt.Sprintf("%d producers, %d async publishes in flight each", cfg.Producers, cfg.InFlight))
	if runErr != nil {
		return res, fmt.Errorf("jetstream: %w", runErr)
	}
	return res, err
}

// recreateStream deletes cfg.Stream if it exists and creates it empty.
func recreateStream(ctx context.Context, cfg JetStreamConfig) error {
	nc, err := nats.Connect(cfg.URL, nats.Name("mamba-bench-admin"))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := js.DeleteStream(ctx, cfg.Stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete stream %s: %w", cfg.Stream, err)
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     cfg.Stream,
		Subjects: []string{cfg.Subject},
		Storage:  jetstream.FileStorage,
		Replicas: 1,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", cfg.Stream, err)
	}
	return nil
}

// pendingAck is a publish awaiting its ack.
type pendingAck struct {
	future jetstream.PubAckFuture
	sent   time.Time
}

// publishAsync publishes size-byte records with publish until ctx is done,
// keeping at most
// inFlight publishes unacknowledged, without waiting on any one of them:
// the publishing goroutine only takes a slot and sends; a collector waits
// for the acks in publish order and frees the slots.
//
// Waiting in publish order is exact because one connection's messages to
// one stream are stored, and acknowledged, in the order they were sent.
// The slots are freed only after nats.go has retired the ack, so nats.go's
// own bound (WithPublishAsyncMaxPending(inFlight)) is never the one that
// blocks: its stall would turn into ErrTooManyStalledMsgs after 200 ms
// instead of plain backpressure, and would not watch ctx.
func publishAsync(ctx context.Context, w *sender, inFlight int, size int64, publish func() (jetstream.PubAckFuture, error)) {
	slots := make(chan struct{}, inFlight)
	pending := make(chan pendingAck, inFlight)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for {
			var p pendingAck
			select {
			case <-ctx.Done():
				return
			case p = <-pending:
			}
			select {
			case <-ctx.Done():
				return
			case <-p.future.Ok():
				w.ack(p.sent, time.Now(), size)
			case err := <-p.future.Err():
				w.fail(ctx, err)
			}
			<-slots
		}
	}()
	defer func() { <-collected }()

	for {
		sent, ok := w.pace(ctx)
		if !ok {
			return
		}
		select {
		case <-ctx.Done():
			return
		case slots <- struct{}{}:
		}
		sent = stamp(sent)
		f, err := publish()
		if err != nil {
			w.fail(ctx, err)
			<-slots
			continue
		}
		pending <- pendingAck{future: f, sent: sent} // never blocks: it holds at most as many as slots
	}
}
