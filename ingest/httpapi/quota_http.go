package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/mambamq/mamba/metadata"
)

// newQuotaTable returns the limiter state of the handler's quotas, or nil
// when authentication is off: without tokens there is no one to hold to a
// quota (docs/security.md, "Quotas").
func newQuotaTable(opts Options, m *httpMetrics) *quotaTable {
	if opts.Tokens == nil {
		return nil
	}
	return &quotaTable{
		defaults: opts.Quotas.limits(),
		window:   opts.DedupWindow,
		now:      time.Now,
		refused:  func(k quotaKind) { m.quotaRefusals.WithLabelValues(quotaNames[k]).Inc() },
	}
}

// requestToken is the verified token of the request, if authentication
// is on.
func requestToken(ctx context.Context) (metadata.TokenInfo, bool) {
	tok, ok := ctx.Value(tokenCtxKey{}).(metadata.TokenInfo)
	return tok, ok
}

// admitProduceQuota applies the token's produce quotas to r; nil (which
// produceAdmission's methods accept) when no quota applies.
func (h *handler) admitProduceQuota(r *http.Request, hasKey bool) (*produceAdmission, error) {
	tok, ok := requestToken(r.Context())
	if h.quotas == nil || !ok {
		return nil, nil
	}
	size := r.ContentLength
	if size > h.opts.MaxRequestBytes {
		size = -1 // refused as too large when read; charged what was read
	}
	return h.quotas.admitProduce(tok.ID, h.quotas.defaults.with(tok.Quotas), size, hasKey)
}

// admitFetchQuota applies the token's fetch quotas to a fetch that waits
// (long) or not. The caller calls done with the bytes it answered.
func (h *handler) admitFetchQuota(ctx context.Context, long bool) (done func(answered int64), err error) {
	tok, ok := requestToken(ctx)
	if h.quotas == nil || !ok {
		return func(int64) {}, nil
	}
	return h.quotas.admitFetch(tok.ID, h.quotas.defaults.with(tok.Quotas), long)
}

// bytesWritten is the body bytes written to w so far.
func bytesWritten(w http.ResponseWriter) int64 {
	if aw, ok := w.(*apiWriter); ok {
		return aw.n
	}
	return 0
}

// quotaOf is the wire name of the quota err is about, or "".
func quotaOf(err error) string {
	if qe, ok := errors.AsType[*quotaError](err); ok {
		return quotaNames[qe.kind]
	}
	return ""
}
