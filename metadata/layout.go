package metadata

import (
	"fmt"
	"strconv"
	"strings"
)

// A layout records how the records of a request with an idempotency key map
// onto the request's batches, so that a repeat of the request can be
// answered from the stored base offsets alone. Its text form is
//
//	p0,p1,...;k*n,k*n,...
//
// the partition of each of the request's batches in commit order, then runs
// of records in the request's order, each run n records long and in the
// request's k-th batch.

// RecordPosition is where one record of a request went.
type RecordPosition struct {
	Partition int32
	Offset    int64
}

// EncodeLayout builds the layout of a request whose batches are in the
// given partitions (in commit order) and whose i-th record is in batch
// recordBatch[i].
func EncodeLayout(batchPartitions []int32, recordBatch []int) string {
	var sb strings.Builder
	for k, p := range batchPartitions {
		if k > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(int(p)))
	}
	sb.WriteByte(';')
	first := true
	for i := 0; i < len(recordBatch); {
		j := i
		for j < len(recordBatch) && recordBatch[j] == recordBatch[i] {
			j++
		}
		if !first {
			sb.WriteByte(',')
		}
		first = false
		sb.WriteString(strconv.Itoa(recordBatch[i]) + "*" + strconv.Itoa(j-i))
		i = j
	}
	return sb.String()
}

// BatchOrderLayout is the layout of a request whose records are grouped by
// batch: all records of the first batch, then of the second, and so on.
// Restoring from the bucket uses it, since a chunk keeps a request's
// batches but not the order its records were sent in.
func BatchOrderLayout(batchPartitions []int32, batchRecords []int) string {
	var recordBatch []int
	for k, n := range batchRecords {
		for range n {
			recordBatch = append(recordBatch, k)
		}
	}
	return EncodeLayout(batchPartitions, recordBatch)
}

// DecodeLayout rebuilds the positions of a request's records from its
// layout and the base offsets of its batches.
func DecodeLayout(layout string, bases []int64) ([]RecordPosition, error) {
	partsStr, runsStr, ok := strings.Cut(layout, ";")
	if !ok {
		return nil, fmt.Errorf("malformed layout %q", layout)
	}
	var parts []int32
	for s := range strings.SplitSeq(partsStr, ",") {
		p, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("malformed layout %q", layout)
		}
		parts = append(parts, int32(p))
	}
	if len(parts) != len(bases) {
		return nil, fmt.Errorf("layout %q names %d batches, %d base offsets stored", layout, len(parts), len(bases))
	}
	next := make([]int64, len(bases))
	copy(next, bases)
	var out []RecordPosition
	for run := range strings.SplitSeq(runsStr, ",") {
		ks, ns, ok := strings.Cut(run, "*")
		k, err1 := strconv.Atoi(ks)
		cnt, err2 := strconv.Atoi(ns)
		if !ok || err1 != nil || err2 != nil || k < 0 || k >= len(parts) || cnt <= 0 {
			return nil, fmt.Errorf("malformed layout %q", layout)
		}
		for range cnt {
			out = append(out, RecordPosition{Partition: parts[k], Offset: next[k]})
			next[k]++
		}
	}
	return out, nil
}
