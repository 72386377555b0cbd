package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mambamq/mamba/internal/retry"
	"github.com/mambamq/mamba/metadata"
)

// bootstrapWait bounds how long a starting node retries creating its
// bootstrap token while Redis is unreachable.
const bootstrapWait = time.Minute

// maxTokenFileBytes bounds what is read of a token file: a token is 85
// bytes; the bound leaves room for white space around it.
const maxTokenFileBytes = 4096

// readTokenFile reads a token from path: the file's content without
// surrounding white space. Its content is never put in an error.
func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(buf) > maxTokenFileBytes {
		return "", fmt.Errorf("%s is over %d bytes: it does not hold a token", path, maxTokenFileBytes)
	}
	raw := strings.TrimSpace(string(buf))
	if _, _, err := metadata.ParseToken(raw); err != nil {
		return "", fmt.Errorf("%s does not hold a token made by mamba auth token generate (mmb_ followed by 16 and 64 hex digits)", path)
	}
	return raw, nil
}

// bootstrapToken reads --bootstrap-token-file, before anything starts:
// "" without the flag.
func bootstrapToken(o serveOptions) (string, error) {
	if o.bootstrapTokenFile == "" {
		return "", nil
	}
	if !o.auth {
		return "", errors.New("--bootstrap-token-file needs --auth: without it no token is asked for")
	}
	raw, err := readTokenFile(o.bootstrapTokenFile)
	if err != nil {
		return "", fmt.Errorf("--bootstrap-token-file: %w", err)
	}
	return raw, nil
}

// ensureBootstrapToken creates raw (from bootstrapToken) in Redis as an
// admin token unless it is there, retrying for up to bootstrapWait while
// Redis is unreachable (a node may start before it). A token revoked
// since is not created again: the node starts and logs it.
func ensureBootstrapToken(ctx context.Context, raw string, meta *metadata.Store, log *slog.Logger) error {
	if raw == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, bootstrapWait)
	defer cancel()
	var info metadata.TokenInfo
	var created bool
	err := retry.Policy{Retryable: func(err error) bool { return errors.Is(err, metadata.ErrUnavailable) }}.Do(ctx, func(ctx context.Context) error {
		var err error
		info, created, err = meta.EnsureToken(ctx, raw)
		return err
	})
	switch {
	case errors.Is(err, metadata.ErrTokenRevoked):
		log.Error("the token of --bootstrap-token-file was revoked, so it is not created again; put a new one (mamba auth token generate) in the file", "error", err)
	case errors.Is(err, metadata.ErrTokenConflict):
		return fmt.Errorf("--bootstrap-token-file: %w; revoke it (mamba auth token revoke) or generate another file", err)
	case err != nil:
		return fmt.Errorf("--bootstrap-token-file: %w", err)
	case created:
		log.Info("created the bootstrap admin token", "id", info.ID)
	default:
		log.Info("bootstrap admin token present", "id", info.ID, "name", info.Name)
	}
	return nil
}

// newTokenGenerateCmd is `mamba auth token generate`: a new token made
// here, stored nowhere, for --bootstrap-token-file.
func newTokenGenerateCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "generate [--file PATH]",
		Short: "Make a new token for --bootstrap-token-file, without storing it",
		Long: `Make a new random token and print it, or write it to --file. Nothing is
stored: a node started with --auth --bootstrap-token-file FILE creates it
in Redis as an admin token when it starts, unless it is there. That is how
the deploy files give a new deployment its first admin token, and how a
Redis rebuilt by mamba restore (checkpoints hold no tokens) gets one back.

With --file the token is written to a new file readable only by its owner;
an existing file is left as it is (so running generate again keeps the
deployment's token), and its path printed on stderr.`,
		Example: `  mamba auth token generate --file bootstrap-token
  kubectl -n mamba create secret generic mamba-bootstrap-token --from-file=token=bootstrap-token
  mamba auth token generate --file /run/mamba/bootstrap-token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, name := range []string{"url", "token", "redis", "key-prefix", "redis-ca-file", "redis-cert-file", "redis-key-file"} {
				if cmd.Flags().Changed(name) {
					return fmt.Errorf("--%s does not apply: generate stores the token nowhere", name)
				}
			}
			raw, err := metadata.GenerateToken()
			if err != nil {
				return err
			}
			if file == "" {
				fmt.Fprintln(cmd.OutOrStdout(), raw)
				return nil
			}
			f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, fs.ErrExist) {
				if _, err := readTokenFile(file); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s already holds a token; kept it\n", file)
				return nil
			}
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(f, raw); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote a new token to %s\n", file)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "write the token to this new file (mode 0600) instead of stdout; an existing file is kept")
	return cmd
}
