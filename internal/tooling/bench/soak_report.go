package bench

import (
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteSoakTable prints a soak run: one row per sample, then the ratio of
// the last sample to the reference for each bounded column, and the
// verdict.
func WriteSoakTable(w io.Writer, rep SoakReport) error {
	s := rep.Settings
	fmt.Fprintf(w, "soak: %s at %.0f records/s of %d B, %d partition(s), %d producer(s), retention %s, a sample every %s, Redis appendfsync %s\n",
		s.Duration, s.Rate, s.RecordBytes, s.Partitions, s.Producers,
		s.Retention, s.SampleInterval, s.RedisFsync)
	if len(s.NodeArgs) > 0 {
		fmt.Fprintf(w, "node flags: %s\n", strings.Join(s.NodeArgs, " "))
	}
	if rep.Interrupted {
		fmt.Fprintf(w, "interrupted after %d sample(s)\n", len(rep.Samples))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, c := range SoakColumns {
		fmt.Fprintf(tw, "%s\t", c.Name)
	}
	fmt.Fprintln(tw)
	for _, smp := range rep.Samples {
		for _, c := range SoakColumns {
			fmt.Fprintf(tw, "%s\t", c.format(c.value(smp)))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, smp := range rep.Samples {
		for _, e := range smp.Errors {
			fmt.Fprintf(w, "minute %.2f: %s\n", smp.Minute, e)
		}
	}
	fmt.Fprintln(w)
	writeSoakVerdict(w, rep)
	if p := rep.Produce; p != nil {
		fmt.Fprintf(w, "produce: %d records at %.0f records/s, %d errors, ack latency %s\n",
			p.Produce.Records, p.Produce.RecordsPerSec, p.Errors, latencyString(p.Ack))
	}
	return nil
}

// writeSoakVerdict prints the checks and the verdict.
func writeSoakVerdict(w io.Writer, rep SoakReport) {
	if rep.Reference < 0 {
		fmt.Fprintf(w, "no verdict: the run stopped before its reference sample (due at %s)\n", rep.ReferenceAt)
		return
	}
	ref, last := rep.Samples[rep.Reference], rep.Samples[len(rep.Samples)-1]
	fmt.Fprintf(w, "last sample (minute %.2f) against the reference (minute %.2f), bound %.2fx:\n", last.Minute, ref.Minute, SoakBound)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "column\treference\tfinal\tratio\twithin\t")
	failed := 0
	for _, ch := range rep.Checks {
		col := soakColumn(ch.Column)
		ratio, within := "inf", "no"
		if ch.Ratio != nil {
			ratio = fmt.Sprintf("%.2fx", *ch.Ratio)
		}
		if ch.Within {
			within = "yes"
		} else {
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", ch.Column, col.format(ch.Reference), col.format(ch.Final), ratio, within)
	}
	_ = tw.Flush()
	if failed == 0 {
		fmt.Fprintf(w, "verdict: PASS, every column within %.2fx\n", SoakBound)
	} else {
		fmt.Fprintf(w, "verdict: FAIL, %d of %d columns beyond %.2fx\n", failed, len(rep.Checks), SoakBound)
	}
}

func soakColumn(name string) SoakColumn {
	for _, c := range SoakColumns {
		if c.Name == name {
			return c
		}
	}
	return SoakColumn{Name: name, value: func(SoakSample) float64 { return 0 }, format: count}
}

// WriteSoakCSV prints the samples as CSV with a header row, in raw units
// (bytes, seconds), one column per SoakColumns entry plus the errors.
func WriteSoakCSV(w io.Writer, rep SoakReport) error {
	cw := csv.NewWriter(w)
	header := []string{"minute", "acked", "redis_used_bytes", "index_entries", "bucket_objects", "bucket_bytes",
		"checkpoint_bytes", "checkpoint_seconds", "node_rss_bytes", "errors"}
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, s := range rep.Samples {
		row := []string{
			fmt.Sprintf("%.4f", s.Minute), fmt.Sprint(s.Acked), fmt.Sprint(s.RedisUsedMemory), fmt.Sprint(s.IndexEntries),
			fmt.Sprint(s.BucketObjects), fmt.Sprint(s.BucketBytes), fmt.Sprint(s.CheckpointBytes),
			fmt.Sprintf("%.6f", s.CheckpointSeconds), fmt.Sprint(s.NodeRSSBytes), strings.Join(s.Errors, "; "),
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
