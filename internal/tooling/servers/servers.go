// Package servers launches the real servers Mamba runs against and is
// compared with — MinIO, redis-server, nats-server with JetStream and
// `mamba serve` itself — as child processes on free loopback ports, each
// with its data, log and any config file under a directory the caller
// owns. `mamba bench --local` uses it directly; internal/tooling/testserver wraps it
// for tests (temporary directories, cleanup, skip or fail when a program is
// missing).
//
// Programs are found on PATH or in the Go bin directory, where
// deploy/local/install-deps.sh puts them; a missing one is reported as
// ErrNotInstalled. Each StartX returns once the server answers its
// readiness check, or an error that carries the tail of the server's log.
// A started server belongs to the caller, who must Stop or Kill it; on
// Linux the kernel kills it if the calling process dies first, so no server
// outlives the program that started it.
//
// A Process keeps its arguments, port and data directory, so Kill followed
// by Start restarts the same server on the same data: the fault tests use
// that to check what survives a kill -9.
package servers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNotInstalled reports that a server program is neither on PATH nor in
// the Go bin directory.
var ErrNotInstalled = errors.New("not installed")

// Binary returns the path of the named program, looking on PATH, then in
// $GOBIN and in the bin directory of each $(go env GOPATH) entry. The error
// wraps ErrNotInstalled when the program is in none of them.
func Binary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	for p := range strings.SplitSeq(goPath(), string(os.PathListSeparator)) {
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
	return "", fmt.Errorf("%s %w: not on PATH or in %s; install it with deploy/local/install-deps.sh",
		name, ErrNotInstalled, strings.Join(dirs, ", "))
}

// goPath returns $GOPATH, else what `go env GOPATH` says (which honours
// `go env -w`), else Go's default $HOME/go: the binary may run where no Go
// toolchain is installed.
func goPath() string {
	if p := os.Getenv("GOPATH"); p != "" {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, "go")
	}
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the server binds it; the StartX
// functions retry on a fresh port when that happens.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startAttempts bounds how often a server is started on a fresh port after
// the chosen one was taken between FreePort and the server's bind.
const startAttempts = 3

// startOnFreePort starts the process newProc builds for a free port,
// trying again with a new port while the server reports "address already
// in use". newProc may write a config file and pick further ports; it is
// called once per attempt.
func startOnFreePort(name string, newProc func(port int) (*Process, error)) (*Process, error) {
	var errs []error
	for range startAttempts {
		port, err := FreePort()
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		p, err := newProc(port)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		err = p.Start()
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("start %s: %w", name, errors.Join(errs...))
}

// httpOK succeeds when GET url answers 200.
func httpOK(ctx context.Context, url string) error {
	return httpOKWith(ctx, http.DefaultClient, url)
}

// httpOKWith is httpOK through client.
func httpOKWith(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
