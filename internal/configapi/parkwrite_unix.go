//go:build unix

package configapi

import (
	"errors"
	"net"
	"syscall"
)

// tryWriteNow writes b to c with one non-blocking write(2) if the socket
// takes it whole, and returns how much it took. A parked connection's
// send buffer is normally empty (its last answer was read before the
// re-arm), so this is the usual path; it saves the write deadline that a
// write that might block needs (a timer change per answer).
func tryWriteNow(c net.Conn, b []byte) (int, error) {
	if pc, ok := c.(*prefixConn); ok {
		c = pc.Conn
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, nil
	}
	var n int
	var werr error
	if err := rc.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), b)
			if !errors.Is(werr, syscall.EINTR) {
				return true // done either way: never wait here
			}
		}
	}); err != nil {
		return 0, err
	}
	if n < 0 {
		n = 0
	}
	if werr != nil && !errors.Is(werr, syscall.EAGAIN) {
		return n, werr
	}
	return n, nil
}
