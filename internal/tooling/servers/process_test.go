//go:build unix

package servers

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// shell returns a Process running script with /bin/sh, logging into the
// test's directory, ready as soon as it has started.
func shell(t *testing.T, script string) *Process {
	return &Process{
		Name:    "sh",
		path:    "/bin/sh",
		args:    []string{"-c", script},
		logPath: filepath.Join(t.TempDir(), "sh.log"),
		ready:   func(context.Context) error { return nil },
	}
}

func TestStartReportsExitWithLogTail(t *testing.T) {
	p := shell(t, "echo 'fatal: cannot open drive'; exit 3")
	p.ready = func(context.Context) error { return errors.New("not yet") }
	err := p.Start()
	if err == nil {
		t.Fatal("Start succeeded for a server that exited")
	}
	if !strings.Contains(err.Error(), "exited during start-up") || !strings.Contains(err.Error(), "fatal: cannot open drive") {
		t.Fatalf("error does not say the server exited and show its log: %v", err)
	}
	if p.Pid() != 0 {
		t.Fatalf("Pid = %d after a failed start, want 0", p.Pid())
	}
}

func TestStartOnFreePortRetriesTakenPort(t *testing.T) {
	dir := t.TempDir()
	var ports []int
	p, err := startOnFreePort("sh", func(port int) (*Process, error) {
		ports = append(ports, port)
		p := shell(t, "exec sleep 60")
		p.logPath = filepath.Join(dir, "sh.log")
		if len(ports) == 1 {
			p.args = []string{"-c", "echo 'listen tcp: bind: address already in use'; exit 1"}
			p.ready = func(context.Context) error { return errors.New("not yet") }
		}
		return p, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if len(ports) != 2 || p.Pid() == 0 {
		t.Fatalf("started after %d attempts (pid %d), want a running server on the second", len(ports), p.Pid())
	}
}

func TestStartOnFreePortGivesUpOnOtherErrors(t *testing.T) {
	attempts := 0
	_, err := startOnFreePort("sh", func(int) (*Process, error) {
		attempts++
		p := shell(t, "echo 'bad flag'; exit 2")
		p.ready = func(context.Context) error { return errors.New("not yet") }
		return p, nil
	})
	if err == nil || attempts != 1 || !strings.HasPrefix(err.Error(), "start sh: ") || !strings.Contains(err.Error(), "bad flag") {
		t.Fatalf("after %d attempts: %v; want one attempt and an error naming sh with its log", attempts, err)
	}
}

func TestProcessLifecycle(t *testing.T) {
	p := shell(t, "echo run; exec sleep 60")
	// Ready once this start has written its line, as a server is ready
	// once it answers.
	starts := 1
	p.ready = func(context.Context) error {
		if strings.Count(p.Log(), "run\n") < starts {
			return errors.New("not yet")
		}
		return nil
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err == nil {
		t.Fatal("second Start of a running process succeeded")
	}
	first := p.Pid()
	p.Kill()
	if p.Pid() != 0 {
		t.Fatal("Pid after Kill is not 0")
	}
	if err := p.Signal(syscall.SIGTERM); err == nil {
		t.Fatal("Signal to a killed process succeeded")
	}
	starts++
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if p.Pid() == 0 || p.Pid() == first {
		t.Fatalf("restart pid %d, before %d", p.Pid(), first)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.Wait(); code != -1 {
		t.Fatalf("Wait after SIGTERM = %d, want -1 (killed by a signal)", code)
	}
	p.Stop() // not running: nothing to do
	if got := p.Log(); got != "run\nrun\n" {
		t.Fatalf("log across a restart = %q, want both runs", got)
	}

	p = shell(t, "exit 5")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if code := p.Wait(); code != 5 {
		t.Fatalf("Wait = %d, want the exit code 5", code)
	}
}

func TestBinary(t *testing.T) {
	if p, err := Binary("sh"); err != nil || !filepath.IsAbs(p) {
		t.Fatalf("Binary(sh) = %q, %v", p, err)
	}
	_, err := Binary("mamba-no-such-program")
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "install-deps.sh") {
		t.Fatalf("Binary of a missing program: %v; want ErrNotInstalled and how to install it", err)
	}
}

func TestStartMambaNeedsBinary(t *testing.T) {
	_, err := StartMamba(t.TempDir(), &MinIO{}, &Redis{}, "b", "n", MambaOptions{})
	if err == nil {
		t.Fatal("StartMamba without a binary succeeded")
	}
}

func TestStartRedisRejectsUnknownFsync(t *testing.T) {
	if _, err := StartRedis(t.TempDir(), RedisOptions{AppendFsync: "sometimes"}); err == nil || errors.Is(err, ErrNotInstalled) {
		t.Fatalf("StartRedis with AppendFsync sometimes: %v; want a config error", err)
	}
}
