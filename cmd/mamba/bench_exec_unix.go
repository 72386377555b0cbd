//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// execBench replaces this process with mamba-bench, which therefore
// keeps its pid, stdio, signals and exit code. It returns only on error.
func execBench(path string, args, env []string) error {
	if err := syscall.Exec(path, append([]string{path}, args...), env); err != nil {
		return fmt.Errorf("bench: run %s: %w", path, err)
	}
	return nil
}
