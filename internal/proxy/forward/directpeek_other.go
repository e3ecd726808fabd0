//go:build !linux

package forward

// peekFD cannot check without blocking on this platform; the direct path
// then relies on its retry of idempotent requests on stale connections.
func (c *upConn) peekFD(uintptr) bool {
	c.peekAlive = true
	return true
}
