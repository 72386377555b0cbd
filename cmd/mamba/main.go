// Command mamba is Mamba's one binary: the ingest node (serve), the
// development server (dev), restore and disaster recovery (restore, dr),
// and client commands (topic, group, produce, consume).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mambamq/mamba/client"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit code: 0, 1 for an
// error (written as one line on stderr), 3 for errBehind.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, errorLine(err))
		if errors.Is(err, errBehind) {
			return 3
		}
		return 1
	}
	return 0
}

// errorLine is the one line an error is reported as: "mamba: " and the
// error, said once. A server that cannot be reached is reported as just
// that ("mamba: cannot reach URL: connection refused"), whatever the
// command was doing.
func errorLine(err error) string {
	if ue, ok := errors.AsType[*client.UnreachableError](err); ok {
		return "mamba: " + ue.Error()
	}
	// Errors from the SDK start with "mamba: " too.
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	return "mamba: " + strings.TrimPrefix(msg, "mamba: ")
}
