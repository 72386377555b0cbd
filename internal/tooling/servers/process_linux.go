package servers

import "syscall"

// sysProcAttr makes the kernel kill the server when the process that
// started it dies without stopping it, so no server outlives its caller.
// (Pdeathsig follows the OS thread that forked the child; the Go runtime
// only retires threads whose goroutine called runtime.LockOSThread, which
// nothing here does.)
//
// The server also gets its own process group, so a Ctrl-C in the terminal
// reaches only the caller, which can then stop its servers in order (mamba
// nodes draining into a MinIO that is still up) instead of racing them.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
