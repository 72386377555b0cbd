// Command groupconsumer reads a Mamba topic as a member of a consumer
// group with the Go SDK, committing its position every second, until
// interrupted. Run several to share the topic's partitions.
//
//	go run ./examples/groupconsumer --url http://127.0.0.1:8080 --topic orders --group billing
//
// --url defaults to $MAMBA_URL, else http://127.0.0.1:8080.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/mambamq/mamba/client"
)

func main() {
	defaultURL := os.Getenv("MAMBA_URL")
	if defaultURL == "" {
		defaultURL = "http://127.0.0.1:8080"
	}
	url := flag.String("url", defaultURL, "Mamba node or load balancer (default $MAMBA_URL, else http://127.0.0.1:8080)")
	topic := flag.String("topic", "orders", "topic to read")
	group := flag.String("group", "example", "consumer group")
	newest := flag.Bool("newest", false, "start partitions the group has no offset for at the newest record")
	flag.Parse()
	if err := run(*url, *topic, *group, *newest); err != nil {
		fmt.Fprintln(os.Stderr, "groupconsumer:", err)
		os.Exit(1)
	}
}

func run(url, topic, group string, newest bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	c, err := client.New(url, client.WithLogger(log))
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	opts := []client.GroupOpt{
		client.WithAutoCommit(time.Second),
		client.WithOnAssigned(func(tps []client.TopicPartition) { log.Info("assigned", "partitions", tps) }),
		client.WithOnRevoked(func(tps []client.TopicPartition) { log.Info("revoked", "partitions", tps) }),
	}
	if newest {
		opts = append(opts, client.WithStartAtNewest())
	}
	g, err := c.NewGroupConsumer(group, []string{topic}, opts...)
	if err != nil {
		return err
	}
	defer func() {
		// Commit what was processed and hand the partitions over at once.
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Close(closeCtx); err != nil {
			log.Error("close consumer", "err", err)
		}
	}()

	// The loop ends when ctx ends (Ctrl-C) or on an error that retrying
	// cannot fix, such as a topic that does not exist.
	for rec, err := range g.Records(ctx) {
		if err != nil {
			return err
		}
		fmt.Printf("%s/%d@%d key=%q value=%q\n", rec.Topic, rec.Partition, rec.Offset, rec.Key, rec.Value)
	}
	return nil
}
