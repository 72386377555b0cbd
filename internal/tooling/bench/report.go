package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
)

// WriteMambaReport prints a human-readable report of one Mamba run.
func WriteMambaReport(w io.Writer, res MambaResult) error {
	s := res.Settings
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	keys := "no keys"
	if s.Keys > 0 {
		keys = fmt.Sprintf("%d keys", s.Keys)
	}
	p("workload\t%d B records (%s), %d topic(s) x %d partition(s), %d producer(s), %d group(s) x %d consumer(s), rate %s, %s measured after %s warm-up",
		s.MessageSize, keys, s.Topics, s.Partitions, s.Producers, s.Groups, s.Consumers, rateString(s.Rate), s.Duration, s.Warmup)
	p("sdk\tack=%s, %s, linger %s, batch %s, %d in flight", s.Ack, s.Format, s.Linger, humanize.IBytes(uint64(s.BatchBytes)), s.InFlight)
	p("produce\t%.0f records/s, %.1f MiB/s (%d records, %d errors)", res.Produce.RecordsPerSec, res.Produce.MiBPerSec, res.Produce.Records, res.Errors)
	p("ack latency\t%s", latencyString(res.Ack))
	if s.Groups > 0 {
		p("consume\t%.0f records/s, %.1f MiB/s", res.Consume.RecordsPerSec, res.Consume.MiBPerSec)
		p("end-to-end latency\t%s", latencyString(res.EndToEnd))
	}
	n := res.Node
	bound := ""
	if n.PUTBoundPerSec > 0 {
		bound = fmt.Sprintf(" (bound 1/flush interval + MiB/s / flush MiB = %.1f)", n.PUTBoundPerSec)
	}
	p("object store\t%.1f PUTs/s%s, %.1f GETs/s", n.PUTsPerSec, bound, n.GETsPerSec)
	p("S3 request cost\t$%.5f per GiB ingested (PUT $%.4f and GET $%.4f per 1,000 requests, AWS S3 Standard list prices)",
		n.S3CostPerGiB, PutPricePer1000, GetPricePer1000)
	if n.RedisCommandsPerSec > 0 {
		p("redis\t%.0f commands/s", n.RedisCommandsPerSec)
	}
	if c := res.CatchUp; c != nil {
		p("catch-up read\t%d reader(s), %s fetches: %d records, %.1f MiB/s, %.0f GETs (%.2f per MiB read, %.2f bytes read from the bucket per byte returned), $%.5f of GETs per GiB read",
			c.Readers, humanize.IBytes(uint64(c.FetchBytes)), c.Records, c.MiBPerSec, c.GETs, c.GETsPerMiB, c.GETBytesPerByte, c.S3GETCostPerGiB)
	}
	p("node\t%.2f cores CPU, peak RSS %s, %.0f answers 429", n.CPUCores, humanize.IBytes(uint64(n.PeakRSSBytes)), n.Overloaded)
	return tw.Flush()
}

func rateString(r float64) string {
	if r <= 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%.0f/s", r)
}

func latencyString(l Latency) string {
	if l.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max))
}

func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	}
	return fmt.Sprintf("%.2fms", v)
}

// ProgressLine renders p on one line, for a live display.
func ProgressLine(p Progress, window time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%5.1fs %-7s] acked %d (%.1f MiB/s)", p.Elapsed.Seconds(), p.Phase, p.Acked, mibPerSec(p.AckedBytes, window))
	if p.AckP99 > 0 {
		fmt.Fprintf(&b, " ack p99 %s", p.AckP99.Round(100*time.Microsecond))
	}
	if p.Consumed > 0 || p.EndToEndP99 > 0 {
		fmt.Fprintf(&b, " consumed %d e2e p99 %s", p.Consumed, p.EndToEndP99.Round(100*time.Microsecond))
	}
	if p.Overloaded > 0 {
		fmt.Fprintf(&b, " 429s %.0f", p.Overloaded)
	}
	if p.Errors > 0 {
		fmt.Fprintf(&b, " errors %d", p.Errors)
	}
	return b.String()
}

func mibPerSec(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / d.Seconds() / (1 << 20)
}

func byteString(n int) string { return humanize.IBytes(uint64(max(n, 0))) }

// WriteCompareReport prints the comparison table, then the targets.
func WriteCompareReport(w io.Writer, res CompareResult) error {
	m := res.Machine
	fmt.Fprintf(w, "machine: %s, %d cores, %d GiB, %s, %s\n", m.CPU, m.Cores, m.MemoryGiB, m.Kernel, m.Go)
	fmt.Fprintf(w, "settings: %s\n\n", res.Settings)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "system\tMiB/s\trecords/s\tack p50\tack p99\tack p99.9\tof PUT limit\tMamba is x\tdurability\t")
	for _, r := range res.Rows {
		of, over := "-", "-"
		if r.OfPUTLimit > 0 {
			of = fmt.Sprintf("%.0f%%", 100*r.OfPUTLimit)
		}
		if r.MambaOver > 0 {
			over = fmt.Sprintf("%.2f", r.MambaOver)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.System, r.MiBPerSec, r.RecordsPerSec,
			ms(r.AckP50), ms(r.AckP99), ms(r.AckP999), of, over, r.Durability)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Targets) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "target\twant\tgot\tmet")
		for _, t := range res.Targets {
			met := "no"
			if t.Met {
				met = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Want, t.Got, met)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, f := range res.Failures {
		fmt.Fprintf(w, "failed: %s\n", f)
	}
	fmt.Fprintf(w, "\ntook %s\n", res.Took)
	return nil
}
