package tcpserve

import (
	"io"
	"net"
	"testing"
)

func TestStartServesEachConnectionAndClosesIt(t *testing.T) {
	addr := Start(t, func(c net.Conn) { _, _ = io.WriteString(c, "hi") })
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c) // EOF only if the server closed it
		c.Close()
		if err != nil || string(b) != "hi" {
			t.Fatalf("read %q, %v; want \"hi\" then EOF", b, err)
		}
	}
}
