// Package testserver starts real servers (MinIO, Redis) for integration
// tests: each on a free loopback port with a temporary data directory,
// stopped when the test ends. Binaries are found on PATH or in
// $(go env GOPATH)/bin, where deploy/local/install-deps.sh puts them.
//
// A missing binary skips the test with a clear message on a developer
// machine, and fails it when CI=true: CI must never pass by skipping. A
// binary that is present but cannot start always fails the test.
package testserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI, where missing servers are
// failures rather than skips.
func InCI() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// Binary returns the path of the named program, looking on PATH and then in
// the Go bin directory.
func Binary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for p := range strings.SplitSeq(gopath, string(os.PathListSeparator)) {
		if p != "" {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if info, err := os.Stat(p); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in %s; install it with deploy/local/install-deps.sh", name, strings.Join(dirs, ", "))
}

// RequireBinary returns the program's path, or skips the test (fails it in
// CI) when the program is not installed.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := Binary(name)
	if err != nil {
		if InCI() {
			t.Fatalf("CI=true and %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a server process that a test can stop, kill and start again
// with the same arguments, port and data directory.
type Process struct {
	Name    string
	path    string
	args    []string
	env     []string
	logPath string
	ready   func(context.Context) error

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 60 * time.Second

// Start launches the process and waits until its readiness check passes.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is already running", p.Name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var lastErr error
	for delay := 10 * time.Millisecond; ; delay = min(delay*2, 250*time.Millisecond) {
		if lastErr = p.ready(ctx); lastErr == nil {
			return nil
		}
		select {
		case <-done:
			p.cmd = nil
			return fmt.Errorf("%s exited during start-up (%v); log:\n%s", p.Name, cmd.ProcessState, p.logTail())
		case <-ctx.Done():
			p.killLocked()
			return fmt.Errorf("%s not ready after %v: %v; log:\n%s", p.Name, startTimeout, lastErr, p.logTail())
		case <-time.After(delay):
		}
	}
}

// Stop sends SIGTERM and waits for the process to exit, killing it if it
// takes longer than ten seconds.
func (p *Process) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killLocked()
}

func (p *Process) killLocked() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// Pid returns the process id, or 0 when the process is not running.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Log returns everything the process has written to stdout and stderr.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *Process) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// start builds a Process, starts it (retrying with a fresh port when the
// chosen one was taken meanwhile) and registers its shutdown with t.
func start(t testing.TB, newProc func(port int) *Process) *Process {
	t.Helper()
	var errs []error
	name := ""
	for range 3 {
		p := newProc(FreePort(t))
		name = p.Name
		err := p.Start()
		if err == nil {
			t.Cleanup(func() {
				// The data directory is discarded with the test, so there
				// is nothing to shut down gracefully for.
				p.Kill()
				if t.Failed() {
					t.Logf("%s log (%s):\n%s", p.Name, p.logPath, p.logTail())
				}
			})
			return p
		}
		errs = append(errs, err)
		if !bytes.Contains([]byte(err.Error()), []byte("address already in use")) {
			break
		}
	}
	t.Fatalf("start %s: %v", name, errors.Join(errs...))
	return nil
}
