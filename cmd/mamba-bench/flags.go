package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"
)

// The flag conventions are those of cmd/mamba (root.go), repeated here
// because a main package cannot be imported: every flag can be set from
// MAMBA_<NAME>, and sizes are written like 8MiB.

// envName is the environment variable that sets a flag: MAMBA_ and the
// flag's name in upper case with dashes as underscores.
func envName(flag string) string {
	return "MAMBA_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// bindEnv sets every flag not given on the command line from its
// environment variable.
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

// nodeBinaryFlag is the flag naming the mamba executable that local nodes
// run; `mamba bench` sets it through its environment variable to the
// mamba binary that dispatched.
const nodeBinaryFlag = "node-binary"

// nodeBinary returns the mamba executable a local node runs: flag if set,
// else a mamba next to this executable, else mamba on PATH.
func nodeBinary(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if self, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(self), "mamba")
		if path, err := exec.LookPath(beside); err == nil {
			return path, nil
		}
	}
	if path, err := exec.LookPath("mamba"); err == nil {
		return path, nil
	}
	return "", fmt.Errorf("no mamba binary to run the node: none next to mamba-bench or on PATH; " +
		"pass --" + nodeBinaryFlag + " (or run `mamba bench`, or go install github.com/mambamq/mamba/cmd/mamba@latest)")
}
