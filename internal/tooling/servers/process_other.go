//go:build !linux

package servers

import "syscall"

// sysProcAttr has no portable way to tie a server's life to its caller's
// outside Linux; the caller must Stop or Kill it.
func sysProcAttr() *syscall.SysProcAttr { return nil }
