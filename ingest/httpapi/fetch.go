package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/wire"
)

// The fetch endpoint (docs/api.md, "Fetch").

type apiFetchResponse struct {
	Records        []apiFetchedRecord `json:"records"`
	NextOffset     int64              `json:"next_offset"`
	HighWatermark  int64              `json:"high_watermark"`
	LogStartOffset int64              `json:"log_start_offset"`
}

// apiFetchedRecord is the one JSON shape of a fetched record, shared with
// `mamba consume -o json`.
type apiFetchedRecord = wire.JSONRecord

// fetchParams parses the fetch query parameters. wait_ms is clamped to
// the service's MaxWait, the one long-poll limit.
func (h *handler) fetchParams(q url.Values, req *ingest.FetchRequest) error {
	offset, ok, err := queryInt(q, "offset", 0, math.MaxInt64)
	if err != nil {
		return err
	}
	if !ok {
		return invalidf("offset: required")
	}
	req.Offset = offset
	maxRecords, ok, err := queryInt(q, "max_records", 1, math.MaxInt32)
	if err != nil {
		return err
	}
	req.MaxRecords = DefaultFetchMaxRecords
	if ok {
		req.MaxRecords = int(maxRecords)
	}
	maxBytes, ok, err := queryInt(q, "max_bytes", 1, math.MaxInt32)
	if err != nil {
		return err
	}
	req.MaxBytes = DefaultFetchMaxBytes
	if ok {
		req.MaxBytes = int(maxBytes)
	}
	waitMS, _, err := queryInt(q, "wait_ms", 0, math.MaxInt64)
	if err != nil {
		return err
	}
	maxWait := h.svc.MaxWait()
	req.Wait = maxWait
	if waitMS < maxWait.Milliseconds() {
		req.Wait = time.Duration(waitMS) * time.Millisecond
	}
	return nil
}

func (h *handler) fetch(w http.ResponseWriter, r *http.Request) error {
	topic, err := pathTopic(r)
	if err != nil {
		return err
	}
	ps := r.PathValue("partition")
	p, err := strconv.ParseInt(ps, 10, 32)
	if err != nil || p < 0 {
		return fmt.Errorf("%w: %q is not a partition number", ingest.ErrPartitionNotFound, shorten(ps))
	}
	q, err := query(r)
	if err != nil {
		return err
	}
	b64, err := base64Format(q)
	if err != nil {
		return err
	}
	req := ingest.FetchRequest{Topic: topic, Partition: int32(p)}
	if err := h.fetchParams(q, &req); err != nil {
		return err
	}
	done, err := h.admitFetchQuota(r.Context(), req.Wait > 0)
	if err != nil {
		return err
	}
	defer func() { done(bytesWritten(w)) }()
	// The request's context ends when the client goes away, which ends a
	// long-poll early.
	res, err := h.svc.Fetch(r.Context(), req)
	if err != nil {
		return err
	}
	defer func() { res.Memory.Release() }()
	if acceptsBinary(r) {
		if err := h.reserveResponse(&res, 32, binaryRecordSize); err != nil {
			return err
		}
		// Write copies the body out before it returns, so its buffer
		// serves the next fetch.
		body := appendBinaryFetch(res, &h.bodies)
		h.writeBody(w, http.StatusOK, mediaBinary, body)
		h.bodies.release(body)
		return nil
	}
	if err := h.reserveResponse(&res, 128, jsonFetchRecordSize); err != nil {
		return err
	}
	out := apiFetchResponse{
		Records:        make([]apiFetchedRecord, len(res.Records)),
		NextOffset:     res.NextOffset,
		HighWatermark:  res.HighWatermark,
		LogStartOffset: res.LogStartOffset,
	}
	for i, rec := range res.Records {
		out.Records[i] = fetchedToAPI(rec, b64)
	}
	h.writeJSON(w, http.StatusOK, out)
	return nil
}

// fetchedToAPI converts a record for JSON, by the one rule of
// wire.JSONBytes: text, or base64 for all of key, value and header values
// when b64 is set or any of them is not UTF-8.
func fetchedToAPI(rec ingest.FetchedRecord, b64 bool) apiFetchedRecord {
	return wire.NewJSONRecord(b64, rec.Offset, rec.Timestamp, rec.Key, rec.Value, rec.Headers)
}

// appendBinaryFetch encodes a fetch result in the binary format, into a
// buffer from pool that the caller releases once written.
func appendBinaryFetch(res ingest.FetchResult, pool *bodyPool) []byte {
	size := 32
	for i := range res.Records {
		size += int(binaryRecordSize(&res.Records[i]))
	}
	out := wire.FetchResponse{NextOffset: res.NextOffset, HighWatermark: res.HighWatermark, LogStartOffset: res.LogStartOffset}
	b := pool.get(size)
	b = wire.AppendFetchResponseStart(b, out, len(res.Records))
	var hs []wire.Header // reused: AppendFetchRecord copies
	for i := range res.Records {
		rec := &res.Records[i]
		r := wire.FetchRecord{Offset: rec.Offset, Timestamp: rec.Timestamp, Key: rec.Key, Value: rec.Value}
		if len(rec.Headers) > 0 {
			hs = hs[:0]
			for _, hdr := range rec.Headers {
				hs = append(hs, wire.Header{Name: hdr.Name, Value: hdr.Value})
			}
			r.Headers = hs
		}
		b = wire.AppendFetchRecord(b, &r)
	}
	return b
}
