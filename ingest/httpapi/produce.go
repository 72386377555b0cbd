package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/membudget"
	"github.com/mambamq/mamba/internal/wire"
)

// The produce endpoint (docs/api.md, "Produce").

type apiProduceRequest struct {
	Records []apiProduceRecord `json:"records"`
}

type apiProduceRecord struct {
	// Key is nil when absent or null: a record without a key.
	Key     *string           `json:"key"`
	Value   string            `json:"value"`
	Headers apiProduceHeaders `json:"headers"`
	// Partition is nil when absent or null: any partition.
	Partition *int64 `json:"partition"`
	Timestamp int64  `json:"timestamp"`
}

type apiProduceResponse struct {
	Records []apiRecordResult `json:"records"`
}

type apiRecordResult struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// produceOptions reads the ack query parameter and the Idempotency-Key
// header. The key itself is the service's to validate; an empty header is
// refused here because an empty key means "none" to the service.
func produceOptions(r *http.Request, q url.Values) (ingest.ProduceOptions, error) {
	var opts ingest.ProduceOptions
	ack, err := queryChoice(q, "ack", "durable", "durable", "buffered")
	if err != nil {
		return opts, err
	}
	if ack == "buffered" {
		opts.Ack = ingest.AckBuffered
	}
	if keys, ok := r.Header["Idempotency-Key"]; ok {
		if len(keys) != 1 {
			return opts, invalidf("Idempotency-Key: want one header, not %d", len(keys))
		}
		if keys[0] == "" {
			return opts, invalidf("Idempotency-Key: empty; leave the header out to send none")
		}
		opts.IdempotencyKey = keys[0]
	}
	return opts, nil
}

// produce answers 429 before it reads the body when the service's
// admission refuses the announced size. A binary body comes from the body
// pool and goes back when the service calls the request's Release.
func (h *handler) produce(w http.ResponseWriter, r *http.Request) error {
	topic, err := pathTopic(r)
	if err != nil {
		return err
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != mediaJSON && mt != mediaBinary) {
		return fmt.Errorf("%w: Content-Type %q; send %s or %s", errUnsupportedMediaType, shorten(ct), mediaJSON, mediaBinary)
	}
	q, err := query(r)
	if err != nil {
		return err
	}
	b64, err := base64Format(q)
	if err != nil {
		return err
	}
	opts, err := produceOptions(r, q)
	if err != nil {
		return err
	}
	// Refuse before the body takes memory, but read it (through a small
	// buffer) so that the client, still sending, gets the answer on a
	// connection that stays usable.
	quota, err := h.admitProduceQuota(r, opts.IdempotencyKey != "")
	if err != nil {
		h.discardBody(w, r)
		return err
	}
	if r.ContentLength > 0 && r.ContentLength <= h.opts.MaxRequestBytes {
		if err := h.svc.AdmitProduce(r.ContentLength); err != nil {
			quota.refundKey()
			h.discardBody(w, r)
			return err
		}
	}
	var pool *bodyPool
	if mt == mediaBinary {
		// The records alias a binary body; the service releases it once
		// they are in a chunk. (JSON records are copies.)
		pool = &h.bodies
	}
	// The body's and the decoded records' reservations go to the
	// service with the request, which keeps them until it answers.
	mem := h.opts.Budget.Start(membudget.Body)
	body, err := h.readBodyFrom(w, r, pool, mem)
	quota.chargeBody(len(body))
	if err != nil {
		mem.Release()
		quota.refundKey()
		return err
	}
	req := ingest.ProduceRequest{Topic: topic, Options: opts, Memory: h.opts.Budget.Start(membudget.Decode)}
	if mt == mediaBinary {
		req.Records, err = decodeBinaryRecords(body, req.Memory)
		req.Release = func() { pool.release(body) }
		mem.Absorb(req.Memory)
		req.Memory = mem
	} else {
		req.Records, err = decodeJSONRecords(body, b64, req.Memory)
		mem.Release() // JSON records are copies: the body is garbage now
	}
	if err != nil {
		req.Memory.Release()
		pool.release(body)
		quota.refundKey()
		return err
	}
	results, err := h.svc.Submit(r.Context(), req)
	if err != nil {
		if status, _ := classify(err); status < http.StatusInternalServerError {
			// Refused before its commit: no key was remembered. (After
			// a 5xx the commit may have happened.)
			quota.refundKey()
		}
		if errors.Is(err, ingest.ErrPartitionNotFound) {
			// A partition the topic lacks is the producer's mistake in
			// this request, not a missing resource.
			return fmt.Errorf("%w: %v", ingest.ErrInvalidRequest, err)
		}
		return err
	}
	if len(results) != len(req.Records) {
		return fmt.Errorf("produce to %s returned %d results for %d records", topic, len(results), len(req.Records))
	}
	h.writeProduced(w, r, opts.Ack, results)
	return nil
}

