package servers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is a server process that can be stopped, killed and started again
// with the same program, arguments, port and data directory. Its output
// (stdout and stderr) is appended to one log file across restarts.
//
// The StartX functions return a running Process; its zero value is not
// usable. All methods are safe for concurrent use.
type Process struct {
	// Name identifies the server in errors, for example "minio" or
	// "mamba node-a".
	Name string

	path    string
	args    []string
	env     []string // added to the caller's environment, later entries win
	logPath string
	ready   func(context.Context) error

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil while not running
	done chan struct{} // closed when cmd has exited and its log is closed
}

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 60 * time.Second

// logTailBytes is how much of a log an error or LogTail carries.
const logTailBytes = 4000

// Start launches the process and returns once its readiness check passes.
// If the process exits first or is not ready within a minute, Start returns
// an error with the tail of its log, and the process is not running.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is already running", p.Name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log of %s: %w", p.Name, err)
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("exec %s: %w", p.Name, err)
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
			return fmt.Errorf("%s exited during start-up (%v); log:\n%s", p.Name, cmd.ProcessState, p.LogTail())
		case <-ctx.Done():
			p.killLocked()
			return fmt.Errorf("%s not ready after %v: %v; log:\n%s", p.Name, startTimeout, lastErr, p.LogTail())
		case <-time.After(delay):
		}
	}
}

// Stop sends SIGTERM and waits for the process to exit, killing it if it
// takes longer than ten seconds. Stopping a process that is not running
// does nothing.
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

// Kill sends SIGKILL and waits for the process to exit. Killing a process
// that is not running does nothing.
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

// Signal sends sig to the running process.
func (p *Process) Signal(sig os.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s is not running", p.Name)
	}
	return p.cmd.Process.Signal(sig)
}

// Wait waits for the process to exit on its own and returns its exit code
// (-1 when it was killed by a signal or was not running).
func (p *Process) Wait() int {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return -1
	}
	<-done
	p.mu.Lock()
	if p.cmd == cmd {
		p.cmd = nil
	}
	p.mu.Unlock()
	return cmd.ProcessState.ExitCode()
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

// LogPath returns the file the process writes its output to.
func (p *Process) LogPath() string { return p.logPath }

// Log returns everything the process has written to stdout and stderr,
// across restarts.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// LogTail returns the last few kilobytes of the log, as errors from Start
// carry them.
func (p *Process) LogTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
	}
	return string(b)
}
