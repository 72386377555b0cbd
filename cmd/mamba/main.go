// Command mamba is Mamba's one binary: the ingest node (serve) and, in
// time, the development server and client commands.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "mamba:", err)
		if errors.Is(err, errBehind) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}
