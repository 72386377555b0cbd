package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/mambamq/mamba/client"
)

type topicJSON struct {
	Name           string `json:"name"`
	Partitions     int    `json:"partitions"`
	RetentionMS    int64  `json:"retention_ms"`
	RetentionBytes int64  `json:"retention_bytes"`
}

func topicToJSON(t client.Topic) topicJSON {
	return topicJSON{t.Name, t.Partitions, t.Retention.Milliseconds(), t.RetentionBytes}
}

type partitionJSON struct {
	Partition      int32 `json:"partition"`
	LogStartOffset int64 `json:"log_start_offset"`
	HighWatermark  int64 `json:"high_watermark"`
	StoredBytes    int64 `json:"stored_bytes"`
}

func retention(d time.Duration) string {
	if d == 0 {
		return "forever"
	}
	return d.String()
}

func retentionBytes(n int64) string {
	if n == 0 {
		return "unbounded"
	}
	return fmt.Sprintf("%d bytes", n)
}

func newTopicCmd() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{Use: "topic", Short: "Create, list, describe, alter and delete topics"}
	o.addFlags(cmd)
	cmd.AddCommand(topicCreateCmd(&o), topicListCmd(&o), topicDescribeCmd(&o), topicAlterCmd(&o), topicDeleteCmd(&o))
	return cmd
}

func topicCreateCmd(o *clientOptions) *cobra.Command {
	var partitions int
	var keep time.Duration
	var keepBytes int64
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			var opts []client.TopicOpt
			if keep != 0 {
				opts = append(opts, client.WithRetention(keep))
			}
			if keepBytes != 0 {
				opts = append(opts, client.WithRetentionBytes(keepBytes))
			}
			t, err := c.CreateTopic(cmd.Context(), args[0], partitions, opts...)
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), topicToJSON(t), func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "created topic %s with %s, retention %s, %s per partition\n",
					t.Name, plural(t.Partitions, "partition"), retention(t.Retention), retentionBytes(t.RetentionBytes))
			})
		},
	}
	create.Flags().IntVar(&partitions, "partitions", 1, "number of partitions (1 to 10000)")
	create.Flags().DurationVar(&keep, "retention", 0, "how long records are kept after they are written (0 keeps them forever)")
	create.Flags().Int64Var(&keepBytes, "retention-bytes", 0, "bound on each partition's stored bytes; the oldest batches go beyond it (0 is no bound)")
	return create
}

func topicAlterCmd(o *clientOptions) *cobra.Command {
	var keep time.Duration
	var keepBytes int64
	alter := &cobra.Command{
		Use:   "alter NAME",
		Short: "Change a topic's retention (--retention, --retention-bytes or both)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var opts []client.TopicOpt
			if cmd.Flags().Changed("retention") {
				opts = append(opts, client.WithRetention(keep))
			}
			if cmd.Flags().Changed("retention-bytes") {
				opts = append(opts, client.WithRetentionBytes(keepBytes))
			}
			if len(opts) == 0 {
				return errors.New("nothing to change: give --retention, --retention-bytes or both")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			d, err := c.UpdateTopic(cmd.Context(), args[0], opts...)
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), topicToJSON(d.Topic), func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "topic %s: retention %s, %s per partition\n", d.Name, retention(d.Retention), retentionBytes(d.RetentionBytes))
			})
		},
	}
	alter.Flags().DurationVar(&keep, "retention", 0, "how long records are kept after they are written (0 keeps them forever)")
	alter.Flags().Int64Var(&keepBytes, "retention-bytes", 0, "bound on each partition's stored bytes (0 is no bound)")
	return alter
}

func topicListCmd(o *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List topics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			ts, err := c.ListTopics(cmd.Context())
			if err != nil {
				return err
			}
			out := make([]topicJSON, len(ts))
			for i, t := range ts {
				out[i] = topicToJSON(t)
			}
			return o.print(cmd.OutOrStdout(), map[string]any{"topics": out}, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tPARTITIONS\tRETENTION\tRETENTION BYTES")
				for _, t := range ts {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", t.Name, t.Partitions, retention(t.Retention), retentionBytes(t.RetentionBytes))
				}
			})
		},
	}
}

func topicDescribeCmd(o *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a topic, what it stores and its partitions' offsets",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			d, err := c.DescribeTopic(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			parts := make([]partitionJSON, len(d.PartitionStats))
			var records int64
			for i, p := range d.PartitionStats {
				parts[i] = partitionJSON{p.Partition, p.LogStartOffset, p.HighWatermark, p.StoredBytes}
				records += p.HighWatermark - p.LogStartOffset
			}
			v := struct {
				topicJSON
				StoredBytes    int64           `json:"stored_bytes"`
				Objects        int64           `json:"objects"`
				LogStartAgeMS  int64           `json:"log_start_age_ms"`
				PartitionStats []partitionJSON `json:"partition_stats"`
			}{topicToJSON(d.Topic), d.StoredBytes, d.Objects, d.LogStartAge.Milliseconds(), parts}
			return o.print(cmd.OutOrStdout(), v, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "topic %s: %s, retention %s, %s per partition, %s\n",
					d.Name, plural(d.Partitions, "partition"), retention(d.Retention), retentionBytes(d.RetentionBytes), plural(records, "record"))
				fmt.Fprintf(tw, "stored %s in %d objects, oldest batch written %s ago\n\n",
					humanize.IBytes(uint64(d.StoredBytes)), d.Objects, d.LogStartAge.Round(time.Second))
				fmt.Fprintln(tw, "PARTITION\tLOG START\tHIGH WATERMARK\tRECORDS\tSTORED BYTES")
				for _, p := range d.PartitionStats {
					fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\n", p.Partition, p.LogStartOffset, p.HighWatermark, p.HighWatermark-p.LogStartOffset, p.StoredBytes)
				}
			})
		},
	}
}

func topicDeleteCmd(o *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a topic and its offsets",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if err := c.DeleteTopic(cmd.Context(), args[0]); err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), map[string]string{"deleted": args[0]}, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "deleted topic %s\n", args[0])
			})
		},
	}
}
