package faultsuite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mambamq/mamba/client"
)

// Result is the checker's account of one scenario.
type Result struct {
	Scenario string
	// Sent records were handed to a producer; Acked were acknowledged;
	// Failed ended in an error (never acknowledged); Read were read back.
	Sent, Acked, Failed, Read int
	// Lost acknowledged records are missing from the log. Duplicated
	// records were read more than once (the extra copies are counted).
	// Misplaced acknowledged records are in the log, but not at the
	// partition and offset they were acknowledged with, or were
	// acknowledged durably without an offset. Corrupt records
	// carry a known id with other bytes than were sent; Phantom records
	// decode to no record any producer sent.
	Lost, Duplicated, Misplaced, Corrupt, Phantom int
	// Gaps counts offsets that are not contiguous from 0 (from the log
	// start, with CheckOptions.Trimmed).
	Gaps int
	// Expired acknowledged records are below their partition's log start:
	// retention removed them, as it may only with CheckOptions.Trimmed.
	// ReadableBelowStart counts partitions where a fetch just below the
	// log start still returned records instead of offset_out_of_range.
	Expired, ReadableBelowStart int
	// LongestUnavailability is the longest time a producer went without
	// an acknowledgement.
	LongestUnavailability time.Duration
	// Problems describes the first violations found, for the test log.
	Problems []string
}

// OK reports whether the scenario kept every promise.
func (r Result) OK() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Misplaced == 0 && r.Corrupt == 0 && r.Phantom == 0 && r.Gaps == 0 &&
		r.ReadableBelowStart == 0
}

// CheckOptions changes what Check accepts.
type CheckOptions struct {
	// Trimmed is for topics with retention: a partition may start above
	// offset 0 and its start may rise while Check reads. Acknowledged
	// records below the final log start count as Expired, not Lost, and a
	// fetch just below each log start must answer offset_out_of_range.
	Trimmed bool
}

const maxProblems = 20

func (r *Result) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

type position struct {
	partition int32
	offset    int64
}

// Check reads every partition of topic from offset 0 to its high
// watermark (again until the high watermarks stop moving) and compares
// the log with the ledger. Call it once every producer is closed.
func Check(ctx context.Context, c *client.Client, topic string, l *Ledger) (Result, error) {
	return CheckWith(ctx, c, topic, l, CheckOptions{})
}

// CheckWith is Check with options.
func CheckWith(ctx context.Context, c *client.Client, topic string, l *Ledger, opts CheckOptions) (Result, error) {
	r := reader{c: c, topic: topic, l: l, opts: opts, seen: map[RecordID][]position{}, next: map[int32]int64{}, start: map[int32]int64{}}
	res := &r.res
	for {
		d, err := c.DescribeTopic(ctx, topic)
		if err != nil {
			return *res, fmt.Errorf("describe %s: %w", topic, err)
		}
		moved := false
		for _, ps := range d.PartitionStats {
			p := ps.Partition
			switch {
			case opts.Trimmed:
				r.start[p] = max(r.start[p], ps.LogStartOffset)
				r.next[p] = max(r.next[p], ps.LogStartOffset)
			case ps.LogStartOffset != 0:
				res.Gaps++
				res.problem("partition %d starts at offset %d, not 0", p, ps.LogStartOffset)
			}
			if r.next[p] >= ps.HighWatermark {
				continue
			}
			moved = true
			if err := r.readPartition(ctx, p, ps.HighWatermark); err != nil {
				return *res, err
			}
		}
		if !moved {
			break
		}
	}
	if opts.Trimmed {
		if err := r.probeBelowStart(ctx); err != nil {
			return *res, err
		}
	}
	seen, l := r.seen, r.l

	l.mu.Lock()
	defer l.mu.Unlock()
	res.Sent, res.Acked, res.Failed = len(l.sent), len(l.acked), len(l.failed)
	for id, pos := range seen {
		if len(pos) > 1 {
			res.Duplicated += len(pos) - 1
			res.problem("%v read %d times: %v", id, len(pos), pos)
		}
	}
	ids := make([]RecordID, 0, len(l.acked))
	for id := range l.acked {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b RecordID) int {
		if a.Producer != b.Producer {
			return a.Producer - b.Producer
		}
		return int(a.Seq - b.Seq)
	})
	for _, id := range ids {
		a := l.acked[id]
		pos := seen[id]
		switch {
		case len(pos) == 0 && opts.Trimmed && a.Offset >= 0 && a.Offset < r.start[a.Partition]:
			res.Expired++
		case len(pos) == 0:
			res.Lost++
			res.problem("%v acknowledged at %d/%d is not in the log", id, a.Partition, a.Offset)
		case !a.Buffered && a.Offset < 0:
			res.Misplaced++
			res.problem("%v was acknowledged durably with offset %d", id, a.Offset)
		case !a.Buffered && !slices.Contains(pos, position{a.Partition, a.Offset}):
			res.Misplaced++
			res.problem("%v acknowledged at %d/%d is at %v", id, a.Partition, a.Offset, pos)
		}
	}
	return *res, nil
}

