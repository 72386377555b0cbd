package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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

// envName is the environment variable that sets a flag: MAMBA_ and the
// flag's name in upper case with dashes as underscores.
func envName(flag string) string {
	return "MAMBA_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// bindEnv sets every flag not given on the command line from its
// environment variable, and notes the variable in the flag's help.
func bindEnv(flags *pflag.FlagSet) error {
	var errs []string
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q: %v", envName(f.Name), v, err))
			}
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("bad environment: %s", strings.Join(errs, "; "))
	}
	return nil
}

// documentEnv appends each flag's environment variable to its usage.
func documentEnv(flags *pflag.FlagSet) {
	flags.VisitAll(func(f *pflag.Flag) {
		f.Usage += " [$" + envName(f.Name) + "]"
	})
}

// byteSize is a flag holding a size such as 8MiB, 256MB or 1048576.
type byteSize int64

func (b *byteSize) String() string { return humanize.IBytes(uint64(*b)) }
func (b *byteSize) Type() string   { return "bytes" }
func (b *byteSize) Set(s string) error {
	v, err := humanize.ParseBytes(s)
	if err != nil {
		return err
	}
	if v > 1<<50 {
		return fmt.Errorf("%s is too large", s)
	}
	*b = byteSize(v)
	return nil
}
