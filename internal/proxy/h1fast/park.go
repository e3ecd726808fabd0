package h1fast

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// Parking idle connections.
//
// A keep-alive connection waiting for its next request would otherwise
// hold a goroutine (8 KiB of stack once it has written a response), a 4
// KiB read buffer and its response state for as long as it stays open,
// which is most of what an idle connection costs. A connection that has
// been idle for Server.ParkAfter gives all three back: the buffers return
// to their pools, its goroutine exits, and its socket is watched by one
// epoll instance shared by all parked connections (park_linux.go), with a
// timer for its idle deadline. When the client sends more or goes away, a
// new goroutine serves the connection as before; when the deadline passes,
// or Shutdown closes idle connections, it is closed. What a parked
// connection still holds is the TLS state (crypto/tls keeps its record
// buffers), the socket and a few hundred bytes here.
//
// Only bytes still in the kernel can be waited for this way, so a
// connection parks only when every layer above the socket is known to
// return what it buffered before it reads again: h1guard's connection
// (bytes given back with Unread come first), *tls.Conn (a complete record
// it already holds is decrypted before it reads the socket) and the
// *net.TCPConn itself. The wait for the first byte is made with a read
// deadline ParkAfter away: when it times out with nothing returned,
// nothing is buffered above the socket (a partial TLS record may be, and
// its rest is still to come from the kernel); timeouts do not break a
// *tls.Conn. Other connections (a PROXY protocol reader, with a buffer of
// its own, in between), and every connection on systems other than Linux,
// wait as before.

// DefaultParkAfter is how long a connection waits for its next request with
// its goroutine and read buffer before it parks (see Server.ParkAfter).
const DefaultParkAfter = 100 * time.Millisecond

// rawConnOf returns the socket under nc if every layer between is one that
// parking can see through, or nil.
func rawConnOf(nc net.Conn) syscall.RawConn {
	if !canPark {
		return nil
	}
	var x net.Conn = nc
	for range 4 {
		switch v := x.(type) {
		case *net.TCPConn:
			rc, err := v.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		case *tls.Conn:
			x = v.NetConn()
		case interface {
			unreader
			NetConn() net.Conn
		}:
			x = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

func (s *Server) parkAfter() time.Duration {
	switch {
	case s.ParkAfter < 0:
		return -1
	case s.ParkAfter == 0:
		return DefaultParkAfter
	}
	return s.ParkAfter
}

// errParked is fill's report that the connection parked.
var errParked = errors.New("h1fast: connection parked")

// fill waits for the next request's first bytes until the read deadline
// until (zero: none); now is the time the wait began. It returns nil when bytes are buffered, errParked
// when the connection should park (nothing is buffered anywhere above the
// socket and until is still ahead), or the read's error.
func (c *conn) fill(until, now time.Time) error {
	after := c.s.parkAfter()
	if c.raw == nil || after < 0 {
		c.setReadDeadline(until)
		_, err := c.br.Peek(1)
		return err
	}
	at := now.Add(after)
	if !until.IsZero() && !at.Before(until) {
		c.setReadDeadline(until)
		_, err := c.br.Peek(1)
		return err
	}
	c.setReadDeadline(at)
	_, err := c.br.Peek(1)
	if err == nil {
		// The deadline at stays until the next wait sets its own: the
		// request is served from what is buffered, and the background
		// read (watch) clears it.
		return nil
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	c.setReadDeadline(until)
	return errParked
}

// Parking states of a connection (conn.pstate): the first to move it out of
// parkWaiting (its socket became readable, its idle deadline passed, or
// Shutdown closes it) decides what happens to it.
const (
	parkNone    uint32 = iota // not parked
	parkWaiting               // parked
	parkClaimed               // being resumed or closed
)

// claim moves a parked connection out of parkWaiting to st, and reports
// whether this caller was the first.
func (c *conn) claim(st uint32) bool {
	if c.pstate.CompareAndSwap(parkWaiting, st) {
		c.s.parked.Add(-1)
		if f := c.s.OnPark; f != nil {
			f(-1)
		}
		return true
	}
	return false
}

// closeIdleConn closes an idle connection for closeIdle (which holds s.mu).
func (c *conn) closeIdleConn() {
	if c.claim(parkClaimed) {
		// No goroutine runs it: finish it on one.
		c.unwatch()
		go c.end()
		return
	}
	_ = c.nc.Close()
}

// parkTimeout runs when a parked connection's idle deadline passes.
func (c *conn) parkTimeout() {
	if c.claim(parkClaimed) {
		c.unwatch()
		c.end()
	}
}

// resume serves a parked connection again once its socket is readable.
func (c *conn) resume() {
	if c.ptimer != nil {
		c.ptimer.Stop()
	}
	c.unwatch()
	c.pstate.Store(parkNone)
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(connReader{c})
	c.run()
}
