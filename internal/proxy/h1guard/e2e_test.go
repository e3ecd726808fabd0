package h1guard

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testServer is a real http.Server on 127.0.0.1:0 behind a guard.
type testServer struct {
	addr    string
	hits    sync.Map // path → *atomic.Int32
	rejects sync.Map // reason → *atomic.Int32
	srv     *http.Server
}

func (ts *testServer) count(m *sync.Map, key string) int32 {
	v, _ := m.LoadOrStore(key, new(atomic.Int32))
	return v.(*atomic.Int32).Load()
}

func (ts *testServer) inc(m *sync.Map, key string) {
	v, _ := m.LoadOrStore(key, new(atomic.Int32))
	v.(*atomic.Int32).Add(1)
}

func (ts *testServer) handler(w http.ResponseWriter, r *http.Request) {
	ts.inc(&ts.hits, r.URL.Path)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch r.URL.Path {
	case "/slow":
		// Write part of the response, let the server's background read run,
		// then finish: a refusal must not land in between.
		fmt.Fprint(w, "part one;")
		w.(http.Flusher).Flush()
		time.Sleep(50 * time.Millisecond)
		fmt.Fprint(w, "part two")
		return
	case "/noupgrade":
		fmt.Fprint(w, "no upgrade here")
		return
	case "/upgrade":
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "echo")
		w.WriteHeader(http.StatusSwitchingProtocols)
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_ = brw.Flush()
		_, _ = io.Copy(c, brw) // echo until the client closes
		return
	}
	tlsState := "none"
	if r.TLS != nil {
		tlsState = "tls"
	}
	fmt.Fprintf(w, "%s %s %s %d %s", r.Method, r.URL.Path, r.Proto, len(body), tlsState)
}

// startServer serves HTTP on ln (already guarded) until the test ends.
func startServer(t *testing.T, ln net.Listener, wrap func(net.Listener, Options) net.Listener, maxHeaderBytes int) *testServer {
	t.Helper()
	ts := &testServer{addr: ln.Addr().String()}
	ts.srv = &http.Server{
		Handler:           http.HandlerFunc(ts.handler),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		MaxHeaderBytes:    maxHeaderBytes,
	}
	ts.srv.ConnState = ConnState(nil)
	gl := wrap(ln, Options{OnReject: func(r string) { ts.inc(&ts.rejects, r) }, MaxHeaderBytes: maxHeaderBytes})
	done := make(chan error, 1)
	go func() { done <- ts.srv.Serve(gl) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ts.srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

func plainServer(t *testing.T) *testServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, ln, WrapListener, 0)
}

// exchange sends raw bytes and reads every response until the server closes
// the connection or stops answering.
func exchange(t *testing.T, dial func() (net.Conn, error), raw string) []*http.Response {
	t.Helper()
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // deadlock guard
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading response body: %v", err)
		}
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		resp.Status = string(body) // keep the body handy for messages
		out = append(out, resp)
		if resp.Close {
			return out
		}
	}
}

func tcpDialer(addr string) func() (net.Conn, error) {
	return func() (net.Conn, error) { return net.Dial("tcp", addr) }
}

func TestEndToEndProbesRefused(t *testing.T) {
	ts := plainServer(t)
	const valid = "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"
	probes := []struct{ name, raw, reason string }{
		{"cl.te", "POST /evil HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", ReasonTEAndCL},
		{"te.cl", "POST /evil HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1\r\nZ\r\n0\r\n\r\n", ReasonTEAndCL},
		{"duplicate cl", "POST /evil HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", ReasonDuplicateCL},
		{"obs-fold te", "POST /evil HTTP/1.1\r\nHost: a\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ReasonObsFold},
		{"te identity", "POST /evil HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", ReasonBadTE},
		{"te space colon", "POST /evil HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", ReasonBadHeader},
		{"bare lf", "GET /evil HTTP/1.1\nHost: a\n\n", ReasonBareLF},
		{"bad chunk size", "POST /badbody HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", ReasonBadChunk},
		{"pipelined after valid", valid + "POST /evil HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ReasonTEAndCL},
		{"after slow response", "GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /evil HTTP/1.1\r\nHost: a\r\n X: 1\r\n\r\n", ReasonObsFold},
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			before := ts.count(&ts.rejects, p.reason)
			resps := exchange(t, tcpDialer(ts.addr), p.raw)
			if len(resps) == 0 {
				t.Fatal("no response")
			}
			last := resps[len(resps)-1]
			if last.StatusCode != http.StatusBadRequest || !last.Close || last.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
				t.Fatalf("last response %d close=%v %v, want the guard's 400", last.StatusCode, last.Close, last.Header)
			}
			for _, r := range resps[:len(resps)-1] {
				if r.StatusCode != http.StatusOK {
					t.Errorf("earlier response %d %q, want 200", r.StatusCode, r.Status)
				}
			}
			if strings.Contains(p.raw, "/slow") && (len(resps) != 2 || resps[0].Status != "part one;part two") {
				t.Errorf("slow response garbled: %d responses, first %q", len(resps), resps[0].Status)
			}
			if got := ts.count(&ts.rejects, p.reason) - before; got != 1 {
				t.Errorf("OnReject(%q) called %d times, want 1", p.reason, got)
			}
		})
	}
	if n := ts.count(&ts.hits, "/evil"); n != 0 {
		t.Fatalf("handler invoked %d times for refused requests", n)
	}
	// A bad chunked body is found while the handler reads it: the handler
	// runs, and its body read fails.
	if n := ts.count(&ts.hits, "/badbody"); n != 1 {
		t.Fatalf("handler invoked %d times for the bad body, want 1", n)
	}
}

