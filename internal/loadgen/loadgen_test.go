package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// run is Run with a deadlock guard.
func run(t *testing.T, o Options) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	r, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r.Sent != r.OK+r.Failed+r.Canceled {
		t.Fatalf("accounting: sent %d != ok %d + failed %d + canceled %d", r.Sent, r.OK, r.Failed, r.Canceled)
	}
	t.Logf("%s", r)
	return r
}

func okHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	_, _ = io.WriteString(w, "hello")
}

func TestRunCountsEveryRequest(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		okHandler(w, r)
	}))
	defer srv.Close()
	r := run(t, Options{URL: srv.URL, Concurrency: 4, MaxRequests: 200})
	if r.Sent != 200 || r.OK != 200 || r.Failed != 0 {
		t.Fatalf("sent %d ok %d failed %d, want 200/200/0", r.Sent, r.OK, r.Failed)
	}
	if got := served.Load(); got != 200 {
		t.Fatalf("server saw %d requests, want 200", got)
	}
	if r.ByStatus[200] != 200 || r.ByProto["HTTP/1.1"] != 200 {
		t.Fatalf("by status %v, by proto %v", r.ByStatus, r.ByProto)
	}
	if r.P50 <= 0 || r.P99 < r.P50 || r.Max < r.P99 {
		t.Fatalf("latencies p50 %v p99 %v max %v not ordered", r.P50, r.P99, r.Max)
	}
}

func TestRunStopsAtDuration(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(okHandler))
	defer srv.Close()
	r := run(t, Options{URL: srv.URL, Concurrency: 2, Duration: 200 * time.Millisecond})
	if r.Sent == 0 || r.Failed != 0 {
		t.Fatalf("sent %d failed %d, want some and none failed", r.Sent, r.Failed)
	}
}

func TestRunLetsInFlightRequestsFinish(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		okHandler(w, r)
	}))
	defer srv.Close()
	// Duration ends while every worker has a request in flight: they must
	// complete and be counted OK, not canceled.
	r := run(t, Options{URL: srv.URL, Concurrency: 3, Duration: 50 * time.Millisecond})
	if r.Sent != 3 || r.OK != 3 {
		t.Fatalf("sent %d ok %d, want 3/3", r.Sent, r.OK)
	}
}

func TestRunCanceledContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	r, err := Run(ctx, Options{URL: srv.URL, Concurrency: 2, Duration: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Canceled != 2 || r.Failed != 0 || r.Sent != 2 {
		t.Fatalf("%s: want 2 canceled, 0 failed", r)
	}
}

func TestRunStatusAndCheck(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 3 {
		case 0:
			http.Error(w, "bad gateway", http.StatusBadGateway)
		case 1:
			_, _ = io.WriteString(w, "good")
		default:
			_, _ = io.WriteString(w, "wrong")
		}
	}))
	defer srv.Close()
	r := run(t, Options{URL: srv.URL, MaxRequests: 30, Check: func(_ *http.Response, b []byte) error {
		if string(b) != "good" {
			return fmt.Errorf("body %q", b)
		}
		return nil
	}})
	if r.OK != 10 || r.Failed != 20 || r.ByStatus[502] != 10 || r.Errors[ClassCheck] != 10 {
		t.Fatalf("%s: want ok 10, failed 20 (10 status 502, 10 check)", r)
	}
	if len(r.ErrorSamples) == 0 {
		t.Fatal("no error samples")
	}
}

func TestRunPostsBody(t *testing.T) {
	var bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || string(b) != "payload" || r.Header.Get("X-Test") != "1" {
			bad.Add(1)
		}
	}))
	defer srv.Close()
	r := run(t, Options{URL: srv.URL, Method: http.MethodPost, Body: []byte("payload"),
		Header: http.Header{"X-Test": {"1"}}, MaxRequests: 20, Concurrency: 2})
	if r.OK != 20 || bad.Load() != 0 {
		t.Fatalf("%s; %d bad requests at the server", r, bad.Load())
	}
}

// connCounter counts new connections a server accepted. Keep-alive runs may
// open a few more than Concurrency (a dial can race an idle connection), so
// their bound is loose; per-request runs must open one per request (HTTP/2
// may race one spare dial per worker).
func connCounter(srv *httptest.Server) *atomic.Int64 {
	var n atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

func TestRunConnectionReuse(t *testing.T) {
	cases := []struct {
		name      string
		newConn   bool
		http2     bool
		tls       bool
		wantConns func(int64) bool
		wantProto string
	}{
		{"h1 keep-alive", false, false, false, func(n int64) bool { return n <= 8 }, "HTTP/1.1"},
		{"h1 new conn each", true, false, false, func(n int64) bool { return n >= 40 && n <= 44 }, "HTTP/1.1"},
		{"h1 tls keep-alive", false, false, true, func(n int64) bool { return n <= 8 }, "HTTP/1.1"},
		{"h1 tls new conn each", true, false, true, func(n int64) bool { return n >= 40 && n <= 44 }, "HTTP/1.1"},
		{"h2 tls", false, true, true, func(n int64) bool { return n <= 8 }, "HTTP/2.0"},
		{"h2 tls new conn each", true, true, true, func(n int64) bool { return n >= 40 && n <= 44 }, "HTTP/2.0"},
		{"h2c", false, true, false, func(n int64) bool { return n <= 8 }, "HTTP/2.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(okHandler))
			conns := connCounter(srv)
			o := Options{MaxRequests: 40, Concurrency: 2, HTTP2: tc.http2, NewConnPerRequest: tc.newConn}
			if tc.tls {
				srv.EnableHTTP2 = tc.http2
				srv.StartTLS()
				pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
				o.TLSConfig = &tls.Config{RootCAs: pool}
			} else {
				p := new(http.Protocols)
				p.SetHTTP1(true)
				p.SetUnencryptedHTTP2(tc.http2)
				srv.Config.Protocols = p
				srv.Start()
			}
			defer srv.Close()
			o.URL = srv.URL
			r := run(t, o)
			if r.OK != 40 {
				t.Fatalf("ok %d, want 40", r.OK)
			}
			if r.ByProto[tc.wantProto] != 40 {
				t.Fatalf("protocols %v, want all %s", r.ByProto, tc.wantProto)
			}
			if n := conns.Load(); !tc.wantConns(n) {
				t.Fatalf("server accepted %d connections", n)
			}
		})
	}
}

