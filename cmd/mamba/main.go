// Command mamba is Mamba's one binary: the ingest node (serve), the
// development server (dev), restore and disaster recovery (restore, dr),
// and client commands (topic, group, produce, consume).
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		// Errors from the SDK already start with "mamba: ".
		fmt.Fprintln(os.Stderr, "mamba:", strings.TrimPrefix(err.Error(), "mamba: "))
		if errors.Is(err, errBehind) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}
