//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package proxy

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortSupported reports whether SO_REUSEPORT can be set here.
const reusePortSupported = true

// setReusePort sets SO_REUSEPORT so that a second process (the next version
// during a rolling restart) can bind the same address while this one drains.
func setReusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
