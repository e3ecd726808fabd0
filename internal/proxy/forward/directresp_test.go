package forward

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseSimpleResponse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		method  string
		in      string
		ok      bool
		status  int
		cl      int64
		headers http.Header
		body    string
	}{
		{name: "plain", in: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
			ok: true, status: 200, cl: 5, headers: http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"5"}}, body: "hello"},
		{name: "no reason", in: "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
			ok: true, status: 404, cl: 0, headers: http.Header{"Content-Length": {"0"}}},
		{name: "lower-case names, repeated header, OWS", in: "HTTP/1.1 201 Created\r\nset-cookie: a=1\r\nSet-Cookie:  b=2 \r\ncontent-length:3\r\n\r\nabc",
			ok: true, status: 201, cl: 3, headers: http.Header{"Set-Cookie": {"a=1", "b=2"}, "Content-Length": {"3"}}, body: "abc"},
		{name: "keep-alive hop headers dropped", in: "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 1\r\n\r\nx",
			ok: true, status: 200, cl: 1, headers: http.Header{"Content-Length": {"1"}}, body: "x"},
		{name: "empty value", in: "HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n",
			ok: true, status: 200, headers: http.Header{"X-Empty": {""}, "Content-Length": {"0"}}},

		{name: "HEAD", method: http.MethodHead, in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{name: "close-delimited", in: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nbody"},
		{name: "Connection close", in: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"},
		{name: "Connection option", in: "HTTP/1.1 200 OK\r\nConnection: X-Foo\r\nX-Foo: 1\r\nContent-Length: 0\r\n\r\n"},
		{name: "HTTP/1.0", in: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{name: "interim", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{name: "204", in: "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"},
		{name: "304", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n"},
		{name: "four-digit status", in: "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"},
		{name: "status 600", in: "HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n"},
		{name: "duplicate Content-Length", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"},
		{name: "signed Content-Length", in: "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx"},
		{name: "huge Content-Length", in: "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nx"},
		{name: "obs-fold", in: "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n"},
		{name: "space before colon", in: "HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 0\r\n\r\n"},
		{name: "bare LF", in: "HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\nContent-Length: 0\r\n\r\n"},
		{name: "NUL in value", in: "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n"},
		{name: "incomplete header", in: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"},
		{name: "Trailer announced", in: "HTTP/1.1 200 OK\r\nTrailer: X\r\nContent-Length: 0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tc.in), 4096)
			_, _ = br.Peek(1)
			dst := http.Header{}
			var body fixedBody
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			status, cl, ok := parseSimpleResponse(br, method, dst, &body)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				if len(dst) != 0 || br.Buffered() != len(tc.in) {
					t.Fatalf("declined but changed state: %d headers, %d of %d bytes left", len(dst), br.Buffered(), len(tc.in))
				}
				return
			}
			if status != tc.status || cl != tc.cl || !reflect.DeepEqual(dst, tc.headers) {
				t.Fatalf("got %d, cl %d, %v; want %d, cl %d, %v", status, cl, dst, tc.status, tc.cl, tc.headers)
			}
			got, err := io.ReadAll(&body)
			if err != nil || string(got) != tc.body {
				t.Fatalf("body %q, %v; want %q", got, err, tc.body)
			}
		})
	}
}

// TestFixedBodyTruncated checks that a body cut short is an error, not EOF.
func TestFixedBodyTruncated(t *testing.T) {
	b := fixedBody{br: bufio.NewReader(strings.NewReader("abc")), n: 5}
	got, err := io.ReadAll(&b)
	if string(got) != "abc" || err != io.ErrUnexpectedEOF {
		t.Fatalf("ReadAll = %q, %v; want abc, unexpected EOF", got, err)
	}
}

// FuzzParseSimpleResponse checks the fast parser against http.ReadResponse:
// whatever it accepts, ReadResponse must parse to the same status, framing,
// end-to-end headers and body.
func FuzzParseSimpleResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 201 Created\r\nset-cookie: a=1\r\nSet-Cookie:  b=2 \r\ncontent-length:3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 \xff\r\nX: \x80\r\nContent-Length: 007\r\n\r\n1234567",
	} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, in string, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		br := bufio.NewReaderSize(strings.NewReader(in), 4096)
		_, _ = br.Peek(1)
		dst := http.Header{}
		var body fixedBody
		status, cl, ok := parseSimpleResponse(br, method, dst, &body)
		if !ok {
			if len(dst) != 0 || br.Buffered() != min(len(in), 4096) {
				t.Fatalf("declined but changed state")
			}
			return
		}
		fastBody, fastErr := io.ReadAll(&body)

		req, _ := http.NewRequest(method, "http://x/", nil)
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(in)), req)
		if err != nil {
			t.Fatalf("fast parser accepted what ReadResponse rejects (%v): %q", err, in)
		}
		refBody, refErr := io.ReadAll(resp.Body)
		if resp.StatusCode != status || resp.ContentLength != cl || resp.Close {
			t.Fatalf("status %d cl %d close %v (ReadResponse) vs %d cl %d: %q", resp.StatusCode, resp.ContentLength, resp.Close, status, cl, in)
		}
		for _, k := range responseHopHeaders {
			delete(resp.Header, k)
		}
		if !reflect.DeepEqual(resp.Header, dst) {
			t.Fatalf("headers %v (ReadResponse) vs %v: %q", resp.Header, dst, in)
		}
		if !bytes.Equal(fastBody, refBody) || (fastErr == nil) != (refErr == nil) {
			t.Fatalf("body %q, %v (ReadResponse) vs %q, %v: %q", refBody, refErr, fastBody, fastErr, in)
		}
	})
}

