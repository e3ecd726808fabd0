package h1fast

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/proxy/h1guard"
)

// behaviours is the handler both servers run in the differential test: the
// path picks what the handler does, covering every rule of the response
// writer.
func behaviours(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	body5 := []byte("hello")
	switch r.URL.Path {
	case "/cl-ct":
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", "5")
		_, _ = w.Write(body5)
	case "/cl-noct":
		h.Set("Content-Length", "5")
		_, _ = w.Write(body5)
	case "/cl-ce":
		h.Set("Content-Length", "5")
		h.Set("Content-Encoding", "gzip")
		_, _ = w.Write(body5)
	case "/nocl":
		_, _ = w.Write([]byte("<html><body>hi</body></html>"))
	case "/nocl-ct":
		h.Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"a":1}`))
	case "/nocl-two-writes":
		_, _ = w.Write([]byte("%PDF-"))
		_, _ = w.Write([]byte("1.4 rest"))
	case "/big":
		for i := range 3 {
			_, _ = w.Write(bytes.Repeat([]byte{'a' + byte(i)}, 1700))
		}
	case "/big-ct":
		h.Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(bytes.Repeat([]byte("x"), 5000))
	case "/big-cl":
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", "5000")
		for range 5 {
			_, _ = w.Write(bytes.Repeat([]byte("y"), 1000))
		}
	case "/flush":
		_, _ = w.Write([]byte("a"))
		w.(http.Flusher).Flush()
		_, _ = w.Write([]byte("b"))
	case "/flush-first":
		h.Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		_, _ = w.Write([]byte("data: 1\n\n"))
	case "/flush-cl":
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", "2")
		_, _ = w.Write([]byte("a"))
		_ = http.NewResponseController(w).Flush()
		_, _ = w.Write([]byte("b"))
	case "/trailers":
		h.Set("Trailer", "X-Sum, X-Other")
		h.Set("Content-Type", "text/plain")
		_, _ = w.Write(body5)
		h.Set("X-Sum", "42")
		h.Set("X-Not-Declared", "nope")
	case "/trailers-cl":
		h.Set("Trailer", "X-Sum")
		h.Set("Content-Length", "5")
		_, _ = w.Write(body5)
		h.Set("X-Sum", "42")
	case "/trailer-prefix":
		_, _ = w.Write(body5)
		h.Set(http.TrailerPrefix+"X-Late", "1")
	case "/1xx":
		h.Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Link")
		h.Set("Content-Type", "text/plain")
		_, _ = w.Write(body5)
	case "/204":
		h.Set("Content-Length", "5")
		h.Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusNoContent)
		_, _ = w.Write(body5)
	case "/304":
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", "5")
		h.Set("Etag", `"x"`)
		w.WriteHeader(http.StatusNotModified)
	case "/empty":
	case "/500":
		w.WriteHeader(http.StatusInternalServerError)
	case "/599":
		w.WriteHeader(599)
		_, _ = w.Write(body5)
	case "/conn-close":
		h.Set("Connection", "close")
		_, _ = w.Write(body5)
	case "/conn-close-flush":
		h.Set("Connection", "close")
		h.Set("Content-Type", "text/plain")
		_, _ = w.Write(body5)
		w.(http.Flusher).Flush()
	case "/short-cl":
		h.Set("Content-Length", "10")
		h.Set("Content-Type", "text/plain")
		_, _ = w.Write(body5)
	case "/long-cl":
		h.Set("Content-Length", "3")
		h.Set("Content-Type", "text/plain")
		_, err := w.Write(body5)
		_, _ = fmt.Fprint(io.Discard, err)
	case "/date":
		h.Set("Date", "Mon, 02 Jan 2006 15:04:05 GMT")
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", "5")
		_, _ = w.Write(body5)
	case "/te-identity":
		h.Set("Transfer-Encoding", "identity")
		_, _ = w.Write(body5)
	case "/te-chunked":
		h.Set("Transfer-Encoding", "chunked")
		_, _ = w.Write(body5)
	case "/cl-and-te":
		h.Set("Transfer-Encoding", "chunked")
		h.Set("Content-Length", "5")
		_, _ = w.Write(body5)
	case "/bad-cl":
		h.Set("Content-Length", "abc")
		h.Set("Content-Type", "text/plain")
		_, _ = w.Write(body5)
	case "/late-header":
		h.Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		w.Header().Set("X-Late", "1")
		_, _ = w.Write(body5)
	case "/late-header-eager":
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", "5")
		w.WriteHeader(http.StatusOK)
		w.Header().Set("X-Late", "1")
		_, _ = w.Write(body5)
	case "/values":
		h.Add("X-Multi", "one")
		h.Add("X-Multi", "two")
		h["X-Newline"] = []string{"a\nb\rc"}
		h["bad name"] = []string{"dropped"}
		h.Set("Content-Length", "5")
		h.Set("Content-Type", "text/plain")
		_, _ = w.Write(body5)
	case "/superfluous":
		w.WriteHeader(http.StatusAccepted)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body5)
	case "/panic-abort":
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", "100")
		_, _ = w.Write(body5)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	case "/panic":
		panic("boom")
	case "/echo":
		h.Set("Content-Type", "text/plain")
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		_, _ = fmt.Fprintf(w, "%s %s %q %s %v %v %d %v tls=%v", r.Method, r.RequestURI, r.Host, r.URL, r.Header, len(keys),
			r.ContentLength, r.Close, r.TLS != nil)
		_, _ = fmt.Fprintf(w, " remote-ok=%v ctx-server=%v ctx-addr=%v", r.RemoteAddr != "",
			r.Context().Value(http.ServerContextKey) != nil, r.Context().Value(http.LocalAddrContextKey) != nil)
	default:
		http.NotFound(w, r)
	}
}

// pair runs the same handler behind net/http alone and behind Server, both
// behind the smuggling guard as in the proxy.
type pair struct {
	plain, fast string
	fs          *Server
}

func newPair(t *testing.T, handler http.Handler, mutate func(*http.Server)) *pair {
	t.Helper()
	start := func(useFast bool) (string, *Server) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{
			Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
			ErrorLog:  log.New(io.Discard, "", 0),
			ConnState: h1guard.ConnState(nil),
		}
		if mutate != nil {
			mutate(srv)
		}
		var l net.Listener = h1guard.WrapListener(ln, h1guard.Options{MaxHeaderBytes: srv.MaxHeaderBytes})
		var fs *Server
		if useFast {
			fs = &Server{Handler: handler, HTTPServer: srv}
			l = fs.Listener(l)
		}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() {
			_ = srv.Close()
			if fs != nil {
				_ = fs.Close()
			}
		})
		return ln.Addr().String(), fs
	}
	p := &pair{}
	p.plain, _ = start(false)
	p.fast, p.fs = start(true)
	return p
}

// exchange writes raw to a new connection to addr and returns everything
// read until the server closes it.
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	return string(got)
}

var dateRE = regexp.MustCompile(`Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT`)

func normalise(s string) string { return dateRE.ReplaceAllString(s, "Date: <now>") }

// closing ends each exchange: not plain, so the fast server hands the
// connection over and net/http answers and closes it.
const closing = "GET /empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

func getReq(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: app.example\r\n\r\n" }

// TestDifferential sends the same bytes to net/http and to Server and
// requires the same bytes back.
func TestDifferential(t *testing.T) {
	p := newPair(t, http.HandlerFunc(behaviours), nil)
	paths := []string{"/cl-ct", "/cl-noct", "/cl-ce", "/nocl", "/nocl-ct", "/nocl-two-writes", "/big", "/big-ct", "/big-cl",
		"/flush", "/flush-first", "/flush-cl", "/trailers", "/trailers-cl", "/trailer-prefix", "/1xx", "/204", "/304", "/empty",
		"/500", "/599", "/conn-close", "/conn-close-flush", "/short-cl", "/long-cl", "/date", "/te-identity", "/te-chunked",
		"/cl-and-te", "/bad-cl", "/late-header", "/late-header-eager", "/values", "/superfluous", "/panic-abort", "/panic",
		"/echo", "/missing", "/echo?a=1&b=%zz", "/%41%42?x", "//double/slash", "/echo?q=a;b"}
	type tc struct{ name, raw string }
	var cases []tc
	for _, path := range paths {
		cases = append(cases, tc{"GET " + path, getReq(path) + closing})
		cases = append(cases, tc{"HEAD " + path, "HEAD " + path + " HTTP/1.1\r\nHost: app.example\r\n\r\n" + closing})
	}
	cases = append(cases,
		tc{"pipelined plain", getReq("/cl-ct") + getReq("/nocl") + getReq("/big") + getReq("/echo") + closing},
		tc{"keep-alive header", "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n" + closing},
		tc{"header shapes", "GET /echo HTTP/1.1\r\nhost: a:8443\r\nx-lower: v\r\nX-Tab:\tv \t\r\nX-Empty:\r\nCache-Control: \r\nPragma: no-cache\r\n\r\n" + closing},
		tc{"plain then body", getReq("/echo") + "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" + getReq("/echo") + closing},
		tc{"plain then chunked", getReq("/cl-ct") + "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + closing},
		tc{"connection close", "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
		tc{"expect", "GET /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n" + closing},
		tc{"expect bogus", "GET /echo HTTP/1.1\r\nHost: a\r\nExpect: bogus\r\n\r\n" + closing},
		tc{"upgrade", "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" + closing},
		tc{"te header", "GET /echo HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n" + closing},
		tc{"missing host", "GET /echo HTTP/1.1\r\nX: y\r\n\r\n"},
		tc{"two hosts", "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
		tc{"bad host", "GET /echo HTTP/1.1\r\nHost: a b\r\n\r\n"},
		tc{"empty host", "GET /echo HTTP/1.1\r\nHost:\r\n\r\n" + closing},
		tc{"bad header name", "GET /echo HTTP/1.1\r\nHost: a\r\nBad Name: v\r\n\r\n"},
		tc{"bad header value", "GET /echo HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n"},
		tc{"obs-fold", "GET /echo HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"},
		tc{"bare LF", "GET /echo HTTP/1.1\r\nHost: a\nX: y\r\n\r\n"},
		tc{"http/1.0", "GET /echo HTTP/1.0\r\nHost: a\r\n\r\n"},
		tc{"http/1.0 keep-alive", "GET /cl-ct HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n" + closing},
		tc{"absolute form", "GET http://a/echo HTTP/1.1\r\nHost: a\r\n\r\n" + closing},
		tc{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n" + closing},
		tc{"bad escape", "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n"},
		tc{"fragment", "GET /echo#frag HTTP/1.1\r\nHost: a\r\n\r\n" + closing},
		tc{"lowercase method", "get /echo HTTP/1.1\r\nHost: a\r\n\r\n" + closing},
		tc{"large header", "GET /echo HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 6000) + "\r\n\r\n" + closing},
		tc{"leading CRLF", "\r\n" + getReq("/echo") + closing},
		tc{"garbage", "HELLO\r\n\r\n"},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := normalise(exchange(t, p.plain, c.raw))
			got := normalise(exchange(t, p.fast, c.raw))
			if got != want {
				t.Errorf("responses differ\nnet/http:\n%q\nh1fast:\n%q", want, got)
			}
		})
	}
}

// TestDifferentialHeaderLimit checks a small MaxHeaderBytes: a head over
// it goes to net/http, which answers 431.
func TestDifferentialHeaderLimit(t *testing.T) {
	p := newPair(t, http.HandlerFunc(behaviours), func(s *http.Server) { s.MaxHeaderBytes = 100 })
	for _, raw := range []string{
		getReq("/cl-ct") + closing,
		"GET /cl-ct HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("v", 150) + "\r\n\r\n" + closing,
		"GET /cl-ct HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("v", 5000) + "\r\n\r\n" + closing,
	} {
		want := normalise(exchange(t, p.plain, raw))
		got := normalise(exchange(t, p.fast, raw))
		if got != want {
			t.Errorf("responses differ\nnet/http:\n%q\nh1fast:\n%q", want, got)
		}
	}
}

// TestServedFast makes sure the differential test measures this package:
// plain requests are served here, the closing one by net/http.
func TestServedFast(t *testing.T) {
	var fastHits, plainHits int
	var p *pair
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(*response); ok {
			fastHits++
		} else {
			plainHits++
		}
	})
	p = newPair(t, h, nil)
	_ = exchange(t, p.fast, getReq("/a")+getReq("/b")+closing)
	if fastHits != 2 || plainHits != 1 {
		t.Errorf("served fast %d, by net/http %d; want 2 and 1", fastHits, plainHits)
	}
}

// TestClientGone checks that a request's context ends when its client
// goes away, as with net/http.
func TestClientGone(t *testing.T) {
	started := make(chan struct{})
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			done <- nil
		case <-time.After(20 * time.Second):
			done <- fmt.Errorf("context not cancelled")
		}
	})
	p := newPair(t, h, nil)
	c, err := net.Dial("tcp", p.fast)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, getReq("/wait"))
	<-started
	_ = c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestShutdown checks the drain: an idle connection is closed, a request
// in progress completes with Connection: close, then Shutdown returns.
func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok"))
	})
	p := newPair(t, h, nil)
	idle, err := net.Dial("tcp", p.fast)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_, _ = io.WriteString(idle, getReq("/quick"))
	buf := make([]byte, 4096)
	if _, err := idle.Read(buf); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Dial("tcp", p.fast)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, _ = io.WriteString(busy, getReq("/slow"))
	<-started
	shut := make(chan error, 1)
	go func() { shut <- p.fs.Shutdown(context.Background()) }()
	// The idle connection is closed.
	_ = idle.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := idle.Read(buf); err == nil {
		t.Fatalf("idle connection still open, read %q", buf[:n])
	}
	close(release)
	_ = busy.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, _ := io.ReadAll(busy)
	if !strings.Contains(string(resp), "Connection: close\r\n") || !strings.HasSuffix(string(resp), "ok") {
		t.Errorf("in-flight response during shutdown: %q", resp)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if n := p.fs.Open(); n != 0 {
		t.Errorf("%d connections left", n)
	}
}

// TestValidHost compares validHost with httpguts for every byte.
func TestValidHost(t *testing.T) {
	for c := range 256 {
		b := []byte{'a', byte(c)}
		want := validHostRef(string(b))
		if got := validHost(b); got != want {
			t.Errorf("byte %#x: validHost %v, httpguts %v", c, got, want)
		}
	}
}

// TestDifferentialNoKeepAlive compares responses once keep-alives are off
// (the first step of the proxy's drain): requests are still served, each
// with Connection: close.
func TestDifferentialNoKeepAlive(t *testing.T) {
	var fs *Server
	p := newPair(t, http.HandlerFunc(behaviours), func(s *http.Server) { s.SetKeepAlivesEnabled(false) })
	fs = p.fs
	fs.SetKeepAlivesEnabled(false)
	for _, raw := range []string{
		getReq("/cl-ct") + getReq("/nocl"),
		getReq("/big") + closing,
		"HEAD /cl-ct HTTP/1.1\r\nHost: a\r\n\r\n",
		getReq("/conn-close"),
	} {
		want := normalise(exchange(t, p.plain, raw))
		got := normalise(exchange(t, p.fast, raw))
		if got != want {
			t.Errorf("responses differ\nnet/http:\n%q\nh1fast:\n%q", want, got)
		}
	}
	if fs.Served() == 0 {
		t.Fatal("h1fast served nothing")
	}
}