// writeProduced answers the records' partitions and offsets, in the
// binary format when the client accepts it.
func (h *handler) writeProduced(w http.ResponseWriter, r *http.Request, ack ingest.AckMode, results []ingest.RecordResult) {
	status := http.StatusOK
	if ack == ingest.AckBuffered {
		status = http.StatusAccepted
	}
	if acceptsBinary(r) {
		out := make([]wire.ProduceResult, len(results))
		for i, res := range results {
			out[i] = wire.ProduceResult{Partition: res.Partition, Offset: res.Offset}
		}
		h.writeBody(w, status, mediaBinary, wire.AppendProduceResponse(make([]byte, 0, 4+len(out)*8), out))
		return
	}
	out := apiProduceResponse{Records: make([]apiRecordResult, len(results))}
	for i, res := range results {
		out.Records[i] = apiRecordResult{Partition: res.Partition, Offset: res.Offset}
	}
	h.writeJSON(w, status, out)
}

// decodeBinaryRecords decodes a produce body in the binary format. The
// records alias body. It reserves their structures in mem before it
// decodes them, from the count the body announces (headers once their
// count is known), and keeps what the returned records hold.
func decodeBinaryRecords(body []byte, mem *membudget.Reservation) ([]ingest.ProduceRecord, error) {
	wireErr := func(err error) error {
		if errors.Is(err, wire.ErrLimit) {
			return fmt.Errorf("%w: %v", ingest.ErrTooLarge, err)
		}
		return invalidf("%v", err)
	}
	count, err := wire.ProduceRequestCount(body)
	if err != nil {
		return nil, wireErr(err)
	}
	if !mem.Grow(int64(count) * binaryRecordBytes) {
		return nil, errMemoryFull
	}
	in, err := wire.DecodeProduceRequest(body)
	if err != nil {
		return nil, wireErr(err)
	}
	headers := 0
	for _, rec := range in {
		headers += len(rec.Headers)
	}
	if !mem.Grow(int64(headers) * binaryHeaderBytes) {
		return nil, errMemoryFull
	}
	// The decoder's own records are dropped once converted.
	defer mem.Shrink(int64(len(in))*wireRecordBytes + int64(headers)*wireHeaderBytes)
	records := make([]ingest.ProduceRecord, len(in))
	for i, rec := range in {
		var hs []chunk.Header
		if len(rec.Headers) > 0 {
			hs = make([]chunk.Header, len(rec.Headers))
			for j, hdr := range rec.Headers {
				hs[j] = chunk.Header{Name: hdr.Name, Value: hdr.Value}
			}
		}
		records[i] = ingest.ProduceRecord{Key: rec.Key, Value: rec.Value, Headers: hs, Timestamp: rec.Timestamp, Partition: rec.Partition}
	}
	return records, nil
}

