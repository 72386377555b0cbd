package wire

// Quota names: the per-token quotas of a node started with --auth
// (docs/security.md, "Quotas"). They name a token's quotas in the token
// API ("quotas": {"produce_bytes": 1048576}) and the quota a 429
// quota_exceeded answer is about (its error's "quota" field).
const (
	// QuotaProduceBytes is produce request body bytes per second.
	QuotaProduceBytes = "produce_bytes"
	// QuotaProduceRequests is produce requests per second.
	QuotaProduceRequests = "produce_requests"
	// QuotaFetchBytes is fetch answer body bytes per second.
	QuotaFetchBytes = "fetch_bytes"
	// QuotaLongPolls is fetches that may wait for records at once.
	QuotaLongPolls = "long_polls"
	// QuotaIdempotencyKeys is produce requests carrying an
	// Idempotency-Key per dedup window.
	QuotaIdempotencyKeys = "idempotency_keys"
)

// QuotaNames returns every quota name, in the order docs list them.
func QuotaNames() []string {
	return []string{QuotaProduceBytes, QuotaProduceRequests, QuotaFetchBytes, QuotaLongPolls, QuotaIdempotencyKeys}
}
