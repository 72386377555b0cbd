// Command producer sends records to a Mamba topic with the Go SDK,
// creating the topic if it does not exist.
//
//	go run ./examples/producer --url http://127.0.0.1:8080 --topic orders --count 1000
//
// --url defaults to $MAMBA_URL, else http://127.0.0.1:8080.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/mambamq/mamba/client"
)

func main() {
	defaultURL := os.Getenv("MAMBA_URL")
	if defaultURL == "" {
		defaultURL = "http://127.0.0.1:8080"
	}
	url := flag.String("url", defaultURL, "Mamba node or load balancer (default $MAMBA_URL, else http://127.0.0.1:8080)")
	topic := flag.String("topic", "orders", "topic to produce to")
	partitions := flag.Int("partitions", 4, "partitions of the topic, if it has to be created")
	count := flag.Int("count", 1000, "records to produce")
	flag.Parse()
	if err := run(*url, *topic, *partitions, *count); err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
}

func run(url, topic string, partitions, count int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	c, err := client.New(url, client.WithLogger(log))
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	if _, err := c.CreateTopic(ctx, topic, partitions); err != nil && !errors.Is(err, client.ErrTopicExists) {
		return err
	}

	p, err := c.NewProducer(client.WithErrorHandler(func(rec client.Record, err error) {
		log.Error("record not delivered", "key", string(rec.Key), "err", err)
	}))
	if err != nil {
		return err
	}
	defer func() {
		// Deliver what is still buffered, for at most ten seconds.
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(closeCtx); err != nil {
			log.Error("close producer", "err", err)
		}
	}()

	// One record waited for: a durable acknowledgement with its offset.
	res, err := p.Produce(ctx, client.Record{Topic: topic, Key: []byte("customer-0"), Value: []byte(`{"hello":"mamba"}`)})
	if err != nil {
		return err
	}
	fmt.Printf("first record: partition %d offset %d\n", res.Partition, res.Offset)

	// Many records in flight: batched, retried, ordered per key.
	start := time.Now()
	futures := make([]*client.Future, 0, count)
	for i := range count {
		if ctx.Err() != nil {
			break
		}
		futures = append(futures, p.ProduceAsync(client.Record{
			Topic:   topic,
			Key:     []byte("customer-" + strconv.Itoa(i%100)),
			Value:   []byte(`{"order":` + strconv.Itoa(i) + `}`),
			Headers: []client.Header{{Name: "source", Value: []byte("example")}},
		}))
	}
	if err := p.Flush(ctx); err != nil {
		return err
	}
	failed := 0
	for _, f := range futures {
		if f.Err() != nil {
			failed++
		}
	}
	fmt.Printf("%d records acknowledged, %d failed, in %v\n", len(futures)-failed, failed, time.Since(start).Round(time.Millisecond))
	if failed > 0 {
		return fmt.Errorf("%d records failed", failed)
	}
	return nil
}
