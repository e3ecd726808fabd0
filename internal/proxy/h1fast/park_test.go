//go:build linux

package h1fast

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/certs/certstest"
	"github.com/outrigger-sidecar/outrigger/internal/proxy/h1guard"
	"github.com/outrigger-sidecar/outrigger/internal/testutil/poll"
	"github.com/outrigger-sidecar/outrigger/internal/testutil/tcpserve"
)

// tlsServer runs Server behind TLS and the smuggling guard, as the proxy
// does, with the given timeouts. It returns the server and its address.
func tlsServer(t *testing.T, parkAfter time.Duration, mutate func(*http.Server)) (*Server, string, *tls.Config) {
	t.Helper()
	ca := certstest.NewCA(t, "park-test-ca")
	leaf := ca.Issue(t, certstest.LeafOpts{DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello "+r.URL.Path)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: log.New(io.Discard, "", 0), ConnState: h1guard.ConnState(nil)}
	if mutate != nil {
		mutate(srv)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}, NextProtos: []string{"http/1.1"}}
	l := h1guard.NewTLSListener(ln, cfg, h1guard.TLSOptions{})
	fs := &Server{Handler: h, HTTPServer: srv, ParkAfter: parkAfter}
	go func() { _ = srv.Serve(fs.Listener(l)) }()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = fs.Close()
	})
	return fs, ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.1"}}
}

// dialTLS connects to addr; the connection is closed when the test ends.
func dialTLS(t *testing.T, addr string, cc *tls.Config) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, bufio.NewReader(c)
}

// send writes a GET for each path on c, each in its own write (over TLS,
// its own record).
func send(t *testing.T, c net.Conn, paths ...string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	for _, path := range paths {
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
}

// getOn sends a GET for path on c and checks the answer.
func getOn(t *testing.T, c net.Conn, br *bufio.Reader, path string) {
	t.Helper()
	send(t, c, path)
	readHello(t, br, path)
}

func readHello(t *testing.T, br *bufio.Reader, path string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(body) != "hello "+path {
		t.Fatalf("GET %s: %d %q %v", path, resp.StatusCode, body, err)
	}
}

// expectClosed reads until the server closes c.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server did not close the connection")
	}
}

// TestParkResume: a keep-alive connection idle for longer than ParkAfter
// parks (no goroutine, no buffers) and serves its next requests as before,
// parking again after each.
func TestParkResume(t *testing.T) {
	fs, addr, cc := tlsServer(t, 20*time.Millisecond, nil)
	c, br := dialTLS(t, addr, cc)
	for i, path := range []string{"/one", "/two", "/three"} {
		getOn(t, c, br, path)
		poll.Until(t, 20*time.Second, "the connection parked", func() bool { return fs.Parked() == 1 })
		if i == 0 && fs.Open() != 1 {
			t.Fatalf("Open() = %d while parked, want 1", fs.Open())
		}
	}
	if n := fs.Served(); n != 3 {
		t.Errorf("served %d requests itself, want 3", n)
	}
}

// TestParkBeforeFirstRequest: a connection that sends nothing after its
// handshake parks too, and is served when its request comes.
func TestParkBeforeFirstRequest(t *testing.T) {
	fs, addr, cc := tlsServer(t, 20*time.Millisecond, nil)
	c, br := dialTLS(t, addr, cc)
	poll.Until(t, 20*time.Second, "the new connection parked", func() bool { return fs.Parked() == 1 })
	getOn(t, c, br, "/first")
}

// TestParkTimeouts: the idle timeout and the first request's header
// timeout still close parked connections, and they are forgotten.
func TestParkTimeouts(t *testing.T) {
	fs, addr, cc := tlsServer(t, 20*time.Millisecond, func(s *http.Server) {
		s.IdleTimeout = 300 * time.Millisecond
		s.ReadHeaderTimeout = 300 * time.Millisecond
	})
	idle, br := dialTLS(t, addr, cc)
	getOn(t, idle, br, "/x")
	silent, _ := dialTLS(t, addr, cc)
	poll.Until(t, 20*time.Second, "both connections parked", func() bool { return fs.Parked() == 2 })
	expectClosed(t, idle)
	expectClosed(t, silent)
	poll.Until(t, 20*time.Second, "no connection left", func() bool { return fs.Open() == 0 && fs.Parked() == 0 })
}

// TestParkClientGone: a parked connection whose client leaves is closed
// and forgotten at once, not at its idle deadline.
func TestParkClientGone(t *testing.T) {
	fs, addr, cc := tlsServer(t, 20*time.Millisecond, nil)
	c, br := dialTLS(t, addr, cc)
	getOn(t, c, br, "/x")
	poll.Until(t, 20*time.Second, "the connection parked", func() bool { return fs.Parked() == 1 })
	_ = c.Close()
	poll.Until(t, 20*time.Second, "the connection forgotten", func() bool { return fs.Open() == 0 && fs.Parked() == 0 })
}

