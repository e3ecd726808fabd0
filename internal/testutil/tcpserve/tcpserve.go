// Package tcpserve runs a raw TCP server on loopback for tests that need to
// control every byte a peer sends (a canned or misbehaving app, a server
// that closes or resets at a chosen moment): a listener on 127.0.0.1:0
// whose every connection is handed to a function on its own goroutine.
package tcpserve

import (
	"net"
	"testing"
)

// Start listens on 127.0.0.1:0 and calls handle for each connection on its
// own goroutine, closing the connection when handle returns. The listener is
// closed when the test ends. It returns the listener's address.
func Start(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("tcpserve: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}
