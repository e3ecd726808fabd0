package h1guard

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// chunkConn is a net.Conn over an in-memory byte stream whose Reads return at
// most step bytes each, to exercise every split of the input.
type chunkConn struct {
	in   []byte
	step int
	out  bytes.Buffer
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), c.step, len(c.in))
	copy(p, c.in[:n])
	c.in = c.in[n:]
	return n, nil
}
func (c *chunkConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *chunkConn) Close() error                     { return nil }
func (c *chunkConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *chunkConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *chunkConn) SetDeadline(time.Time) error      { return nil }
func (c *chunkConn) SetReadDeadline(time.Time) error  { return nil }
func (c *chunkConn) SetWriteDeadline(time.Time) error { return nil }

// run feeds in through a guard with the given Read size and returns what the
// guard handed on, what it wrote, the reject reason and the final error.
func run(t testing.TB, in string, step int) (passed, written, reason string, err error) {
	t.Helper()
	cc := &chunkConn{in: []byte(in), step: step}
	g := Wrap(cc, Options{OnReject: func(r string) {
		if reason != "" {
			t.Errorf("OnReject called twice: %q then %q", reason, r)
		}
		reason = r
	}})
	var got bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, rerr := g.Read(buf)
		got.Write(buf[:n])
		if rerr != nil {
			return got.String(), cc.out.String(), reason, rerr
		}
	}
}

var steps = []int{1, 2, 3, 7, 64, 4096}