// cannedResponses answers each request on a keep-alive connection with the next
// canned response (the last one repeats) and counts connections.
func cannedResponses(t *testing.T, responses ...string) (url string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int32)
	var next atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) > 2 {
						continue
					}
					i := min(int(next.Add(1))-1, len(responses)-1)
					if _, err := io.WriteString(c, responses[i]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String(), conns
}

// TestDirectFastPathEndToEnd sends responses of the fast parser's shape and
// just outside it through the handler, over HTTP/1.1 and HTTP/2, and checks
// what the client sees and that the connection is reused.
func TestDirectFastPathEndToEnd(t *testing.T) {
	const fast = "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\n" +
		"Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
	const chunked = "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n" +
		"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	for _, tc := range []struct {
		name string
		resp string
	}{
		{"fast parser", fast},
		{"ReadResponse", chunked},
	} {
		for _, h2 := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/h2=%v", tc.name, h2), func(t *testing.T) {
				url, conns := cannedResponses(t, tc.resp)
				e := newEnv(t, Config{Upstream: mustUpstream(t, url), DirectHTTP1: true, UpstreamTimeout: time.Minute}, nil)
				c := e.client(t, h2)
				for range 3 {
					resp, err := c.Get(e.front.URL + "/x")
					if err != nil {
						t.Fatal(err)
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || string(body) != "hello" {
						t.Fatalf("body %q, %v", body, err)
					}
					if got := resp.Header.Values("Set-Cookie"); !reflect.DeepEqual(got, []string{"a=1", "b=2"}) {
						t.Errorf("Set-Cookie = %q", got)
					}
					if got := resp.Header.Get("Keep-Alive"); got != "" {
						t.Errorf("hop-by-hop Keep-Alive %q reached the client", got)
					}
					if got := resp.Header.Get("Content-Type"); got != "text/plain" {
						t.Errorf("Content-Type = %q", got)
					}
				}
				if n := conns.Load(); n != 1 {
					t.Errorf("%d upstream connections for 3 sequential requests, want 1", n)
				}
			})
		}
	}
}