// decodeJSONRecords decodes a JSON produce body; with b64, keys, values
// and header values are standard base64. It streams: records are decoded
// and converted one at a time, and the record and header counts are
// checked before each record is kept, so a body of millions of tiny
// records is refused at the first record over the limit instead of being
// decoded whole first.
//
// Memory: the records' bytes are copies, never more than the body's
// size, which it reserves in mem first; each record's structures are
// reserved before the record is kept.
func decodeJSONRecords(body []byte, b64 bool, mem *membudget.Reservation) ([]ingest.ProduceRecord, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalidf("request body is empty; want a JSON object")
	}
	if !mem.Grow(int64(len(body))) {
		return nil, errMemoryFull
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := expectDelim(dec, '{', "request body"); err != nil {
		return nil, err
	}
	var records []ingest.ProduceRecord
	headers, seen := 0, false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(err, "")
		}
		if name, _ := tok.(string); name != "records" || seen {
			return nil, invalidf("malformed JSON: unknown or repeated field %q; want one \"records\"", shorten(fmt.Sprint(tok)))
		}
		seen = true
		if tok, err = dec.Token(); err != nil {
			return nil, jsonError(err, "")
		}
		if tok == nil {
			continue // "records": null, as no records
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return nil, invalidf("field records: JSON %s is not a valid array", jsonKind(tok))
		}
		for dec.More() {
			i := len(records)
			if i == wire.MaxRecords {
				return nil, fmt.Errorf("%w: over %d records, the limit per request", ingest.ErrTooLarge, wire.MaxRecords)
			}
			var in apiProduceRecord
			if err := dec.Decode(&in); err != nil {
				return nil, jsonError(err, fmt.Sprintf("records[%d].", i))
			}
			if headers += len(in.Headers.list); headers > wire.MaxHeaders {
				return nil, fmt.Errorf("%w: over %d record headers at records[%d], the limit per request", ingest.ErrTooLarge, wire.MaxHeaders, i)
			}
			rec, err := decodeJSONRecord(in, b64, i)
			if err != nil {
				return nil, err
			}
			if !mem.Grow(jsonRecordBytes + int64(len(rec.Headers))*jsonHeaderBytes) {
				return nil, errMemoryFull
			}
			records = append(records, rec)
		}
		if _, err := dec.Token(); err != nil { // ]
			return nil, jsonError(err, "")
		}
	}
	if _, err := dec.Token(); err != nil { // }
		return nil, jsonError(err, "")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalidf("malformed JSON: data after the JSON object")
	}
	return records, nil
}

// expectDelim reads the next token of dec, which must be delim.
func expectDelim(dec *json.Decoder, delim json.Delim, what string) error {
	tok, err := dec.Token()
	if err != nil {
		return jsonError(err, "")
	}
	if d, ok := tok.(json.Delim); !ok || d != delim {
		return invalidf("%s is a JSON %s; want an object", what, jsonKind(tok))
	}
	return nil
}

// jsonKind names the JSON kind of a token.
func jsonKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "array"
		}
		return "object"
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "bool"
	}
	return "null"
}

// decodeJSONRecord converts records[i] of a JSON produce body.
func decodeJSONRecord(in apiProduceRecord, b64 bool, i int) (ingest.ProduceRecord, error) {
	decode := func(s string, field string) ([]byte, error) {
		if !b64 {
			return []byte(s), nil
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, invalidf("records[%d].%s: not standard base64: %v", i, field, err)
		}
		return b, nil
	}
	rec := ingest.ProduceRecord{Partition: ingest.AnyPartition, Timestamp: in.Timestamp}
	if in.Partition != nil {
		// JSON has null for "any partition", so -1 is no partition here.
		p := *in.Partition
		if p < 0 || p > math.MaxInt32 {
			return rec, invalidf("records[%d].partition %d: want 0 to %d, or leave it out to let the node choose", i, p, math.MaxInt32)
		}
		rec.Partition = int32(p)
	}
	var err error
	if in.Key != nil {
		if rec.Key, err = decode(*in.Key, "key"); err != nil {
			return rec, err
		}
	}
	if rec.Value, err = decode(in.Value, "value"); err != nil {
		return rec, err
	}
	if len(in.Headers.list) > 0 {
		rec.Headers = make([]chunk.Header, len(in.Headers.list))
		for j, hdr := range in.Headers.list {
			field := "headers[" + strconv.Itoa(j) + "].value"
			if in.Headers.fromObject {
				field = "headers." + hdr.Key
			}
			value, err := decode(hdr.Value, field)
			if err != nil {
				return rec, err
			}
			rec.Headers[j] = chunk.Header{Name: hdr.Key, Value: value}
		}
	}
	return rec, nil
}
