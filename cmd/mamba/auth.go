package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/cliflag"
	"github.com/mambamq/mamba/metadata"
)

// tokenOptions are the flags of mamba auth token: a node's API (the
// client flags, with an admin --token), or with --redis the Redis the
// nodes use, written directly (to bootstrap the first admin token).
type tokenOptions struct {
	clientOptions
	redisURL  string
	keyPrefix string
	redisTLS  redisTLSOptions
}

// tokenAdmin is what token commands call: the node's API or, with
// --redis, the metadata store directly. Both run metadata's token code.
type tokenAdmin interface {
	create(ctx context.Context, name string, scopes []string, quotas map[string]int64) (string, client.Token, error)
	list(ctx context.Context) ([]client.Token, error)
	revoke(ctx context.Context, id string) error
	update(ctx context.Context, id string, set map[string]int64, unset []string) (client.Token, error)
	close()
}

type apiTokenAdmin struct{ c *client.Client }

func (a apiTokenAdmin) create(ctx context.Context, name string, scopes []string, quotas map[string]int64) (string, client.Token, error) {
	return a.c.CreateTokenWithQuotas(ctx, name, scopes, quotas)
}
func (a apiTokenAdmin) list(ctx context.Context) ([]client.Token, error) { return a.c.ListTokens(ctx) }
func (a apiTokenAdmin) revoke(ctx context.Context, id string) error      { return a.c.RevokeToken(ctx, id) }
func (a apiTokenAdmin) update(ctx context.Context, id string, set map[string]int64, unset []string) (client.Token, error) {
	return a.c.UpdateTokenQuotas(ctx, id, set, unset)
}
func (a apiTokenAdmin) close() {}

type redisTokenAdmin struct {
	rdb  *redis.Client
	meta *metadata.Store
}

func tokenFromInfo(t metadata.TokenInfo) client.Token {
	scopes := make([]string, len(t.Scopes))
	for i, s := range t.Scopes {
		scopes[i] = s.String()
	}
	return client.Token{ID: t.ID, Name: t.Name, Scopes: scopes, Created: t.Created, Quotas: t.Quotas}
}

func (a redisTokenAdmin) create(ctx context.Context, name string, scopes []string, quotas map[string]int64) (string, client.Token, error) {
	raw, info, err := a.meta.CreateTokenWithQuotas(ctx, name, scopes, quotas)
	return raw, tokenFromInfo(info), err
}

func (a redisTokenAdmin) update(ctx context.Context, id string, set map[string]int64, unset []string) (client.Token, error) {
	info, err := a.meta.UpdateTokenQuotas(ctx, id, set, unset)
	return tokenFromInfo(info), err
}

func (a redisTokenAdmin) list(ctx context.Context) ([]client.Token, error) {
	infos, err := a.meta.ListTokens(ctx)
	out := make([]client.Token, len(infos))
	for i, t := range infos {
		out[i] = tokenFromInfo(t)
	}
	return out, err
}
func (a redisTokenAdmin) revoke(ctx context.Context, id string) error {
	return a.meta.RevokeToken(ctx, id)
}
func (a redisTokenAdmin) close() { a.rdb.Close() }

func (o *tokenOptions) admin() (tokenAdmin, error) {
	if o.redisURL == "" && o.redisTLS.set() {
		return nil, errors.New("--redis-ca-file, --redis-cert-file and --redis-key-file apply only with --redis")
	}
	if o.redisURL == "" {
		c, err := o.client()
		if err != nil {
			return nil, err
		}
		return apiTokenAdmin{c}, nil
	}
	rdb, err := openRedis(o.redisURL, o.redisTLS, nil)
	if err != nil {
		return nil, err
	}
	return redisTokenAdmin{rdb: rdb, meta: metadata.New(rdb, metadata.Options{Prefix: o.keyPrefix})}, nil
}

func newAuthCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "auth", Short: "Manage API tokens (for nodes started with --auth)"}
	tok := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens",
		Long: `Create, list and revoke the API tokens of nodes started with --auth.

By default these commands call a node's API (--url) with an admin token
(--token or MAMBA_TOKEN). With --redis they write to the Redis the nodes
use, directly: that is how the first admin token is made, and how a lost
admin token is replaced. A token is shown once, when it is created; Redis
keeps only its SHA-256.

Scopes: admin (everything), produce:PATTERN, consume:PATTERN (topics) and
group:PATTERN (consumer groups), PATTERN a path.Match pattern such as
orders-*. A token may have its own quotas (--quota-* of create and update),
in place of the nodes' --quota-* defaults; see docs/security.md. To rotate a token, create its successor, move its users to it,
then revoke the old one; nodes refuse a revoked token within 5 seconds.`,
		Example: `  mamba auth token create --redis redis://127.0.0.1:6379/0 --name root --scope admin
  export MAMBA_TOKEN=mmb_...
  mamba auth token create --name billing --scope consume:orders-* --scope group:billing
  mamba auth token create --name ingest --scope produce:events --quota-produce-bytes 8MiB
  mamba auth token list
  mamba auth token update 3f9c0a1b2c3d4e5f --quota-produce-bytes 16MiB --quota-fetch-bytes default
  mamba auth token revoke 3f9c0a1b2c3d4e5f`,
	}
	var o tokenOptions
	o.addFlags(tok)
	tok.PersistentFlags().StringVar(&o.redisURL, "redis", "", "write to this Redis directly instead of calling --url (redis://[user:password@]host:port/db, rediss:// for TLS); for the first admin token")
	tok.PersistentFlags().StringVar(&o.keyPrefix, "key-prefix", metadata.DefaultPrefix, "with --redis: the nodes' --key-prefix")
	addRedisTLSFlags(tok.PersistentFlags(), &o.redisTLS)
	// addFlags documented the client flags' variables; these are
	// documented here (DocumentEnv twice would repeat the others').
	for _, name := range []string{"redis", "key-prefix", "redis-ca-file", "redis-cert-file", "redis-key-file"} {
		f := tok.PersistentFlags().Lookup(name)
		f.Usage += " [$" + cliflag.EnvName(name) + "]"
	}
	tok.AddCommand(newTokenCreateCmd(&o), newTokenListCmd(&o), newTokenUpdateCmd(&o))
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: nodes refuse it within 5 seconds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := o.admin()
			if err != nil {
				return err
			}
			defer a.close()
			if err := a.revoke(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked token %s\n", args[0])
			return nil
		},
	}
	tok.AddCommand(revoke, newTokenGenerateCmd())
	cmd.AddCommand(tok)
	return cmd
}

// tokenJSON is a token as -o json prints it; raw only on creation.
func tokenJSON(t client.Token, raw string) map[string]any {
	quotas := t.Quotas
	if quotas == nil {
		quotas = map[string]int64{}
	}
	m := map[string]any{"id": t.ID, "name": t.Name, "scopes": t.Scopes, "created": t.Created.Format(time.RFC3339Nano), "quotas": quotas}
	if raw != "" {
		m["token"] = raw
	}
	return m
}
