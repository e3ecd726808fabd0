package h1guard

import (
	"io"
	"net"
	"testing"
)

// TestUnread checks that bytes given back are read first, unscanned, and
// that scanning goes on in step afterwards: a violation after them is
// still refused.
func TestUnread(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	g := Wrap(server, Options{}).(*Conn)
	const first = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	const bad = "GET /b HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
	go func() {
		_, _ = io.WriteString(client, first)
		_, _ = io.WriteString(client, bad)
		_, _ = io.Copy(io.Discard, client) // the refusal
	}()
	buf := make([]byte, len(first))
	if _, err := io.ReadFull(g, buf); err != nil {
		t.Fatal(err)
	}
	g.Unread(buf[5:])
	g.Unread(buf[:5])
	again := make([]byte, len(first))
	if _, err := io.ReadFull(g, again); err != nil || string(again) != first {
		t.Fatalf("after Unread read %q, %v; want %q", again, err, first)
	}
	rest, err := io.ReadAll(g)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) >= len(bad) {
		t.Fatalf("the duplicate Content-Length request got through: %q", rest)
	}
	if g.reason == "" {
		t.Fatal("violation after the unread bytes not found")
	}
}