func TestValidStreams(t *testing.T) {
	tests := []struct{ name, in string }{
		{"simple GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"no headers", "GET / HTTP/1.0\r\n\r\n"},
		{"pipelined keep-alive", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"content-length bodies pipelined",
			"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nHost: a\r\ncontent-length:  3 \r\n\r\nabc" +
				"GET /c HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"body that looks like a smuggled request",
			"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 56\r\n\r\nGET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n Content-Length: 1" +
				"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"chunked with trailers and extensions",
			"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n5;ext=1\r\nhello\r\nA \r\n0123456789\r\n0\r\nX-Sum: 1\r\nContent-Length: 9\r\n\r\n" +
				"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"chunked leading zeros and uppercase hex", "POST / HTTP/1.1\r\nTransfer-Encoding:\tchunked\t\r\n\r\n000B\r\nhello world\r\n0\r\n\r\n"},
		{"expect 100-continue", "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\ndata"},
		{"empty line before request", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"zero content-length", "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET / HTTP/1.1\r\n\r\n"},
		{"names that only start like tracked ones", "GET / HTTP/1.1\r\nContent-Lengthy: x\r\nTransfer: y\r\nUpgraded: z\r\n\r\n"},
		{"upgrade then anything", "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x85 \n\r garbage\nTransfer-Encoding: x\r\n"},
		{"connect then anything", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n\x16\x03\x01\n\n\r"},
		{"te in HTTP/1.1 split version", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"HTTP/1.0 with content-length", "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nokGET / HTTP/1.0\r\n\r\n"},
		{"h2 preface passes", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00"},
		{"header values may hold anything but CR LF", "GET / HTTP/1.1\r\nX: a\tb :c\x7f\r\n\r\n"},
	}
	for _, tt := range tests {
		for _, step := range steps {
			passed, written, reason, err := run(t, tt.in, step)
			if err != io.EOF || reason != "" || written != "" || passed != tt.in {
				t.Errorf("%s (step %d): reason %q, err %v, wrote %q, passed %q", tt.name, step, reason, err, written, passed)
			}
		}
	}
}

func TestViolations(t *testing.T) {
	const ok = "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"
	tests := []struct{ name, in, reason string }{
		{"te and cl", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", ReasonTEAndCL},
		{"cl and te", "POST / HTTP/1.1\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n", ReasonTEAndCL},
		{"duplicate cl equal", "POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", ReasonDuplicateCL},
		{"duplicate cl different", "POST / HTTP/1.1\r\nContent-Length: 4\r\nCONTENT-LENGTH: 40\r\n\r\nabcd", ReasonDuplicateCL},
		{"cl list", "POST / HTTP/1.1\r\nContent-Length: 4, 4\r\n\r\nabcd", ReasonBadCL},
		{"cl sign", "POST / HTTP/1.1\r\nContent-Length: +4\r\n\r\nabcd", ReasonBadCL},
		{"cl empty", "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", ReasonBadCL},
		{"cl overflow", "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", ReasonBadCL},
		{"obs fold", "GET / HTTP/1.1\r\nX-A: 1\r\n X-B: 2\r\n\r\n", ReasonObsFold},
		{"obs fold tab after request line", "GET / HTTP/1.1\r\n\tHost: a\r\n\r\n", ReasonObsFold},
		{"obs fold in trailers", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n 2\r\n\r\n", ReasonObsFold},
		{"te chunked identity", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n", ReasonBadTE},
		{"te gzip chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", ReasonBadTE},
		{"te xchunked", "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", ReasonBadTE},
		{"te chunk", "POST / HTTP/1.1\r\nTransfer-Encoding: chunk\r\n\r\n", ReasonBadTE},
		{"te chunked with inner space", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked x\r\n\r\n", ReasonBadTE},
		{"te vertical tab", "POST / HTTP/1.1\r\nTransfer-Encoding: \vchunked\r\n\r\n", ReasonBadTE},
		{"te twice", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", ReasonBadTE},
		{"te empty", "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", ReasonBadTE},
		{"space before colon", "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", ReasonBadHeader},
		{"bare lf in header", "GET / HTTP/1.1\nHost: a\r\n\r\n", ReasonBareLF},
		{"bare lf ending headers", "GET / HTTP/1.1\r\nHost: a\r\n\n", ReasonBareLF},
		{"bare lf in value", "GET / HTTP/1.1\r\nHost: a\nb\r\n\r\n", ReasonBareLF},
		{"bare lf first", "\nGET / HTTP/1.1\r\n\r\n", ReasonBareLF},
		{"bare cr in value", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", ReasonBareCR},
		{"bare cr in request line", "GET /\r HTTP/1.1\r\n\r\n", ReasonBareCR},
		{"bare cr ending headers", "GET / HTTP/1.1\r\nHost: a\r\n\rX", ReasonBareCR},
		{"chunk size not hex", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ReasonBadChunk},
		{"chunk size empty", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", ReasonBadChunk},
		{"chunk size 0x", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\n", ReasonBadChunk},
		{"chunk size overflow", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", ReasonBadChunk},
		{"chunk ext bare lf", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nhello\r\n0\r\n\r\n", ReasonBadChunk},
		{"chunk size bare lf", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", ReasonBadChunk},
		{"chunk size bare cr", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\rhello\r\n0\r\n\r\n", ReasonBadChunk},
		{"chunk data too long", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello!\r\n0\r\n\r\n", ReasonBadChunk},
		{"chunk data lf only", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", ReasonBadChunk},
		{"te in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ReasonBadTE},
		{"PRI that is not the h2 preface", "PRI / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n X: 1\r\n\r\n", ReasonObsFold},
		{"smuggled after valid", ok + "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", ReasonTEAndCL},
		{"smuggled after cl body", "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi" + "GET / HTTP/1.1\r\n X: 1\r\n\r\n", ReasonObsFold},
	}
	for _, tt := range tests {
		for _, step := range steps {
			passed, written, reason, err := run(t, tt.in, step)
			if reason != tt.reason {
				t.Errorf("%s (step %d): reason %q, want %q", tt.name, step, reason, tt.reason)
			}
			if err != io.EOF {
				t.Errorf("%s (step %d): err %v, want io.EOF", tt.name, step, err)
			}
			if written != rejectResponse {
				t.Errorf("%s (step %d): wrote %q", tt.name, step, written)
			}
			if !strings.HasPrefix(tt.in, passed) || len(passed) >= len(tt.in) {
				t.Errorf("%s (step %d): passed %q, want a strict prefix", tt.name, step, passed)
			}
			// The header block of the violating request never completes.
			if strings.Count(passed, "\r\n\r\n") > strings.Count(tt.in[:len(passed)], "\r\n\r\n") {
				t.Errorf("%s (step %d): passed more than the input", tt.name, step)
			}
		}
	}
}

func TestMaxHeaderBytesStopsScanning(t *testing.T) {
	in := "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 200) + "\r\n X: fold\r\n\r\n"
	cc := &chunkConn{in: []byte(in), step: 4096}
	g := Wrap(cc, Options{MaxHeaderBytes: 1})
	g.(*Conn).sc.limit = 100 // below net/http's slack, to keep the test small
	got, err := io.ReadAll(g)
	if err != nil || string(got) != in || cc.out.Len() != 0 {
		t.Fatalf("got %q, %v, wrote %q; want all bytes passed through", got, err, cc.out.String())
	}
}

func TestWriteAfterRefusalFails(t *testing.T) {
	cc := &chunkConn{in: []byte("GET / HTTP/1.1\n\n"), step: 100}
	g := Wrap(cc, Options{})
	if _, err := io.ReadAll(g); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")); !errors.Is(err, ErrRejected) {
		t.Fatalf("Write after refusal: %v, want ErrRejected", err)
	}
	if cc.out.String() != rejectResponse {
		t.Fatalf("wrote %q", cc.out.String())
	}
}
