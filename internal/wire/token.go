package wire

// Token is an API token as the admin API shows it (GET /v1/auth/tokens,
// the answers of POST and PATCH /v1/auth/tokens): Token, the secret, only
// in the answer to its creation. Quotas are the token's own, always an
// object (empty when it takes every default of the node).
type Token struct {
	ID        string           `json:"id"`
	Name      string           `json:"name"`
	Scopes    []string         `json:"scopes"`
	CreatedMS int64            `json:"created_ms"`
	Quotas    map[string]int64 `json:"quotas"`
	Token     string           `json:"token,omitempty"`
}