// rawServer accepts connections and hands each to handle.
func rawServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return l.Addr().String()
}

// readHead consumes a request's header block.
func readHead(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	var got []byte
	for !strings.Contains(string(got), "\r\n\r\n") {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		got = append(got, buf[:n]...)
	}
}

func TestRunClassifiesErrors(t *testing.T) {
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}
	untrusted := httptest.NewTLSServer(http.HandlerFunc(okHandler))
	defer untrusted.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	cases := []struct {
		name    string
		url     string
		timeout time.Duration
		class   string
	}{
		{"nothing listening", "http://" + closed() + "/", 0, ClassRefused},
		{"reset after request", "http://" + rawServer(t, func(c net.Conn) {
			readHead(c)
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}) + "/", 0, ClassReset},
		{"closed after request", "http://" + rawServer(t, func(c net.Conn) {
			readHead(c)
			c.Close()
		}) + "/", 0, ClassEOF},
		{"truncated body", "http://" + rawServer(t, func(c net.Conn) {
			readHead(c)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
			c.Close()
		}) + "/", 0, ClassEOF},
		{"untrusted certificate", untrusted.URL, 0, ClassTLS},
		{"not TLS at all", "https://" + rawServer(t, func(c net.Conn) {
			_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\n\r\n")
			c.Close()
		}) + "/", 0, ClassTLS},
		{"slow server", slow.URL, 100 * time.Millisecond, ClassTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, Options{URL: tc.url, MaxRequests: 3, Timeout: tc.timeout})
			if r.Failed != 3 || r.Errors[tc.class] != 3 {
				t.Fatalf("%s: want 3 failed as %q; samples %q", r, tc.class, r.ErrorSamples)
			}
		})
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"public IP", Options{URL: "http://10.1.2.3/", MaxRequests: 1}, "not loopback"},
		{"public name", Options{URL: "https://example.com/", MaxRequests: 1}, "not loopback"},
		{"unspecified", Options{URL: "http://0.0.0.0:80/", MaxRequests: 1}, "not loopback"},
		{"IPv6 public", Options{URL: "http://[2001:db8::1]:80/", MaxRequests: 1}, "not loopback"},
		{"ftp", Options{URL: "ftp://127.0.0.1/", MaxRequests: 1}, "scheme"},
		{"garbage URL", Options{URL: "http://[::1", MaxRequests: 1}, "URL"},
		{"unbounded", Options{URL: "http://127.0.0.1:1/"}, "bounded"},
		{"negative concurrency", Options{URL: "http://127.0.0.1:1/", MaxRequests: 1, Concurrency: -1}, "concurrency"},
		{"negative duration", Options{URL: "http://127.0.0.1:1/", Duration: -time.Second}, "negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(t.Context(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run(%q) error %v, want one containing %q", tc.o.URL, err, tc.want)
			}
		})
	}
}

func TestLoopbackDialerRefusesOtherAddresses(t *testing.T) {
	dial := loopbackDialer()
	for _, addr := range []string{"10.0.0.1:80", "192.0.2.1:443", "[2001:db8::1]:80", "nohost"} {
		if c, err := dial(t.Context(), "tcp", addr); err == nil {
			c.Close()
			t.Errorf("dial %s succeeded, want refused", addr)
		}
	}
}

func TestIsLoopbackHost(t *testing.T) {
	cases := map[string]bool{
		"127.0.0.1": true, "127.8.9.10": true, "::1": true, "[::1]": true, "localhost": true, "LOCALHOST": true,
		"10.0.0.1": false, "0.0.0.0": false, "::": false, "example.com": false, "": false, "localhost.evil": false,
	}
	for host, want := range cases {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"wrapped EOF", fmt.Errorf("read: %w", io.EOF), ClassEOF},
		{"unexpected EOF", io.ErrUnexpectedEOF, ClassEOF},
		{"deadline", context.DeadlineExceeded, ClassTimeout},
		{"tls alert", tls.AlertError(40), ClassTLS},
		{"refused text", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), ClassRefused},
		{"reset text", errors.New("read: connection reset by peer"), ClassReset},
		{"pipe text", errors.New("write: broken pipe"), ClassReset},
		{"tls text", errors.New("remote error: tls: handshake failure"), ClassTLS},
		{"idle close", errors.New("http: server closed idle connection"), ClassEOF},
		{"other", errors.New("something else"), ClassOther},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Fatalf("Classify(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}