func TestEndToEndValidPipelined(t *testing.T) {
	ts := plainServer(t)
	raw := "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n" +
		"PUT /4 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi" +
		"GET /5 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	want := []string{"GET /1 HTTP/1.1 0 none", "POST /2 HTTP/1.1 5 none", "POST /3 HTTP/1.1 3 none", "PUT /4 HTTP/1.1 2 none", "GET /5 HTTP/1.1 0 none"}
	resps := exchange(t, tcpDialer(ts.addr), raw)
	var got []string
	for _, r := range resps {
		if r.StatusCode == http.StatusContinue {
			continue
		}
		got = append(got, r.Status)
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("responses %q, want %q", got, want)
	}
}

func TestEndToEndUpgradePassThrough(t *testing.T) {
	ts := plainServer(t)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	// Bytes that would be violations in HTTP/1 must pass untouched.
	const payload = "GET / HTTP/1.1\nTransfer-Encoding: x\r\n X\r\r\n"
	if _, err := io.WriteString(c, payload); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != payload {
		t.Fatalf("echo %q, %v", got, err)
	}
}

// selfSigned returns a TLS certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "h1guard test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestEndToEndTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var hsErrs atomic.Int32
	srvCfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	ts := startServer(t, ln, func(l net.Listener, o Options) net.Listener {
		return NewTLSListener(l, srvCfg, TLSOptions{Options: o, HandshakeTimeout: 5 * time.Second,
			OnHandshakeError: func(net.Addr, error) { hsErrs.Add(1) }})
	}, 0)

	dialTLS := func(protos ...string) func() (net.Conn, error) {
		return func() (net.Conn, error) {
			return tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: pool, NextProtos: protos})
		}
	}
	t.Run("http/1.1 with Request.TLS", func(t *testing.T) {
		resps := exchange(t, dialTLS("http/1.1"), "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if len(resps) != 2 || resps[0].Status != "GET /a HTTP/1.1 0 tls" || resps[1].Status != "GET /b HTTP/1.1 0 tls" {
			t.Fatalf("responses %v", resps)
		}
	})
	t.Run("no ALPN probe refused", func(t *testing.T) {
		resps := exchange(t, dialTLS(), "POST /evil HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
		if len(resps) != 1 || resps[0].StatusCode != http.StatusBadRequest {
			t.Fatalf("responses %v", resps)
		}
	})
	t.Run("h2 goes to net/http's HTTP/2", func(t *testing.T) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + ts.addr + "/h2")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(body) != "GET /h2 HTTP/2.0 0 tls" {
			t.Fatalf("got %s %q", resp.Proto, body)
		}
	})
	t.Run("plain HTTP to TLS port", func(t *testing.T) {
		resps := exchange(t, tcpDialer(ts.addr), "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if len(resps) != 1 || resps[0].StatusCode != http.StatusBadRequest {
			t.Fatalf("responses %v", resps)
		}
	})
	t.Run("bad handshake counted", func(t *testing.T) {
		before := hsErrs.Load()
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Write([]byte("\x16\x03\x01\x00\x05hello"))
		_, _ = io.Copy(io.Discard, c) // until the server closes
		c.Close()
		for i := 0; hsErrs.Load() == before; i++ {
			if i > 1000 {
				t.Fatal("handshake error not reported")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	if n := ts.count(&ts.hits, "/evil"); n != 0 {
		t.Fatalf("handler invoked %d times for refused requests", n)
	}
}

// TestEndToEndRefusalSurvivesUnreadInput sends a probe followed by more data
// than one Read takes: the 400 must still reach the client (no RST).
func TestEndToEndRefusalSurvivesUnreadInput(t *testing.T) {
	ts := plainServer(t)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	head := "POST /evil HTTP/1.1\r\nHost: a\r\nContent-Length: 32768\r\nTransfer-Encoding: chunked\r\n\r\n"
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	go func() {
		// Errors are expected once the server has closed.
		for i := 0; i < 32; i++ {
			if _, err := c.Write(make([]byte, 1024)); err != nil {
				return
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the refusal: %v", err)
	}
	if resp.StatusCode != http.StatusBadRequest || !resp.Close {
		t.Fatalf("got %d close=%v", resp.StatusCode, resp.Close)
	}
}

// TestEndToEndOversizedHeaderLeftToNetHTTP: past MaxHeaderBytes the guard
// stops scanning, so net/http's 431 answers, not the guard's 400.
func TestEndToEndOversizedHeaderLeftToNetHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, ln, WrapListener, 1024)
	raw := "GET /big HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 8000) + "\r\n X: fold\r\n\r\n"
	resps := exchange(t, tcpDialer(ts.addr), raw)
	if len(resps) != 1 || resps[0].StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("responses %v, want one 431", resps)
	}
	if n := ts.count(&ts.rejects, ReasonObsFold); n != 0 {
		t.Fatalf("guard refused %d oversized requests", n)
	}
}

func TestTLSListenerCloseAbortsHandshakes(t *testing.T) {
	cert, _ := selfSigned(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewTLSListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}}, TLSOptions{})
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // deadlock guard
	// Send half a ClientHello so the handshake is surely in progress.
	if _, err := c.Write([]byte("\x16\x03\x01\x02\x00")); err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if _, err := io.Copy(io.Discard, c); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("handshake not aborted by Close")
	}
}

