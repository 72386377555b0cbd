// Package cliflag holds the flag conventions Mamba's commands (mamba and
// mamba-bench) share: every flag can also be set from an environment
// variable MAMBA_<NAME>, sizes are written like 8MiB, 256MB or 1048576, and
// durations may be given in days (7d).
package cliflag

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"
)

// EnvName is the environment variable that sets a flag: MAMBA_ and the
// flag's name in upper case with dashes as underscores.
func EnvName(flag string) string {
	return "MAMBA_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// BindEnv sets every flag not given on the command line from its
// environment variable. It reports every bad variable at once.
func BindEnv(flags *pflag.FlagSet) error {
	var errs []string
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Sprintf("%s=%q: %v", EnvName(f.Name), v, err))
			}
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("bad environment: %s", strings.Join(errs, "; "))
	}
	return nil
}

// DocumentEnv appends each flag's environment variable to its usage.
func DocumentEnv(flags *pflag.FlagSet) {
	flags.VisitAll(func(f *pflag.Flag) {
		f.Usage += " [$" + EnvName(f.Name) + "]"
	})
}

// ByteSize is a flag holding a size such as 8MiB, 256MB or 1048576, at
// most 1 PiB.
type ByteSize int64

func (b *ByteSize) String() string { return humanize.IBytes(uint64(*b)) }

// Type names the flag's kind in help output.
func (b *ByteSize) Type() string { return "bytes" }

// Set parses s.
func (b *ByteSize) Set(s string) error {
	v, err := humanize.ParseBytes(s)
	if err != nil {
		return err
	}
	if v > 1<<50 {
		return fmt.Errorf("%s is too large", s)
	}
	*b = ByteSize(v)
	return nil
}

// Duration is a flag holding a duration as time.ParseDuration reads it
// (90s, 1h30m), or a whole number of days such as 7d; negative durations
// are refused.
type Duration time.Duration

func (d *Duration) String() string {
	v := time.Duration(*d)
	if v > 0 && v%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return v.String()
}

// Type names the flag's kind in help output.
func (d *Duration) Type() string { return "duration" }

// Set parses s.
func (d *Duration) Set(s string) error {
	var v time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n > 100*365 {
			return fmt.Errorf("%q is not a whole number of days (at most 36500)", s)
		}
		v = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if v, err = time.ParseDuration(s); err != nil {
			return err
		}
	}
	if v < 0 {
		return fmt.Errorf("%s is negative", s)
	}
	*d = Duration(v)
	return nil
}
