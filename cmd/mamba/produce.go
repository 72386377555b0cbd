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
}

func (f *produceFailures) add(line int64, size int64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count++
	f.bytes += size
	if len(f.first) < firstErrorsShown {
		f.first = append(f.first, fmt.Sprintf("line %d: %s", line, strings.TrimPrefix(err.Error(), "mamba: ")))
	}
}

func newProduceCmd() *cobra.Command {
	var o clientOptions
	var (
		file      string
		key       string
		keySep    string
		headers   []string
		partition int32
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce records to a topic, one per line of stdin or a file",
		Long: `Produce reads lines from stdin (or --file) and produces one record per
line, whose value is the line without its line ending. --key gives every
record the same key; --key-sep splits each line at the first separator into
key and value. Records are batched and sent asynchronously; produce waits for
every acknowledgement, prints a summary, and exits 1 if any record failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key != "" && keySep != "" {
				return errors.New("--key and --key-sep are exclusive")
			}
			var hdrs []client.Header
			for _, h := range headers {
				name, value, ok := strings.Cut(h, "=")
				if !ok || name == "" {
					return fmt.Errorf("--header %q: want name=value", h)
				}
				hdrs = append(hdrs, client.Header{Name: name, Value: []byte(value)})
			}
			var part *int32
			if cmd.Flags().Changed("partition") {
				if partition < 0 {
					return fmt.Errorf("--partition %d: must not be negative", partition)
				}
				part = &partition
			}
			in := cmd.InOrStdin()
			var size int64
			if file != "" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				if st, err := f.Stat(); err == nil {
					size = st.Size()
				}
				in = f
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.CloseIdleConnections()

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()

			p, err := c.NewProducer()
			if err != nil {
				return err
			}
			// A goroutine waits for each record's future in turn, to
			// count the failures and name their lines.
			fails := &produceFailures{}
			pending := make(chan pendingRecord, 1<<16)
			checked := make(chan struct{})
			go func() {
				defer close(checked)
				for pr := range pending {
					if err := pr.f.Err(); err != nil {
						fails.add(pr.line, pr.size, err)
					}
				}
			}()

			var bar *progressbar.ProgressBar
			if f, ok := cmd.ErrOrStderr().(*os.File); ok && file != "" && size > 0 && term.IsTerminal(int(f.Fd())) {
				bar = progressbar.NewOptions64(size,
					progressbar.OptionSetWriter(f),
					progressbar.OptionSetDescription("producing "+args[0]),
					progressbar.OptionShowBytes(true),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionFullWidth(),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionOnCompletion(func() { fmt.Fprintln(f) }))
			}

			lines := readLines(ctx, in)
			start := time.Now()
			var total, totalBytes int64
			var readErr error
			interrupted := false
		loop:
			for {
				select {
				case <-ctx.Done():
					interrupted = true
					break loop
				case l, ok := <-lines:
					if !ok {
						break loop
					}
					if l.err != nil {
						readErr = l.err
						break loop
					}
					if bar != nil {
						_ = bar.Add(l.raw)
					}
					total++
					rec := client.Record{Topic: args[0], Value: l.text, Headers: hdrs, Partition: part}
					switch {
					case key != "":
						rec.Key = []byte(key)
					case keySep != "":
						k, v, ok := strings.Cut(string(l.text), keySep)
						if !ok {
							fails.add(total, 0, fmt.Errorf("no key separator %q in the line", keySep))
							continue
						}
						rec.Key, rec.Value = []byte(k), []byte(v)
					}
					n := recordBytes(rec)
					totalBytes += n
					pending <- pendingRecord{total, n, p.ProduceAsync(rec)}
				}
			}
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

			fails.mu.Lock()
			sum := produceSummary{
				Records:   total - fails.count,
				Failed:    fails.count,
				Bytes:     totalBytes - fails.bytes,
				ElapsedMS: elapsed.Milliseconds(),
			}
			first := append([]string(nil), fails.first...)
			fails.mu.Unlock()
			if s := elapsed.Seconds(); s > 0 {
				sum.RecordsPerSec = float64(sum.Records) / s
			}
			for _, e := range first {
				fmt.Fprintln(cmd.ErrOrStderr(), "mamba: failed:", e)
			}
			if err := o.print(cmd.OutOrStdout(), sum, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "produced %d records (%d bytes) to %s in %v, %.0f records/s", sum.Records, sum.Bytes, args[0], elapsed.Round(time.Millisecond), sum.RecordsPerSec)
				if sum.Failed > 0 {
					fmt.Fprintf(tw, "; %d failed", sum.Failed)
				}
				fmt.Fprintln(tw)
			}); err != nil {
				return err
			}
			switch {
			case readErr != nil:
				return fmt.Errorf("reading input: %w", readErr)
			case sum.Failed > 0:
				return fmt.Errorf("%d of %d records failed", sum.Failed, total)
			case closeErr != nil:
				return closeErr
			case interrupted:
				return errors.New("interrupted")
			}
			return nil
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "read lines from this file instead of stdin")
	f.StringVarP(&key, "key", "k", "", "key of every record")
	f.StringVar(&keySep, "key-sep", "", "split each line at the first SEP into key and value")
	f.StringArrayVarP(&headers, "header", "H", nil, "header name=value added to every record (repeatable)")
	f.Int32VarP(&partition, "partition", "p", 0, "produce every record to this partition (default: by key, else the producer picks)")
	return cmd
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
