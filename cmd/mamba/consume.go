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
	"sync"
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
	// partitionSet is whether --partition was given: 0 is a partition.
	partitionSet bool
	offset       string
	group        string
	follow       bool
	max          int64
	valueOnly    bool
	timeout      time.Duration
}

func newConsumeCmd() *cobra.Command {
	var o clientOptions
	var co consumeOptions
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print a topic's records, from a partition or as a consumer group",
		Long: `Consume prints records of a topic, one per line: partition, offset, key,
headers (when the record has any) and value separated by tabs, the key as
key=<null> (no key) or key="..." (quoted, so key="" is an empty key), the
headers as headers={name="value", ...}; only the value with --value-only.
With -o json
one JSON object per line, its headers a list of {"key","value"} objects as
the HTTP API's fetch gives them (key, value and header values that are not
UTF-8 are base64, with "encoding":"base64").

Without --group it reads every partition of the topic, merged as records
arrive (each line names its partition; order holds within a partition), from
--offset (a number, oldest or newest) and commits nothing; --partition reads
one partition only. With --group it joins the consumer group, reads the
partitions the group assigns it from the group's committed offsets, commits
as it goes and leaves the group on exit.

Without --follow it stops at the end: without --group once every partition
is drained, that is, once it has read up to the high watermark each partition
had when the command started (records produced after that are left for the
next run); with --group when no record comes for a few seconds. --max stops
after that many records. Ctrl-C stops cleanly.

--timeout bounds how long consume waits for a server that cannot be reached,
at the start and during any later outage; then it exits 1 with one line on
stderr. By default it gives up after 5 s if the server never answered and
after 1 min of failures once it has.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			co.partitionSet = cmd.Flags().Changed("partition")
			if co.group != "" && co.partitionSet {
				return errors.New("--partition and --group are exclusive")
			}
			if co.max < 0 {
				return fmt.Errorf("--max %d: must not be negative", co.max)
			}
			var opts []client.Opt
			if cmd.Flags().Changed("timeout") {
				if co.timeout <= 0 {
					return fmt.Errorf("--timeout %v: must be positive", co.timeout)
				}
				opts = append(opts, client.WithConnectTimeout(co.timeout), client.WithRetryTimeout(co.timeout))
			}
			c, err := o.client(opts...)
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
			return consumePartitions(ctx, c, args[0], co, pr)
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.Int32VarP(&co.partition, "partition", "p", 0, "read only this partition (default: every partition; not with --group)")
	f.StringVar(&co.offset, "offset", "oldest", "where to start: an offset, oldest or newest (with --group: oldest or newest, for partitions the group has no offset for)")
	f.StringVarP(&co.group, "group", "g", "", "read as a member of this consumer group")
	f.BoolVarP(&co.follow, "follow", "F", false, "keep waiting for new records instead of stopping at the end")
	f.Int64VarP(&co.max, "max", "n", 0, "stop after this many records (0: no limit)")
	f.BoolVar(&co.valueOnly, "value-only", false, "print only each record's value (text output)")
	f.DurationVar(&co.timeout, "timeout", client.DefaultConnectTimeout, "give up when the server cannot be reached for this long (default: 5s before it first answers, 1m after)")
	return cmd
}

// consumedItem is a record, or the error that ended a partition's read.
type consumedItem struct {
	rec client.ConsumedRecord
	err error
}

// consumePartitions prints the records of every partition of topic (or
// of --partition only), merged as they arrive. Without --follow each
// partition is read up to the high watermark it had at the start.
func consumePartitions(ctx context.Context, c *client.Client, topic string, co consumeOptions, pr *recordPrinter) error {
	d, err := c.DescribeTopic(ctx, topic)
	if err != nil {
		return err
	}
	parts := d.PartitionStats
	if co.partitionSet {
		if co.partition < 0 || int(co.partition) >= len(parts) {
			return fmt.Errorf("partition %d not found: topic %s has %s", co.partition, topic, plural(len(parts), "partition"))
		}
		parts = parts[co.partition : co.partition+1]
	}
	var offset int64
	switch co.offset {
	case "oldest", "newest":
	default:
		n, err := strconv.ParseInt(co.offset, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("--offset %q: want an offset, oldest or newest", co.offset)
		}
		offset = n
	}
	var opts []client.ConsumerOpt
	if co.max > 0 && co.max < 1000 {
		opts = append(opts, client.WithMaxRecords(int(co.max)))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	items := make(chan consumedItem, 256)
	var wg sync.WaitGroup
	for _, st := range parts {
		start := offset
		switch co.offset {
		case "oldest":
			start = st.LogStartOffset
		case "newest":
			start = st.HighWatermark
		}
		end := st.HighWatermark // drained once read up to here (without --follow)
		if !co.follow && start >= end {
			continue
		}
		pc, err := c.NewPartitionConsumer(topic, st.Partition, start, opts...)
		if err != nil {
			return err
		}
		wg.Go(func() {
			for r, err := range pc.Records(ctx) {
				select {
				case items <- consumedItem{rec: r, err: err}:
				case <-ctx.Done():
					return
				}
				if err != nil || !co.follow && r.Offset+1 >= end {
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(items)
	}()
	var n int64
	for it := range items {
		if it.err != nil {
			return it.err
		}
		if err := pr.print(it.rec); err != nil {
			return err
		}
		n++
		if co.max > 0 && n >= co.max {
			break
		}
		if len(items) == 0 {
			// Nothing more at hand: show what was read.
			if err := pr.flush(); err != nil {
				return err
			}
		}
	}
	return pr.flush()
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
	// Say at once that the topic does not exist or the server cannot be
	// reached, rather than after the idle wait.
	if _, err := c.DescribeTopic(ctx, topic); err != nil {
		return err
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

// recordPrinter writes consumed records as text or JSON lines.
type recordPrinter struct {
	w         *bufio.Writer
	json      bool
	valueOnly bool
	last      time.Time
}

// recordJSON is a consumed record as -o json prints it: the HTTP API's
// record (wire.JSONRecord, the shape of a fetch answer's records) with
// its topic and partition.
type recordJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	wire.JSONRecord
}

func (p *recordPrinter) print(r client.ConsumedRecord) error {
	if !p.json {
		if p.valueOnly {
			p.w.Write(r.Value)
		} else {
			p.printText(r)
		}
		return p.w.WriteByte('\n')
	}
	// The HTTP API's rule (wire.JSONBytes): text stays text; if any of key,
	// value or header values is not UTF-8, all of them are base64.
	out := recordJSON{Topic: r.Topic, Partition: r.Partition,
		JSONRecord: wire.NewJSONRecord(false, r.Offset, r.Timestamp.UnixMilli(), r.Key, r.Value, r.Headers)}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	p.w.Write(b)
	return p.w.WriteByte('\n')
}

// printText writes r as partition, offset, key, headers (when it has
// any) and value, tab-separated: key=<null> for a record without a key,
// key="" for an empty one, other keys and header values quoted as Go
// strings, so that a reader can tell them apart.
func (p *recordPrinter) printText(r client.ConsumedRecord) {
	fmt.Fprintf(p.w, "%d\t%d\t", r.Partition, r.Offset)
	if r.Key == nil {
		p.w.WriteString("key=<null>")
	} else {
		fmt.Fprintf(p.w, "key=%q", r.Key)
	}
	if len(r.Headers) > 0 {
		p.w.WriteString("\theaders={")
		for i, h := range r.Headers {
			if i > 0 {
				p.w.WriteString(", ")
			}
			fmt.Fprintf(p.w, "%s=%q", h.Name, h.Value)
		}
		p.w.WriteByte('}')
	}
	p.w.WriteByte('\t')
	p.w.Write(r.Value)
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
