package forward

import (
	"syscall"
	"unsafe"
)

// peekFD sets peekAlive if the socket has no data and is not at EOF.
func (c *upConn) peekFD(fd uintptr) bool {
	var b [1]byte
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	// EAGAIN: nothing to read, still open. Success means EOF (0 bytes) or
	// unsolicited data; any other error means the socket is broken.
	c.peekAlive = errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK
	return true // never wait for readiness
}
