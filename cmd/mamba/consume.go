package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/wire"
)

// groupIdleWait is how long a group consume without --follow waits for
// a record before deciding it has reached the end.
const groupIdleWait = 3 * time.Second

type consumeOptions struct {
	partition int32
	offset    string
	group     string
	follow    bool
	max       int64
	valueOnly bool
}

func newConsumeCmd() *cobra.Command {
	var o clientOptions
	var co consumeOptions
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print a topic's records, from a partition or as a consumer group",
		Long: `Consume prints records of a topic, one per line: partition, offset, key and
value separated by tabs (only the value with --value-only), or with -o json
one JSON object per line, its headers a list of {"key","value"} objects as
the HTTP API's fetch gives them (key, value and header values that are not
UTF-8 are base64, with "encoding":"base64").

With --partition (0 by default) it reads one partition from --offset (a
number, oldest or newest) and commits nothing. With --group it joins the
consumer group, reads the partitions the group assigns it from the group's
committed offsets, commits as it goes and leaves the group on exit.

Without --follow it stops at the end: for a partition when it reaches the
high watermark, for a group when no record comes for a few seconds. --max
stops after that many records. Ctrl-C stops cleanly.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if co.group != "" && cmd.Flags().Changed("partition") {
				return errors.New("--partition and --group are exclusive")
			}
			if co.max < 0 {
				return fmt.Errorf("--max %d: must not be negative", co.max)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.CloseIdleConnections()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			pr := &recordPrinter{w: w, json: o.output == "json", valueOnly: co.valueOnly}
			if co.group != "" {
				return consumeGroup(ctx, c, args[0], co, pr)
			}
			return consumePartition(ctx, c, args[0], co, pr)
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.Int32VarP(&co.partition, "partition", "p", 0, "partition to read (without --group)")
	f.StringVar(&co.offset, "offset", "oldest", "where to start: an offset, oldest or newest (with --group: oldest or newest, for partitions the group has no offset for)")
	f.StringVarP(&co.group, "group", "g", "", "read as a member of this consumer group")
	f.BoolVarP(&co.follow, "follow", "F", false, "keep waiting for new records instead of stopping at the end")
	f.Int64VarP(&co.max, "max", "n", 0, "stop after this many records (0: no limit)")
	f.BoolVar(&co.valueOnly, "value-only", false, "print only each record's value (text output)")
	return cmd
}

func consumePartition(ctx context.Context, c *client.Client, topic string, co consumeOptions, pr *recordPrinter) error {
	var start int64
	switch co.offset {
	case "oldest":
		start = client.OffsetOldest
	case "newest":
		start = client.OffsetNewest
	default:
		n, err := strconv.ParseInt(co.offset, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("--offset %q: want an offset, oldest or newest", co.offset)
		}
		start = n
	}
	opts := []client.ConsumerOpt{}
	if !co.follow {
		// Stop at the end rather than long-poll there.
		opts = append(opts, client.WithMaxWait(0))
	}
	if co.max > 0 && co.max < 1000 {
		opts = append(opts, client.WithMaxRecords(int(co.max)))
	}
	pc, err := c.NewPartitionConsumer(topic, co.partition, start, opts...)
	if err != nil {
		return err
	}
	var n int64
	for {
		recs, err := pc.Fetch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if client.IsRetryable(err) && co.follow {
				if sleepCtx(ctx, time.Second) != nil {
					return nil
				}
				continue
			}
			return err
		}
		for _, r := range recs {
			if err := pr.print(r); err != nil {
				return err
			}
			n++
			if co.max > 0 && n >= co.max {
				return pr.flush()
			}
		}
		if err := pr.flush(); err != nil {
			return err
		}
		if !co.follow && pc.Position() >= pc.HighWatermark() {
			return nil
		}
	}
}

func consumeGroup(ctx context.Context, c *client.Client, topic string, co consumeOptions, pr *recordPrinter) (err error) {
	opts := []client.GroupOpt{client.WithAutoCommit(time.Second)}
	switch co.offset {
	case "oldest":
	case "newest":
		opts = append(opts, client.WithStartAtNewest())
	default:
		return fmt.Errorf("--offset %q: with --group want oldest or newest", co.offset)
	}
	if !co.follow {
		opts = append(opts, client.WithMaxWait(time.Second))
	}
	gc, err := c.NewGroupConsumer(co.group, []string{topic}, opts...)
	if err != nil {
		return err
	}
	// Whatever ends the loop, commit what was printed and leave the group.
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if cerr := gc.Close(closeCtx); cerr != nil && err == nil {
			err = cerr
		}
	}()

	iterCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var idle *time.Timer
	if !co.follow {
		idle = time.AfterFunc(groupIdleWait, cancel)
		defer idle.Stop()
	}
	var n int64
	for r, ferr := range gc.Records(iterCtx) {
		if ferr != nil {
			return ferr
		}
		if idle != nil {
			idle.Reset(groupIdleWait)
		}
		if err := pr.print(r); err != nil {
			return err
		}
		n++
		if co.max > 0 && n >= co.max {
			break
		}
		flush := pr.flushIfIdle
		if co.follow {
			flush = pr.flush // the next record may be long in coming
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return pr.flush()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// recordPrinter writes consumed records as text or JSON lines.
type recordPrinter struct {
	w         *bufio.Writer
	json      bool
	valueOnly bool
	last      time.Time
}

type recordJSON struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp time.Time         `json:"timestamp"`
	Key       *string           `json:"key"`
	Value     string            `json:"value"`
	Headers   []wire.JSONHeader `json:"headers"`
	Encoding  string            `json:"encoding,omitempty"`
}

func (p *recordPrinter) print(r client.ConsumedRecord) error {
	if !p.json {
		if p.valueOnly {
			p.w.Write(r.Value)
		} else {
			fmt.Fprintf(p.w, "%d\t%d\t%s\t%s", r.Partition, r.Offset, r.Key, r.Value)
		}
		return p.w.WriteByte('\n')
	}
	// The HTTP API's rule (wire.JSONBytes): text stays text; if any of key,
	// value or header values is not UTF-8, all of them are base64.
	enc, encoding := wire.JSONBytes(false, r.Key, r.Value, r.Headers)
	out := recordJSON{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC(),
		Value: enc(r.Value), Headers: wire.JSONHeaders(r.Headers, enc), Encoding: encoding}
	if r.Key != nil {
		k := enc(r.Key)
		out.Key = &k
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	p.w.Write(b)
	return p.w.WriteByte('\n')
}

func (p *recordPrinter) flush() error {
	p.last = time.Now()
	return p.w.Flush()
}

// flushIfIdle flushes at most every 100 ms while records stream, so that
// --follow shows records as they come without a write per record.
func (p *recordPrinter) flushIfIdle() error {
	if time.Since(p.last) < 100*time.Millisecond && p.w.Buffered() < 32<<10 {
		return nil
	}
	return p.flush()
}