// TestParkShutdown: Shutdown closes parked connections as idle ones and
// returns.
func TestParkShutdown(t *testing.T) {
	fs, addr, cc := tlsServer(t, 20*time.Millisecond, nil)
	c, br := dialTLS(t, addr, cc)
	getOn(t, c, br, "/x")
	poll.Until(t, 20*time.Second, "the connection parked", func() bool { return fs.Parked() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := fs.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c)
	if fs.Parked() != 0 || fs.Open() != 0 {
		t.Errorf("after Shutdown: %d parked, %d open", fs.Parked(), fs.Open())
	}
}

// relay forwards a TCP connection's bytes to addr, passing each chunk the
// client writes through shape, which writes it to the server in its own
// way. The server's bytes go back unchanged.
func relay(t *testing.T, addr string, shape func(dst net.Conn, chunk []byte, src net.Conn)) string {
	t.Helper()
	return tcpserve.Start(t, func(cl net.Conn) {
		up, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		defer up.Close()
		go func() {
			_, _ = io.Copy(cl, up)
			_ = cl.Close()
		}()
		buf := make([]byte, 64<<10)
		for {
			n, err := cl.Read(buf)
			if n > 0 {
				shape(up, append([]byte(nil), buf[:n]...), cl)
			}
			if err != nil {
				return
			}
		}
	})
}

// TestParkPartialRecord: a connection that parks with part of a TLS record
// already read by crypto/tls (the rest still to come from the kernel) is
// woken by the rest and serves the request.
func TestParkPartialRecord(t *testing.T) {
	fs, addr, cc := tlsServer(t, 20*time.Millisecond, nil)
	var split atomic.Bool
	sent := make(chan struct{}, 1)
	raddr := relay(t, addr, func(dst net.Conn, chunk []byte, _ net.Conn) {
		if split.Load() && len(chunk) > 8 {
			_, _ = dst.Write(chunk[:8]) // the record header and 3 bytes
			sent <- struct{}{}
			time.Sleep(300 * time.Millisecond) // > ParkAfter: the server parks
			chunk = chunk[8:]
		}
		_, _ = dst.Write(chunk)
	})
	c, br := dialTLS(t, raddr, cc)
	getOn(t, c, br, "/whole")
	split.Store(true)
	send(t, c, "/split")
	<-sent
	poll.Until(t, 20*time.Second, "the connection parked on a partial record", func() bool { return fs.Parked() == 1 })
	readHello(t, br, "/split")
}

// TestParkBufferedRecord: when a request's TLS record arrived together with
// the previous one, crypto/tls holds it and the socket has nothing: the
// connection must serve it rather than park.
func TestParkBufferedRecord(t *testing.T) {
	_, addr, cc := tlsServer(t, 20*time.Millisecond, nil)
	var coalesce atomic.Bool
	raddr := relay(t, addr, func(dst net.Conn, chunk []byte, src net.Conn) {
		if coalesce.Load() {
			// Gather what the client writes in the next 100 ms (two
			// records) into one write.
			_ = src.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			buf := make([]byte, 64<<10)
			for {
				n, err := src.Read(buf)
				chunk = append(chunk, buf[:n]...)
				if err != nil {
					break
				}
			}
			_ = src.SetReadDeadline(time.Time{})
		}
		_, _ = dst.Write(chunk)
	})
	c, br := dialTLS(t, raddr, cc)
	getOn(t, c, br, "/first")
	coalesce.Store(true)
	send(t, c, "/a", "/b") // one record each
	readHello(t, br, "/a")
	readHello(t, br, "/b")
}

// TestParkPlain: connections without TLS park and resume too, and a
// negative ParkAfter turns parking off.
func TestParkPlain(t *testing.T) {
	for _, after := range []time.Duration{20 * time.Millisecond, -1} {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello "+r.URL.Path) })
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0), ConnState: h1guard.ConnState(nil)}
		fs := &Server{Handler: h, HTTPServer: srv, ParkAfter: after}
		go func() { _ = srv.Serve(fs.Listener(h1guard.WrapListener(ln, h1guard.Options{}))) }()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		getOn(t, c, br, "/one")
		if after > 0 {
			poll.Until(t, 20*time.Second, "the connection parked", func() bool { return fs.Parked() == 1 })
		} else {
			time.Sleep(100 * time.Millisecond)
			if n := fs.Parked(); n != 0 {
				t.Errorf("ParkAfter %v: %d parked", after, n)
			}
		}
		getOn(t, c, br, "/two")
		_ = c.Close()
		_ = srv.Close()
		_ = fs.Close()
	}
}
