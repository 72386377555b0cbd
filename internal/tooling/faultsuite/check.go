package faultsuite

import (
	"context"
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
	// partition and offset they were acknowledged with. Corrupt records
	// carry a known id with other bytes than were sent; Phantom records
	// decode to no record any producer sent.
	Lost, Duplicated, Misplaced, Corrupt, Phantom int
	// Gaps counts offsets that are not contiguous from 0.
	Gaps int
	// LongestUnavailability is the longest time a producer went without
	// an acknowledgement.
	LongestUnavailability time.Duration
	// Problems describes the first violations found, for the test log.
	Problems []string
}

// OK reports whether the scenario kept every promise.
func (r Result) OK() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Misplaced == 0 && r.Corrupt == 0 && r.Phantom == 0 && r.Gaps == 0
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
	seen := map[RecordID][]position{}
	var res Result
	next := map[int32]int64{} // partition -> next offset to read
	for {
		d, err := c.DescribeTopic(ctx, topic)
		if err != nil {
			return res, fmt.Errorf("describe %s: %w", topic, err)
		}
		moved := false
		for _, ps := range d.PartitionStats {
			if ps.LogStartOffset != 0 {
				res.Gaps++
				res.problem("partition %d starts at offset %d, not 0", ps.Partition, ps.LogStartOffset)
			}
			if next[ps.Partition] >= ps.HighWatermark {
				continue
			}
			moved = true
			if err := readPartition(ctx, c, topic, ps.Partition, next, ps.HighWatermark, seen, l, &res); err != nil {
				return res, err
			}
		}
		if !moved {
			break
		}
	}

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
		case len(pos) == 0:
			res.Lost++
			res.problem("%v acknowledged at %d/%d is not in the log", id, a.Partition, a.Offset)
		case a.Offset >= 0 && !slices.Contains(pos, position{a.Partition, a.Offset}):
			res.Misplaced++
			res.problem("%v acknowledged at %d/%d is at %v", id, a.Partition, a.Offset, pos)
		}
	}
	return res, nil
}

// readPartition reads partition p from next[p] up to hwm.
func readPartition(ctx context.Context, c *client.Client, topic string, p int32, next map[int32]int64, hwm int64,
	seen map[RecordID][]position, l *Ledger, res *Result) error {
	pc, err := c.NewPartitionConsumer(topic, p, next[p], client.WithMaxWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	for pc.Position() < hwm {
		recs, err := pc.Fetch(ctx)
		if err != nil {
			return fmt.Errorf("fetch %s/%d at %d: %w", topic, p, pc.Position(), err)
		}
		for _, rec := range recs {
			res.Read++
			if want := next[p]; rec.Offset != want {
				res.Gaps++
				res.problem("partition %d: offset %d follows %d", p, rec.Offset, want-1)
			}
			next[p] = rec.Offset + 1
			id, ok := ParsePayload(rec.Value)
			l.mu.Lock()
			sum, sent := l.sent[id]
			l.mu.Unlock()
			switch {
			case !ok || !sent:
				res.Phantom++
				res.problem("%d/%d holds a record no producer sent (%q...)", p, rec.Offset, rec.Value[:min(len(rec.Value), 40)])
				continue
			case Checksum(rec.Value) != sum:
				res.Corrupt++
				res.problem("%v at %d/%d has other bytes than were sent", id, p, rec.Offset)
			}
			seen[id] = append(seen[id], position{p, rec.Offset})
		}
	}
	return nil
}

// WriteTable writes results as a Markdown table.
func WriteTable(w io.Writer, results []Result) error {
	var b strings.Builder
	b.WriteString("| scenario | sent | acked | failed | read | lost | duplicated | misplaced | corrupt | phantom | gaps | longest unavailability |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s |\n",
			r.Scenario, r.Sent, r.Acked, r.Failed, r.Read, r.Lost, r.Duplicated, r.Misplaced, r.Corrupt, r.Phantom,
			r.Gaps, r.LongestUnavailability.Round(10*time.Millisecond))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
