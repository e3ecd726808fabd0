// Package freeport hands out free 127.0.0.1 TCP addresses to tests that
// start child processes, which must bind the port themselves. It never
// hands out the same address twice in one test binary: the kernel may give
// a just-closed port out again at once, and two processes told to use one
// port would collide. It does not reserve the port: another program may
// still take it before the child binds (tests retry or fail clearly then).
package freeport

import (
	"net"
	"sync"
	"testing"
)

var (
	mu        sync.Mutex
	handedOut = map[string]bool{}
)

// Addr returns a "127.0.0.1:N" address that was free a moment ago.
func Addr(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if !handedOut[addr] {
			handedOut[addr] = true
			return addr
		}
	}
	t.Fatal("freeport: no fresh loopback port after 100 tries")
	return ""
}
