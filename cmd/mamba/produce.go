package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mambamq/mamba/client"
)

// maxLineBytes bounds one input line of produce: more than the node's
// largest request, so that an over-large record reaches the producer and
// fails with the node's limit rather than the reader's.
const maxLineBytes = 64 << 20

// firstErrorsShown is how many failed records produce prints.
const firstErrorsShown = 5

type produceSummary struct {
	Records       int64   `json:"records"`
	Failed        int64   `json:"failed"`
	Bytes         int64   `json:"bytes"`
	ElapsedMS     int64   `json:"elapsed_ms"`
	RecordsPerSec float64 `json:"records_per_second"`
}

// produceFailures collects the records that failed, from the producer's
// error handler.
type produceFailures struct {
	mu    sync.Mutex
	count int64
	bytes int64
	first []string
	// unreachable is the first failure that was a server that could not
	// be reached.
	unreachable error
}

func (f *produceFailures) add(line int64, size int64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count++
	f.bytes += size
	if errors.Is(err, client.ErrUnreachable) && f.unreachable == nil {
		f.unreachable = err
	}
	if len(f.first) < firstErrorsShown {
		f.first = append(f.first, fmt.Sprintf("line %d: %s", line, strings.TrimPrefix(err.Error(), "mamba: ")))
	}
}

type produceOptions struct {
	clientOptions
	file      string
	key       string
	keySep    string
	headers   []string
	partition int32
	// partitionSet is whether --partition was given: 0 is a partition.
	partitionSet bool
	// timeout bounds each record's delivery, from being read to its
	// acknowledgement.
	timeout time.Duration
}

