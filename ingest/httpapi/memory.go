package httpapi

import (
	"context"
	"net/http"
	"time"
	"unsafe"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/membudget"
	"github.com/mambamq/mamba/internal/wire"
)

// How the HTTP layer holds memory against the node's budget
// (Options.Budget, package internal/membudget):
//
//   - A request body reserves its buffer's capacity as the buffer grows,
//     before each growth; a refusal answers 429 overloaded (the rest of
//     the body is read through a small buffer and dropped, as for a 429
//     before the body).
//   - Decoding a produce body reserves its records' structures (and, for
//     JSON, their bytes) before they are allocated; the body's and the
//     records' reservations then go to the node with the request
//     (ProduceRequest.Memory), which keeps them until it answers.
//   - A fetch response reserves its encoded size before it is built,
//     on top of what the node reserved for reading the records; when
//     that does not fit, the response carries fewer records, and only
//     when not even one fits is the fetch answered 429.
//   - Any other JSON body is reserved while it is read and decoded.

// errMemoryFull answers a request the memory budget refused.
var errMemoryFull = &ingest.OverloadedError{RetryAfter: time.Second, What: "node memory budget full"}

type bodyMemoryKey struct{}

// withBodyMemory returns r with a reservation for its body in its
// context, and the reservation, which the caller releases once the
// handler has returned.
func (h *handler) withBodyMemory(r *http.Request) (*http.Request, *membudget.Reservation) {
	mem := h.opts.Budget.Start(membudget.Body)
	if mem == nil {
		return r, nil
	}
	return r.WithContext(context.WithValue(r.Context(), bodyMemoryKey{}, mem)), mem
}

// bodyMemory is the reservation withBodyMemory put in ctx, or nil.
func bodyMemory(ctx context.Context) *membudget.Reservation {
	mem, _ := ctx.Value(bodyMemoryKey{}).(*membudget.Reservation)
	return mem
}

// Sizes of the structures decoding holds per record and per header.
var (
	binaryRecordBytes = int64(unsafe.Sizeof(wire.ProduceRecord{}) + unsafe.Sizeof(ingest.ProduceRecord{}))
	binaryHeaderBytes = int64(unsafe.Sizeof(wire.Header{}) + unsafe.Sizeof(chunk.Header{}))
	jsonRecordBytes   = int64(unsafe.Sizeof(ingest.ProduceRecord{}))
	jsonHeaderBytes   = int64(unsafe.Sizeof(chunk.Header{}))
	// wireRecordBytes is what the binary decoder's own records cost; they
	// are dropped once converted.
	wireRecordBytes = int64(unsafe.Sizeof(wire.ProduceRecord{}))
	wireHeaderBytes = int64(unsafe.Sizeof(wire.Header{}))
)

// reserveResponse reserves, in res.Memory (started from the budget when
// the service reserved nothing), the memory of encoding res: base bytes
// plus size of each record. When that does not fit it keeps the first
// half of the records, and so on; when not even one record fits it
// returns errMemoryFull.
func (h *handler) reserveResponse(res *ingest.FetchResult, base int64, size func(*ingest.FetchedRecord) int64) error {
	if res.Memory == nil {
		res.Memory = h.opts.Budget.Start(membudget.Fetch)
	}
	prefix := make([]int64, len(res.Records)+1)
	prefix[0] = base
	for i := range res.Records {
		prefix[i+1] = prefix[i] + size(&res.Records[i])
	}
	k := len(res.Records)
	for !res.Memory.TryGrow(prefix[k]) {
		if k <= 1 {
			res.Memory.Refused()
			return errMemoryFull
		}
		k /= 2
	}
	if k < len(res.Records) {
		res.Records = res.Records[:k]
		res.NextOffset = res.Records[k-1].Offset + 1
	}
	return nil
}

// binaryRecordSize is a record's size in a binary fetch response, as
// appendBinaryFetch counts it.
func binaryRecordSize(rec *ingest.FetchedRecord) int64 {
	size := 24 + len(rec.Key) + len(rec.Value)
	for _, hdr := range rec.Headers {
		size += 4 + len(hdr.Name) + len(hdr.Value)
	}
	return int64(size)
}

// jsonFetchRecordSize estimates what a record costs in a JSON fetch
// response: its wire.JSONRecord (base64 or text copies of its bytes; text
// full of characters JSON escapes takes more) and
// its share of the encoded response and of the buffer it grows in (up to
// twice the encoding).
func jsonFetchRecordSize(rec *ingest.FetchedRecord) int64 {
	// Text is never longer than base64 but for escaped characters.
	text := func(b []byte) int64 { return int64(len(b)+2) / 3 * 4 }
	size := 160 + 3*(text(rec.Key)+text(rec.Value))
	for _, hdr := range rec.Headers {
		size += 32 + 3*(int64(len(hdr.Name))+text(hdr.Value))
	}
	return size
}
