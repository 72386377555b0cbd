package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "mamba",
		Short:         "Mamba: a message queue whose only durable store is object storage",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newBenchCmd(), newDevCmd(), newRestoreCmd(), newDRCmd(), newTopicCmd(), newGroupCmd(), newProduceCmd(), newConsumeCmd())
	return root
}