func newProduceCmd() *cobra.Command {
	var o produceOptions
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce records to a topic, one per line of stdin or a file",
		Long: `Produce reads lines from stdin (or --file) and produces one record per
line, whose value is the line without its line ending. --key gives every
record the same key; --key-sep splits each line at the first separator into
key and value. Records are batched and sent asynchronously; produce waits for
every acknowledgement, prints a summary, and exits 1 if any record failed.

--timeout bounds each record's delivery, from the moment its line is read to
its acknowledgement (retries included); a record not acknowledged by then
fails. A server that cannot be reached at all fails the command after at most
5 s (or --timeout, if shorter), with one line on stderr.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.partitionSet = cmd.Flags().Changed("partition")
			return runProduce(cmd.Context(), o, args[0], cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", "read lines from this file instead of stdin")
	f.StringVarP(&o.key, "key", "k", "", "key of every record")
	f.StringVar(&o.keySep, "key-sep", "", "split each line at the first SEP into key and value")
	f.StringArrayVarP(&o.headers, "header", "H", nil, "header name=value added to every record (repeatable)")
	f.Int32VarP(&o.partition, "partition", "p", 0, "produce every record to this partition (default: by key, else the producer picks)")
	f.DurationVar(&o.timeout, "timeout", client.DefaultDeliveryTimeout, "bound on each record's delivery, from reading its line to its acknowledgement")
	return cmd
}

// template checks the record flags and returns the record every line's
// record starts from: topic, headers and partition.
func (o produceOptions) template(topic string) (client.Record, error) {
	if o.key != "" && o.keySep != "" {
		return client.Record{}, errors.New("--key and --key-sep are exclusive")
	}
	var hdrs []client.Header
	for _, h := range o.headers {
		name, value, ok := strings.Cut(h, "=")
		if !ok || name == "" {
			return client.Record{}, fmt.Errorf("--header %q: want name=value", h)
		}
		hdrs = append(hdrs, client.Header{Name: name, Value: []byte(value)})
	}
	rec := client.Record{Topic: topic, Headers: hdrs}
	if o.partitionSet {
		if o.partition < 0 {
			return client.Record{}, fmt.Errorf("--partition %d: must not be negative", o.partition)
		}
		part := o.partition
		rec.Partition = &part
	}
	return rec, nil
}

// runProduce produces every line of the input (--file, else stdin) to
// topic, waits for the acknowledgements and prints the summary.
func runProduce(ctx context.Context, o produceOptions, topic string, stdin io.Reader, stdout, stderr io.Writer) error {
	tmpl, err := o.template(topic)
	if err != nil {
		return err
	}
	in := stdin
	var size int64
	if o.file != "" {
		f, err := os.Open(o.file)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		in = f
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout %v: must be positive", o.timeout)
	}
	c, err := o.client(client.WithConnectTimeout(min(o.timeout, client.DefaultConnectTimeout)))
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	p, err := c.NewProducer(client.WithDeliveryTimeout(o.timeout))
	if err != nil {
		return err
	}
	fails := &produceFailures{}
	pending, checked := checkFutures(fails)
	var bar *progressbar.ProgressBar
	if o.file != "" && size > 0 {
		bar = newProduceBar(stderr, size, topic)
	}

	lines := readLines(ctx, in)
	start := time.Now()
	read := produceLines(ctx, lines, p, tmpl, o, bar, pending, fails)
	// Deliver what was read, even after Ctrl-C; a second Ctrl-C
	// (or SIGTERM) ends the wait.
	stop()
	closeCtx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	closeErr := p.Close(closeCtx)
	close(pending)
	<-checked
	elapsed := time.Since(start)
	if bar != nil {
		_ = bar.Finish()
	}
	return reportProduce(o, topic, read, fails, elapsed, closeErr, stdout, stderr)
}

// checkFutures starts a goroutine that waits for each record's future
// in turn, to count the failures and name their lines. Close pending,
// then wait for checked, before reading fails.
func checkFutures(fails *produceFailures) (pending chan pendingRecord, checked <-chan struct{}) {
	pending = make(chan pendingRecord, 1<<16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for pr := range pending {
			if err := pr.f.Err(); err != nil {
				fails.add(pr.line, pr.size, err)
			}
		}
	}()
	return pending, done
}

// newProduceBar returns a progress bar over the input file's size on
// stderr when it is a terminal, else nil.
func newProduceBar(stderr io.Writer, size int64, topic string) *progressbar.ProgressBar {
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription("producing "+topic),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(f) }))
}

// produceRead is what produceLines read and handed to the producer.
type produceRead struct {
	// total counts the lines read, bytes the bytes of the records sent.
	total, bytes int64
	readErr      error
	interrupted  bool
}

// produceLines hands a record per input line to p, and its future to
// pending, until the input ends, fails, or ctx ends (interrupted). A line
// without the key separator fails on its own and is not sent.
func produceLines(ctx context.Context, lines <-chan inputLine, p *client.Producer, tmpl client.Record, o produceOptions,
	bar *progressbar.ProgressBar, pending chan<- pendingRecord, fails *produceFailures) produceRead {
	var r produceRead
	for {
		select {
		case <-ctx.Done():
			r.interrupted = true
			return r
		case l, ok := <-lines:
			if !ok {
				return r
			}
			if l.err != nil {
				r.readErr = l.err
				return r
			}
			if bar != nil {
				_ = bar.Add(l.raw)
			}
			r.total++
			rec := tmpl
			rec.Value = l.text
			switch {
			case o.key != "":
				rec.Key = []byte(o.key)
			case o.keySep != "":
				k, v, ok := strings.Cut(string(l.text), o.keySep)
				if !ok {
					fails.add(r.total, 0, fmt.Errorf("no key separator %q in the line", o.keySep))
					continue
				}
				rec.Key, rec.Value = []byte(k), []byte(v)
			}
			n := recordBytes(rec)
			r.bytes += n
			pending <- pendingRecord{r.total, n, p.ProduceAsync(rec)}
		}
	}
}

// reportProduce prints the first failures and the summary, and returns
// the command's error: the input's, else the failed records', else
// Close's, else the interruption.
func reportProduce(o produceOptions, topic string, read produceRead, fails *produceFailures, elapsed time.Duration, closeErr error, stdout, stderr io.Writer) error {
	fails.mu.Lock()
	sum := produceSummary{
		Records:   read.total - fails.count,
		Failed:    fails.count,
		Bytes:     read.bytes - fails.bytes,
		ElapsedMS: elapsed.Milliseconds(),
	}
	first := append([]string(nil), fails.first...)
	unreachable := fails.unreachable
	fails.mu.Unlock()
	if unreachable != nil && sum.Records == 0 {
		// Nothing got through: the one thing to say is why.
		return unreachable
	}
	if s := elapsed.Seconds(); s > 0 {
		sum.RecordsPerSec = float64(sum.Records) / s
	}
	for _, e := range first {
		fmt.Fprintln(stderr, "mamba: failed:", e)
	}
	if err := o.print(stdout, sum, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "produced %s (%d bytes) to %s in %v, %.0f records/s", plural(sum.Records, "record"), sum.Bytes, topic, elapsed.Round(time.Millisecond), sum.RecordsPerSec)
		if sum.Failed > 0 {
			fmt.Fprintf(tw, "; %d failed", sum.Failed)
		}
		fmt.Fprintln(tw)
	}); err != nil {
		return err
	}
	switch {
	case read.readErr != nil:
		return fmt.Errorf("reading input: %w", read.readErr)
	case sum.Failed > 0:
		return fmt.Errorf("%d of %d records failed", sum.Failed, read.total)
	case closeErr != nil:
		return closeErr
	case read.interrupted:
		return errors.New("interrupted")
	}
	return nil
}

type pendingRecord struct {
	line int64
	size int64
	f    *client.Future
}

func recordBytes(rec client.Record) int64 {
	n := int64(len(rec.Key) + len(rec.Value))
	for _, h := range rec.Headers {
		n += int64(len(h.Name) + len(h.Value))
	}
	return n
}

type inputLine struct {
	text []byte
	raw  int // bytes read, line ending included
	err  error
}

// readLines reads r line by line in a goroutine, so that Ctrl-C is noticed
// while a read blocks. The line ending (\n or \r\n) is dropped; a last
// line without one still counts.
func readLines(ctx context.Context, r io.Reader) <-chan inputLine {
	ch := make(chan inputLine, 256)
	go func() {
		defer close(ch)
		br := bufio.NewReaderSize(r, 1<<20)
		for {
			b, err := readLine(br)
			if len(b) > 0 || (err == nil) {
				raw := len(b)
				text := b
				if n := len(text); n > 0 && text[n-1] == '\n' {
					text = text[:n-1]
					if n := len(text); n > 0 && text[n-1] == '\r' {
						text = text[:n-1]
					}
				}
				select {
				case ch <- inputLine{text: text, raw: raw}:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					select {
					case ch <- inputLine{err: err}:
					case <-ctx.Done():
					}
				}
				return
			}
		}
	}()
	return ch
}

// readLine reads one line, ending included, of at most maxLineBytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if err == bufio.ErrBufferFull {
			if len(line) > maxLineBytes {
				return nil, fmt.Errorf("a line is longer than %d bytes", maxLineBytes)
			}
			continue
		}
		return line, err
	}
}
