package servers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary play a caller that starts a server and
// dies without stopping it.
func TestMain(m *testing.M) {
	if dir := os.Getenv("SERVERS_TEST_ORPHAN_DIR"); dir != "" {
		p := &Process{
			Name:    "sleep",
			path:    "/bin/sh",
			args:    []string{"-c", "exec sleep 60"},
			logPath: filepath.Join(dir, "sleep.log"),
			ready:   func(context.Context) error { return nil },
		}
		if err := p.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(p.Pid())
		os.Exit(0) // no Kill: the kernel must do it
	}
	os.Exit(m.Run())
}

// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER: orphaned
// descendants are reparented to this process, which can then wait for them.
const prSetChildSubreaper = 36

// A server does not outlive the process that started it: when that process
// exits without stopping it, the kernel kills the server with SIGKILL.
func TestServerDiesWithCaller(t *testing.T) {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Fatalf("become a subreaper: %v", errno)
	}
	defer syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 0, 0)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SERVERS_TEST_ORPHAN_DIR="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("caller: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("caller printed %q", out)
	}
	// Unless the caller reaped it while exiting, the server is now this
	// process's child. Should the kernel not kill it, do so after a while,
	// so that the wait ends and the test fails.
	var survived atomic.Bool
	timer := time.AfterFunc(10*time.Second, func() {
		survived.Store(true)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	})
	defer timer.Stop()
	var ws syscall.WaitStatus
	_, err = syscall.Wait4(pid, &ws, 0, nil)
	if errors.Is(err, syscall.ECHILD) {
		// The server died and was reaped before the caller was gone: the
		// caller's own exec.Cmd waits for it, and the thread that forked
		// it may exit first during the caller's exit.
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("server %d is not this process's child and still exists (kill 0: %v)", pid, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("wait for the server %d: %v", pid, err)
	}
	if survived.Load() || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("server outlived its caller by 10s (wait status %v)", ws)
	}
}
