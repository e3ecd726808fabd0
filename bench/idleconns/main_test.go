package main

import (
	"bufio"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/certs/certstest"
)

// otherCA writes a CA that did not sign the test server's certificate.
func otherCA(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(p, certstest.NewCA(t, "unrelated").PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsServer is a real HTTPS server on 127.0.0.1 that counts the
// connections it currently holds.
func tlsServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, func() int) {
	t.Helper()
	return newTLSServer(t, h, false)
}

// newTLSServer is tlsServer, offering HTTP/2 too when h2 is set.
func newTLSServer(t *testing.T, h http.HandlerFunc, h2 bool) (*httptest.Server, func() int) {
	t.Helper()
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			open[c] = true
		case http.StateClosed, http.StateHijacked:
			delete(open, c)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes the tests break on purpose
	srv.EnableHTTP2 = h2
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(open)
	}
}

func writeCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	// httptest's certificate is valid for 127.0.0.1 and "example.com".
	var b strings.Builder
	for _, c := range srv.TLS.Certificates[0].Certificate {
		b.WriteString("-----BEGIN CERTIFICATE-----\n")
		b.WriteString(b64(c))
		b.WriteString("-----END CERTIFICATE-----\n")
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHoldsConnections(t *testing.T) {
	var h2Requests atomic.Int64
	handler := func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			h2Requests.Add(1)
		}
		_, _ = io.WriteString(w, "ok")
	}
	srv, openConns := tlsServer(t, handler)
	srvH2, openConnsH2 := newTLSServer(t, handler, true)
	tests := []struct {
		name  string
		srv   *httptest.Server
		open  func() int
		extra []string
		n     int
	}{
		{name: "insecure", n: 50},
		{name: "verified with --ca", extra: []string{"--ca", writeCA(t, srv)}, n: 20},
		{name: "one connection", n: 1},
		{name: "HTTP/1.1 to a server that offers h2", srv: srvH2, open: openConnsH2, n: 10},
		{name: "HTTP/2", srv: srvH2, open: openConnsH2, extra: []string{"--proto", "h2"}, n: 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			if tc.srv == nil {
				tc.srv, tc.open = srv, openConns
			}
			h2Requests.Store(0)
			args := append([]string{"--url", tc.srv.URL + "/x", "--n", itoa(tc.n), "--parallel", "8"}, tc.extra...)
			go func() {
				done <- run(ctx, args, pw, io.Discard)
				_ = pw.Close()
			}()
			line, err := bufio.NewReader(pr).ReadString('\n')
			if err != nil {
				t.Fatalf("no ready line: %v (run: %v)", err, <-done)
			}
			if want := "ready " + itoa(tc.n) + "\n"; line != want {
				t.Fatalf("got %q, want %q", line, want)
			}
			if got := tc.open(); got < tc.n {
				t.Errorf("server holds %d connections, want at least %d", got, tc.n)
			}
			wantH2 := 0
			if slices.Contains(tc.extra, "h2") {
				wantH2 = tc.n
			}
			if got := int(h2Requests.Load()); got != wantH2 {
				t.Errorf("%d requests came over HTTP/2, want %d", got, wantH2)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("did not exit after cancel")
			}
			waitFor(t, func() bool { return tc.open() == 0 })
		})
	}
}

func TestConnectionErrors(t *testing.T) {
	closing, _ := tlsServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "bye")
	})
	failing, _ := tlsServer(t, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusBadGateway) })
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "server closes", args: []string{"--url", closing.URL, "--n", "3"}, want: "did not keep the connection alive"},
		{name: "non-200", args: []string{"--url", failing.URL, "--n", "3"}, want: "status 502"},
		{name: "plain HTTP port", args: []string{"--url", "https://" + plain.Listener.Addr().String(), "--n", "2", "--timeout", "5s"}, want: "does not look like a TLS handshake"},
		{name: "unverifiable certificate", args: []string{"--url", failing.URL, "--n", "1", "--ca", otherCA(t)}, want: "certificate"},
		{name: "http scheme", args: []string{"--url", "http://127.0.0.1:1"}, want: "scheme must be https"},
		{name: "remote host", args: []string{"--url", "https://192.0.2.1/"}, want: "loopback"},
		{name: "hostname", args: []string{"--url", "https://example.com/"}, want: "loopback"},
		{name: "zero n", args: []string{"--n", "0"}, want: "--n 0"},
		{name: "zero parallel", args: []string{"--parallel", "0"}, want: "--parallel 0"},
		{name: "bad timeout", args: []string{"--timeout", "0s"}, want: "--timeout"},
		{name: "missing CA file", args: []string{"--url", failing.URL, "--ca", "/nonexistent/ca.pem"}, want: `--ca "/nonexistent/ca.pem"`},
		{name: "stray argument", args: []string{"x"}, want: "unexpected argument"},
		{name: "h2 from a server without it", args: []string{"--url", failing.URL, "--n", "2", "--proto", "h2"}, want: "no application protocol"},
		{name: "unknown protocol", args: []string{"--proto", "h3"}, want: `--proto "h3": want h1 or h2`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := run(ctx, tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestHoldEnds(t *testing.T) {
	srv, _ := tlsServer(t, func(w http.ResponseWriter, _ *http.Request) {})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, []string{"--url", srv.URL, "--n", "2", "--hold", "10ms"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if out.String() != "ready 2\n" {
		t.Fatalf("output %q", out.String())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
