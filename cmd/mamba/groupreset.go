package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mambamq/mamba/client"
)

// newGroupResetCmd is `mamba group reset`, which moves a group's committed
// offsets in one topic, like kafka-consumer-groups --reset-offsets: it
// prints the plan and changes nothing unless --execute is given.
func newGroupResetCmd(o *clientOptions) *cobra.Command {
	var (
		topic                 string
		toEarliest, toLatest  bool
		toTimestamp, toOffset string
		partitions            []int
		force, execute        bool
	)
	cmd := &cobra.Command{
		Use:   "reset GROUP --topic TOPIC (--to-earliest | --to-latest | --to-timestamp TIME | --to-offset N | --to-offset P=N,...)",
		Short: "Reset a group's committed offsets in one topic (prints the plan; --execute applies it)",
		Long: `Reset a group's committed offsets in one topic: to each partition's log
start offset (--to-earliest), its high watermark (--to-latest), the first
record appended at or after a time (--to-timestamp, RFC 3339 or Unix
milliseconds; compared with append times, at chunk granularity), or given
offsets (--to-offset N for every selected partition, or P=N,P=N; an offset
outside the partition is clamped to its log start offset or high
watermark). --partition limits the reset to some partitions.

Like kafka-consumer-groups --reset-offsets, the command only prints the
plan (each partition's current and new offset) unless --execute is given.
A group with live members is refused unless --force, which fences the
members: they read again from the new offsets.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec := client.ResetSpec{Topic: topic, Force: force, DryRun: !execute}
			for _, p := range partitions {
				spec.Partitions = append(spec.Partitions, int32(p))
			}
			n := 0
			for _, set := range []bool{toEarliest, toLatest, toTimestamp != "", toOffset != ""} {
				if set {
					n++
				}
			}
			if n != 1 {
				return errors.New("give exactly one of --to-earliest, --to-latest, --to-timestamp and --to-offset")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			switch {
			case toEarliest:
				spec.To = client.ResetToEarliest
			case toLatest:
				spec.To = client.ResetToLatest
			case toTimestamp != "":
				spec.To = client.ResetToTimestamp
				if spec.Timestamp, err = parseResetTime(toTimestamp); err != nil {
					return err
				}
			default:
				spec.To = client.ResetToOffsets
				if spec.Offsets, err = parseResetOffsets(toOffset); err != nil {
					return err
				}
				if all, ok := spec.Offsets[-1]; ok {
					// One offset for the selected partitions, or all.
					delete(spec.Offsets, -1)
					if len(spec.Partitions) == 0 {
						d, err := c.DescribeTopic(cmd.Context(), topic)
						if err != nil {
							return err
						}
						for p := range d.Partitions {
							spec.Partitions = append(spec.Partitions, int32(p))
						}
					}
					for _, p := range spec.Partitions {
						spec.Offsets[p] = all
					}
				} else if len(spec.Partitions) > 0 {
					return errors.New("--partition: not allowed with --to-offset P=N, which names the partitions")
				}
				spec.Partitions = nil
			}
			plan, err := c.ResetGroupOffsets(cmd.Context(), args[0], spec)
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), plan, func(tw *tabwriter.Writer) {
				state := "reset"
				if plan.DryRun {
					state = "plan only, nothing changed (--execute applies it)"
				}
				fmt.Fprintf(tw, "group %s, topic %s: %s; live members: %d\n", plan.Group, plan.Topic, state, plan.LiveMembers)
				if plan.DryRun && plan.LiveMembers > 0 && !force {
					fmt.Fprintln(tw, "the group has live members: --execute will be refused without --force")
				}
				fmt.Fprintln(tw)
				fmt.Fprintln(tw, "PARTITION\tCURRENT\tNEW\tLOG START\tHIGH WATERMARK")
				for _, p := range plan.Partitions {
					current := "-"
					if p.CurrentOffset >= 0 {
						current = strconv.FormatInt(p.CurrentOffset, 10)
					}
					next := strconv.FormatInt(p.NewOffset, 10)
					if p.Clamped {
						next += " (clamped)"
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\n", p.Partition, current, next, p.LogStartOffset, p.HighWatermark)
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&topic, "topic", "", "topic whose offsets are reset (required)")
	f.BoolVar(&toEarliest, "to-earliest", false, "reset to each partition's log start offset")
	f.BoolVar(&toLatest, "to-latest", false, "reset to each partition's high watermark")
	f.StringVar(&toTimestamp, "to-timestamp", "", "reset to the first record appended at or after this time (RFC 3339, or Unix milliseconds)")
	f.StringVar(&toOffset, "to-offset", "", "reset to this offset (N, for every selected partition) or these offsets (P=N,P=N)")
	f.IntSliceVar(&partitions, "partition", nil, "only these partitions (repeat or comma-separate); default all")
	f.BoolVar(&force, "force", false, "reset although the group has live members, fencing them")
	f.BoolVar(&execute, "execute", false, "apply the reset; without it the plan is only printed")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

// parseResetTime reads RFC 3339 or Unix milliseconds.
func parseResetTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 {
			return time.Time{}, fmt.Errorf("--to-timestamp %s: negative", s)
		}
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--to-timestamp %q: want Unix milliseconds or RFC 3339, like 2026-01-02T15:04:05Z", s)
	}
	return t, nil
}

// parseResetOffsets reads N (returned under partition -1) or P=N,P=N.
func parseResetOffsets(s string) (map[int32]int64, error) {
	out := map[int32]int64{}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		out[-1] = n
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		ps, ns, ok := strings.Cut(strings.TrimSpace(part), "=")
		p, err1 := strconv.ParseInt(ps, 10, 32)
		n, err2 := strconv.ParseInt(ns, 10, 64)
		if !ok || err1 != nil || err2 != nil || p < 0 {
			return nil, fmt.Errorf("--to-offset %q: want N, or PARTITION=OFFSET pairs separated by commas", s)
		}
		if _, dup := out[int32(p)]; dup {
			return nil, fmt.Errorf("--to-offset %q: partition %d named twice", s, p)
		}
		out[int32(p)] = n
	}
	return out, nil
}
