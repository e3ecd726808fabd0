package h1guard

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// goAccepts reports whether net/http parses data as a sequence of complete
// requests (with their bodies) ending exactly at the end of data.
func goAccepts(data []byte) bool {
	br := bufio.NewReader(bytes.NewReader(data))
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return true
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			return false
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return false
		}
		if req.Method == "CONNECT" || req.Method == "PRI" || req.Header.Get("Upgrade") != "" {
			return false // a tunnel: the rest is not HTTP/1
		}
	}
}

func FuzzGuard(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x\r\nhello\r\n0\r\nT: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nX: 1\r\n 2\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x00\xff",
		"\r\nPOST / HTTP/1.1\r\nContent-Length: 00\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		whole, wrote, reason, _ := run(t, string(data), len(data)+1)
		split, _, reason2, _ := run(t, string(data), int(step%8)+1)
		if reason != reason2 || whole != split {
			t.Fatalf("read size changes the outcome: %q/%q vs %q/%q", reason, whole, reason2, split)
		}
		if !strings.HasPrefix(string(data), whole) {
			t.Fatalf("passed bytes %q are not a prefix of the input", whole)
		}
		if reason == "" {
			if whole != string(data) || wrote != "" {
				t.Fatalf("no violation but passed %q wrote %q", whole, wrote)
			}
		} else if wrote != rejectResponse {
			t.Fatalf("violation %q but wrote %q", reason, wrote)
		}
		// Where net/http accepts the stream as complete requests and the
		// guard finds no violation, both must agree on where it ends.
		if reason == "" && goAccepts(data) {
			var s scanner
			s.limit = http.DefaultMaxHeaderBytes + 4096
			if _, r := s.scan(data); r != "" || (s.st != stReqLine && s.st != stPass) || (s.st == stReqLine && s.hdr != 0) {
				t.Fatalf("net/http ends at a request boundary, the guard in state %d (hdr %d)", s.st, s.hdr)
			}
		}
	})
}

// typicalGET is a 300-byte browser-like request.
var typicalGET = func() []byte {
	req := "GET /app/orders/12345?view=full HTTP/1.1\r\n" +
		"Host: shop.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0\r\n" +
		"Accept: text/html,application/xhtml+xml\r\n" +
		"Accept-Encoding: gzip, deflate, br\r\n" +
		"Cookie: session=0123456789abcdef0123456789\r\n" +
		"Connection: keep-alive\r\n"
	req += "X-Pad: " + strings.Repeat("p", 300-len(req)-len("X-Pad: \r\n\r\n")) + "\r\n\r\n"
	return []byte(req)
}()

// loopConn returns the same request forever.
type loopConn struct {
	chunkConn
	req []byte
}

func (c *loopConn) Read(p []byte) (int, error) { return copy(p, c.req), nil }

func BenchmarkGuard(b *testing.B) {
	if len(typicalGET) != 300 {
		b.Fatalf("request is %d bytes", len(typicalGET))
	}
	g := Wrap(&loopConn{req: typicalGET}, Options{})
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(typicalGET)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := g.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}
