package configapi

import (
	"errors"
	"net"
	"testing"
)

// TestRelistener: Accept hands out both new and given-back connections;
// after Close, queued ones are closed and give refuses; a closed stop
// channel also ends a give.
func TestRelistener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newRelistener(ln)
	dialed, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept of a new connection: %v", err)
	}
	if !l.give(c, nil) {
		t.Fatal("give refused before Close")
	}
	if got, err := l.Accept(); err != nil || got != c {
		t.Fatalf("Accept after give: %v %v, want the given connection", got, err)
	}
	if !l.give(c, nil) {
		t.Fatal("give refused before Close")
	}
	stop := make(chan struct{})
	close(stop)
	for len(l.back) < cap(l.back) { // fill the queue; the next give must not block
		l.back <- c
	}
	if l.give(c, stop) {
		t.Fatal("give with a full queue and stop closed: true")
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if len(l.back) != 0 {
		t.Fatalf("%d connections still queued after Close", len(l.back))
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("a queued connection is still open after Close")
	}
	if l.give(c, nil) {
		t.Fatal("give after Close: true")
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
}
