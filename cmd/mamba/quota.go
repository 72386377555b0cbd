package main

import (
	"github.com/spf13/pflag"

	"github.com/mambamq/mamba/ingest/httpapi"
	"github.com/mambamq/mamba/internal/cliflag"
)

// quotaFlags are the --quota-* flags of serve and dev: the per-token
// quotas of every token that has none of its own (docs/security.md,
// "Quotas"). 0 is unlimited.
type quotaFlags struct {
	produceBytes    cliflag.ByteSize
	produceRequests int64
	fetchBytes      cliflag.ByteSize
	longPolls       int64
	idempotencyKeys int64
}

func defaultQuotaFlags() quotaFlags {
	return quotaFlags{
		produceBytes:    httpapi.DefaultQuotaProduceBytes,
		produceRequests: httpapi.DefaultQuotaProduceRequests,
		fetchBytes:      httpapi.DefaultQuotaFetchBytes,
		longPolls:       httpapi.DefaultQuotaLongPolls,
		idempotencyKeys: httpapi.DefaultQuotaIdempotencyKeys,
	}
}

func addQuotaFlags(f *pflag.FlagSet, q *quotaFlags) {
	const each = "; per token and per node, for tokens without their own (with --auth only); 0 is unlimited"
	f.Var(&q.produceBytes, "quota-produce-bytes", "produce request body bytes a second"+each)
	f.Int64Var(&q.produceRequests, "quota-produce-requests", q.produceRequests, "produce requests a second"+each)
	f.Var(&q.fetchBytes, "quota-fetch-bytes", "fetch answer bytes a second"+each)
	f.Int64Var(&q.longPolls, "quota-long-polls", q.longPolls, "fetches with a wait (wait_ms > 0) in flight at once"+each)
	f.Int64Var(&q.idempotencyKeys, "quota-idempotency-keys", q.idempotencyKeys, "produce requests with an Idempotency-Key per --dedup-window"+each)
}

func (q quotaFlags) quotas() httpapi.Quotas {
	return httpapi.Quotas{
		ProduceBytes:    int64(q.produceBytes),
		ProduceRequests: q.produceRequests,
		FetchBytes:      int64(q.fetchBytes),
		LongPolls:       q.longPolls,
		IdempotencyKeys: q.idempotencyKeys,
	}
}
