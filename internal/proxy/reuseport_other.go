//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package proxy

import "syscall"

// reusePortSupported reports whether SO_REUSEPORT can be set here.
const reusePortSupported = false

// setReusePort is a no-op where SO_REUSEPORT does not exist.
func setReusePort(_, _ string, _ syscall.RawConn) error { return nil }