// TestEndToEndRefusedUpgradeResumesScanning: a request with Upgrade that the
// handler does not take over must not switch the guard off for the rest of
// the connection.
func TestEndToEndRefusedUpgradeResumesScanning(t *testing.T) {
	ts := plainServer(t)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, "GET /noupgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("upgrade request: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if _, err := io.WriteString(c, "POST /evil HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("probe after a refused upgrade: %v %v, want 400", resp, err)
	}
	if n := ts.count(&ts.hits, "/evil"); n != 0 {
		t.Fatalf("handler invoked %d times for the probe", n)
	}
}

// TestEndToEndBodyViolationBeforeAnyResponse: a chunk-framing violation
// found while the handler reads the body, before the handler wrote
// anything, is answered with the guard's 400 — not with whatever net/http
// sends for a handler that gives up silently (an empty 200).
func TestEndToEndBodyViolationBeforeAnyResponse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // fails; the handler writes nothing
		}),
		ConnState: ConnState(nil),
	}
	go func() { _ = srv.Serve(WrapListener(l, Options{})) }()
	t.Cleanup(func() { srv.Close() })
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400 from the guard", resp.StatusCode)
	}
}

// TestTLSListenerDrainFinishesHandshakes: a connection accepted before Drain
// whose handshake completes after it is still handed to Accept; new
// connections are refused; Close afterwards ends Accept without an error
// from the already-closed inner listener.
func TestTLSListenerDrainFinishesHandshakes(t *testing.T) {
	cert, pool := selfSigned(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewTLSListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}}, TLSOptions{})
	accepted := make(chan net.Conn, 1)
	acceptErr := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			accepted <- c
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	// Make sure the listener has accepted the TCP connection (its handshake
	// goroutine waits for the ClientHello) before draining.
	time.Sleep(100 * time.Millisecond)

	drained := make(chan error, 1)
	go func() { drained <- ln.(interface{ Drain(context.Context) error }).Drain(context.Background()) }()
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) with a handshake still in progress", err)
	case <-time.After(100 * time.Millisecond):
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("a new connection was accepted after Drain")
	}
	tc := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake after Drain began: %v", err)
	}
	select {
	case c := <-accepted:
		c.Close()
	case err := <-acceptErr:
		t.Fatalf("Accept = %v, want the drained connection", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the connection accepted before Drain was not delivered")
	}
	if err := <-drained; err != nil {
		t.Errorf("Drain = %v", err)
	}
	if err := ln.Close(); err != nil {
		t.Errorf("Close after Drain = %v, want nil", err)
	}
	if err := <-acceptErr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
}
