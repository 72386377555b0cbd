package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mambamq/mamba/internal/cliflag"
	"github.com/mambamq/mamba/internal/wire"
)

// tokenQuotaFlags are the --quota-* flags of mamba auth token create and
// update, by quota name: what was given, unparsed.
type tokenQuotaFlags map[string]*string

// quotaIsBytes reports whether a quota counts bytes (a second), which its
// flag takes as a size such as 8MiB.
func quotaIsBytes(name string) bool {
	return name == wire.QuotaProduceBytes || name == wire.QuotaFetchBytes
}

func addTokenQuotaFlags(cmd *cobra.Command, withDefault bool) tokenQuotaFlags {
	help := map[string]string{
		wire.QuotaProduceBytes:    "produce request body bytes a second, such as 8MiB",
		wire.QuotaProduceRequests: "produce requests a second",
		wire.QuotaFetchBytes:      "fetch answer bytes a second, such as 16MiB",
		wire.QuotaLongPolls:       "fetches with a wait in flight at once",
		wire.QuotaIdempotencyKeys: "produce requests with an Idempotency-Key per dedup window",
	}
	tail := "; this token's own, per node (0 is unlimited; left out, the node's --quota-* default)"
	if withDefault {
		tail = "; this token's own, per node (0 is unlimited, default goes back to the node's --quota-* default)"
	}
	q := make(tokenQuotaFlags)
	for _, name := range wire.QuotaNames() {
		q[name] = new(string)
		cmd.Flags().StringVar(q[name], quotaFlagName(name), "", help[name]+tail)
	}
	return q
}

// quotaFlagName is the flag of a quota: produce_bytes is
// --quota-produce-bytes, as on mamba serve.
func quotaFlagName(name string) string {
	return "quota-" + strings.ReplaceAll(name, "_", "-")
}

// parse returns the quotas given (set) and those given as "default"
// (unset), reporting every bad value at once.
func (q tokenQuotaFlags) parse(cmd *cobra.Command, withDefault bool) (set map[string]int64, unset []string, err error) {
	set = make(map[string]int64)
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(q)) {
		flag := quotaFlagName(name)
		if !cmd.Flags().Changed(flag) {
			continue
		}
		v := strings.TrimSpace(*q[name])
		if withDefault && v == "default" {
			unset = append(unset, name)
			continue
		}
		n, perr := parseQuotaValue(name, v)
		if perr != nil {
			errs = append(errs, fmt.Errorf("--%s %q: %w", flag, v, perr))
			continue
		}
		set[name] = n
	}
	return set, unset, errors.Join(errs...)
}

func parseQuotaValue(name, v string) (int64, error) {
	if quotaIsBytes(name) {
		var b cliflag.ByteSize
		if err := b.Set(v); err != nil {
			return 0, errors.New("want a size such as 8MiB, or 0 for unlimited")
		}
		return int64(b), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("want a whole number, 0 for unlimited")
	}
	return n, nil
}

// quotasText is a token's own quotas for the table of list, or
// "defaults" when it has none.
func quotasText(quotas map[string]int64) string {
	if len(quotas) == 0 {
		return "defaults"
	}
	var parts []string
	for _, name := range wire.QuotaNames() {
		v, ok := quotas[name]
		switch {
		case !ok:
			continue
		case v == 0:
			parts = append(parts, name+"=unlimited")
		case quotaIsBytes(name):
			b := cliflag.ByteSize(v)
			parts = append(parts, name+"="+strings.ReplaceAll(b.String(), " ", "")+"/s")
		default:
			parts = append(parts, name+"="+strconv.FormatInt(v, 10))
		}
	}
	return strings.Join(parts, ",")
}

func newTokenCreateCmd(o *tokenOptions) *cobra.Command {
	var name string
	var scopes []string
	var quotas tokenQuotaFlags
	create := &cobra.Command{
		Use:   "create --name NAME --scope SCOPE... [--quota-... VALUE]",
		Short: "Create a token and print it (the only time it is shown)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || len(scopes) == 0 {
				return errors.New("give --name and at least one --scope")
			}
			set, _, err := quotas.parse(cmd, false)
			if err != nil {
				return err
			}
			a, err := o.admin()
			if err != nil {
				return err
			}
			defer a.close()
			raw, t, err := a.create(cmd.Context(), name, scopes, set)
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), tokenJSON(t, raw), func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "%s\n", raw)
				fmt.Fprintf(cmd.ErrOrStderr(), "created token %s (%s) with scopes %s and quotas %s; it is shown only this once\n",
					t.ID, t.Name, strings.Join(t.Scopes, " "), quotasText(t.Quotas))
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the token is for (free text, shown by list)")
	create.Flags().StringArrayVar(&scopes, "scope", nil, "a scope: admin, produce:PATTERN, consume:PATTERN or group:PATTERN (repeatable)")
	quotas = addTokenQuotaFlags(create, false)
	return create
}

func newTokenListCmd(o *tokenOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List tokens, without their secrets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := o.admin()
			if err != nil {
				return err
			}
			defer a.close()
			toks, err := a.list(cmd.Context())
			if err != nil {
				return err
			}
			out := make([]map[string]any, len(toks))
			for i, t := range toks {
				out[i] = tokenJSON(t, "")
			}
			return o.print(cmd.OutOrStdout(), map[string]any{"tokens": out}, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tQUOTAS\tCREATED")
				for _, t := range toks {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Scopes, " "), quotasText(t.Quotas), t.Created.Format(time.RFC3339))
				}
			})
		},
	}
}

func newTokenUpdateCmd(o *tokenOptions) *cobra.Command {
	var quotas tokenQuotaFlags
	update := &cobra.Command{
		Use:   "update ID --quota-... VALUE...",
		Short: "Change a token's own quotas: nodes apply them within 5 seconds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set, unset, err := quotas.parse(cmd, true)
			if err != nil {
				return err
			}
			if len(set)+len(unset) == 0 {
				return errors.New("give at least one --quota-... flag (a value, 0 for unlimited, or default)")
			}
			a, err := o.admin()
			if err != nil {
				return err
			}
			defer a.close()
			t, err := a.update(cmd.Context(), args[0], set, unset)
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), tokenJSON(t, ""), func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "updated token %s (%s): quotas %s\n", t.ID, t.Name, quotasText(t.Quotas))
			})
		},
	}
	quotas = addTokenQuotaFlags(update, true)
	return update
}
