package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "mamba",
		Short:         "Mamba: a message queue whose only durable store is object storage",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newBenchCmd(), newDevCmd(), newRestoreCmd(), newDRCmd(), newTopicCmd(), newGroupCmd(), newProduceCmd(), newConsumeCmd(), newAuthCmd())
	rejectUnknownSubcommands(root)
	return root
}

// rejectUnknownSubcommands makes every command that only groups
// subcommands (mamba, mamba topic, ...) fail on an unknown subcommand,
// with cobra's suggestions, instead of printing its help and exiting 0.
// Given no argument, such a command still prints its help.
func rejectUnknownSubcommands(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		rejectUnknownSubcommands(sub)
	}
	if !cmd.HasSubCommands() || cmd.Run != nil || cmd.RunE != nil {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which SuggestionsFor does not apply
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += ". Did you mean this? " + strings.Join(s, ", ")
		}
		return errors.New(msg)
	}
}
