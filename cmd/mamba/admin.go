package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/cliflag"
)

// clientOptions are the flags every client command shares.
type clientOptions struct {
	url    string
	output string
	// caFile, certFile and keyFile are the TLS files for an https:// --url.
	caFile, certFile, keyFile string
	// token is the API token sent as a bearer token; never printed.
	token string
}

func (o *clientOptions) addFlags(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&o.url, "url", "http://127.0.0.1:8080", "URL of a Mamba node or of a load balancer in front of nodes")
	cmd.PersistentFlags().StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	cmd.PersistentFlags().StringVar(&o.caFile, "ca-file", "", "PEM CA certificate(s) to trust for an https:// --url, besides the system's")
	cmd.PersistentFlags().StringVar(&o.certFile, "cert-file", "", "PEM client certificate for a node that requires one (with --key-file)")
	cmd.PersistentFlags().StringVar(&o.keyFile, "key-file", "", "PEM private key of --cert-file")
	cmd.PersistentFlags().StringVar(&o.token, "token", "", "API token for a node started with --auth (prefer the environment variable: a flag shows in the process list)")
	cliflag.DocumentEnv(cmd.PersistentFlags())
	cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := cliflag.BindEnv(cmd.Flags()); err != nil {
			return err
		}
		if o.output != "table" && o.output != "json" {
			return fmt.Errorf("--output %q: want table or json", o.output)
		}
		if (o.certFile == "") != (o.keyFile == "") {
			return errors.New("--cert-file and --key-file go together: give both, or neither")
		}
		return nil
	}
}

// client returns a client of --url. A server that cannot be reached
// fails the command after the SDK's connect timeout
// (client.DefaultConnectTimeout) unless opts say otherwise.
func (o *clientOptions) client(opts ...client.Opt) (*client.Client, error) {
	base := []client.Opt{client.WithTimeout(30 * time.Second)}
	if o.caFile != "" {
		base = append(base, client.WithCAFile(o.caFile))
	}
	if o.certFile != "" {
		base = append(base, client.WithClientCertificate(o.certFile, o.keyFile))
	}
	if o.token != "" {
		base = append(base, client.WithToken(o.token))
	}
	return client.New(o.url, append(base, opts...)...)
}

// print writes v as indented JSON with -o json, and otherwise calls table
// with a tab-aligned writer.
func (o *clientOptions) print(w io.Writer, v any, table func(*tabwriter.Writer)) error {
	if o.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// plural is n and noun, with an "s" unless n is 1: "1 partition",
// "3 partitions".
func plural[N int | int32 | int64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatInt(int64(n), 10) + " " + noun + "s"
}

func newGroupCmd() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{Use: "group", Short: "List, describe, reset and delete consumer groups"}
	o.addFlags(cmd)
	list := &cobra.Command{
		Use:   "list",
		Short: "List consumer groups",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			gs, err := c.ListGroups(cmd.Context())
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), map[string]any{"groups": append([]string{}, gs...)}, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "GROUP")
				for _, g := range gs {
					fmt.Fprintln(tw, g)
				}
			})
		},
	}
	describe := &cobra.Command{
		Use:   "describe GROUP",
		Short: "Show a group's members, partitions and lag",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			d, err := c.DescribeGroup(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			owner := map[string]string{}
			revoking := map[string]bool{}
			type memberJSON struct {
				MemberID   string   `json:"member_id"`
				Topics     []string `json:"topics"`
				Partitions []string `json:"partitions"`
			}
			type offsetJSON struct {
				Topic           string `json:"topic"`
				Partition       int32  `json:"partition"`
				CommittedOffset int64  `json:"committed_offset"`
				LogStartOffset  int64  `json:"log_start_offset"`
				HighWatermark   int64  `json:"high_watermark"`
				Lag             int64  `json:"lag"`
				BelowLogStart   bool   `json:"below_log_start"`
				Member          string `json:"member,omitempty"`
				// Revoking: the member is handing the partition over.
				Revoking bool `json:"revoking"`
			}
			members := make([]memberJSON, 0, len(d.Members))
			for _, m := range d.Members {
				mj := memberJSON{MemberID: m.MemberID, Topics: m.Topics, Partitions: []string{}}
				for _, a := range m.Assignments {
					tp := fmt.Sprintf("%s/%d", a.Topic, a.Partition)
					owner[tp], revoking[tp] = m.MemberID, a.Revoking
					mj.Partitions = append(mj.Partitions, tp)
				}
				members = append(members, mj)
			}
			offsets := make([]offsetJSON, 0, len(d.Offsets))
			var lag int64
			for _, off := range d.Offsets {
				tp := fmt.Sprintf("%s/%d", off.Topic, off.Partition)
				offsets = append(offsets, offsetJSON{off.Topic, off.Partition, off.CommittedOffset, off.LogStartOffset, off.HighWatermark,
					off.Lag, off.BelowLogStart, owner[tp], revoking[tp]})
				lag += off.Lag
			}
			v := map[string]any{"group": d.Group, "offset_reset": d.OffsetReset, "members": members, "offsets": offsets}
			return o.print(cmd.OutOrStdout(), v, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "group %s: %s, total lag %d, offset reset %s\n\n", d.Group, plural(len(d.Members), "member"), lag, d.OffsetReset)
				fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tLOG START\tHIGH WATERMARK\tLAG\tMEMBER")
				for _, off := range offsets {
					committed := fmt.Sprint(off.CommittedOffset)
					if off.CommittedOffset < 0 {
						committed = "-"
					} else if off.BelowLogStart {
						committed += " (below log start)"
					}
					member := off.Member
					if member == "" {
						member = "-"
					} else if off.Revoking {
						member += " (revoking)"
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%s\n", off.Topic, off.Partition, committed, off.LogStartOffset, off.HighWatermark, off.Lag, member)
				}
			})
		},
	}
	cmd.AddCommand(list, describe, newGroupResetCmd(&o), newGroupDeleteCmd(&o))
	return cmd
}

func newGroupDeleteCmd(o *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "delete GROUP",
		Short: "Delete a consumer group that has no live member, and its committed offsets",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if err := c.DeleteGroup(cmd.Context(), args[0]); err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), map[string]string{"deleted": args[0]}, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "deleted group %s\n", args[0])
			})
		},
	}
}
