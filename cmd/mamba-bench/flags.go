package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

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
