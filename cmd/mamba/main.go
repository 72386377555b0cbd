// Command mamba is Mamba's one binary: the ingest node (serve) and, in
// time, the development server and client commands.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "mamba:", err)
		os.Exit(1)
	}
}