// reader is the state of one Check.
type reader struct {
	c     *client.Client
	topic string
	l     *Ledger
	opts  CheckOptions
	res   Result
	seen  map[RecordID][]position
	next  map[int32]int64 // partition -> next offset to read
	start map[int32]int64 // partition -> highest log start seen
}

// readPartition reads partition p from r.next[p] up to hwm. With
// CheckOptions.Trimmed, a fetch that finds its offset trimmed away skips
// to the new log start.
func (r *reader) readPartition(ctx context.Context, p int32, hwm int64) error {
	res := &r.res
	pc, err := r.c.NewPartitionConsumer(r.topic, p, r.next[p], client.WithMaxWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	for pc.Position() < hwm {
		recs, err := pc.Fetch(ctx)
		if r.opts.Trimmed && errors.Is(err, client.ErrOffsetOutOfRange) {
			start, derr := r.logStart(ctx, p)
			if derr != nil {
				return derr
			}
			if start <= pc.Position() {
				return fmt.Errorf("fetch %s/%d at %d: %w, but the log starts at %d", r.topic, p, pc.Position(), err, start)
			}
			r.start[p], r.next[p] = start, start
			if pc, err = r.c.NewPartitionConsumer(r.topic, p, start, client.WithMaxWait(100*time.Millisecond)); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("fetch %s/%d at %d: %w", r.topic, p, pc.Position(), err)
		}
		for _, rec := range recs {
			res.Read++
			if want := r.next[p]; rec.Offset != want {
				res.Gaps++
				res.problem("partition %d: offset %d follows %d", p, rec.Offset, want-1)
			}
			r.next[p] = rec.Offset + 1
			id, ok := ParsePayload(rec.Value)
			r.l.mu.Lock()
			sum, sent := r.l.sent[id]
			r.l.mu.Unlock()
			switch {
			case !ok || !sent:
				res.Phantom++
				res.problem("%d/%d holds a record no producer sent (%q...)", p, rec.Offset, rec.Value[:min(len(rec.Value), 40)])
				continue
			case Checksum(rec.Value) != sum:
				res.Corrupt++
				res.problem("%v at %d/%d has other bytes than were sent", id, p, rec.Offset)
			}
			r.seen[id] = append(r.seen[id], position{p, rec.Offset})
		}
	}
	return nil
}

// logStart returns partition p's log start offset now.
func (r *reader) logStart(ctx context.Context, p int32) (int64, error) {
	d, err := r.c.DescribeTopic(ctx, r.topic)
	if err != nil {
		return 0, fmt.Errorf("describe %s: %w", r.topic, err)
	}
	for _, ps := range d.PartitionStats {
		if ps.Partition == p {
			return ps.LogStartOffset, nil
		}
	}
	return 0, fmt.Errorf("describe %s: no partition %d", r.topic, p)
}

// probeBelowStart fetches the offset just below each partition's log
// start: retention removed it, so the node must answer offset_out_of_range.
func (r *reader) probeBelowStart(ctx context.Context) error {
	for p, start := range r.start {
		if start == 0 {
			continue
		}
		pc, err := r.c.NewPartitionConsumer(r.topic, p, start-1, client.WithMaxWait(100*time.Millisecond))
		if err != nil {
			return err
		}
		recs, err := pc.Fetch(ctx)
		switch {
		case errors.Is(err, client.ErrOffsetOutOfRange):
		case err != nil:
			return fmt.Errorf("fetch %s/%d below its log start %d: %w", r.topic, p, start, err)
		case len(recs) > 0:
			r.res.ReadableBelowStart++
			r.res.problem("partition %d: offset %d, below the log start %d, is still readable", p, recs[0].Offset, start)
		}
	}
	return nil
}

// WriteTable writes results as a Markdown table.
func WriteTable(w io.Writer, results []Result) error {
	var b strings.Builder
	b.WriteString("| scenario | sent | acked | failed | read | lost | duplicated | misplaced | corrupt | phantom | gaps | expired | readable below start | longest unavailability |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s |\n",
			r.Scenario, r.Sent, r.Acked, r.Failed, r.Read, r.Lost, r.Duplicated, r.Misplaced, r.Corrupt, r.Phantom,
			r.Gaps, r.Expired, r.ReadableBelowStart, r.LongestUnavailability.Round(10*time.Millisecond))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
