package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/certs/certstest"
)

// startBackend runs the real command on 127.0.0.1:0 and returns the
// addresses it printed.
func startBackend(t *testing.T, args ...string) (httpAddr, httpsAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw, io.Discard)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("backend did not stop")
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the listening line: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "http="); ok {
			httpAddr = v
		}
		if v, ok := strings.CutPrefix(f, "https="); ok {
			httpsAddr = v
		}
	}
	if httpAddr == "" {
		t.Fatalf("no http= in %q", line)
	}
	return httpAddr, httpsAddr
}

func TestEndpoints(t *testing.T) {
	ca := certstest.NewCA(t, "bench CA")
	certFile, keyFile := certstest.WritePair(t, t.TempDir(), ca.Issue(t, certstest.LeafOpts{}))
	plain, secure := startBackend(t, "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--cert", certFile, "--key", keyFile)
	if secure == "" {
		t.Fatal("no https address printed")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	tests := []struct {
		name     string
		path     string
		status   int
		size     int
		wantH2   bool
		over     string
		checkLen bool
	}{
		{name: "1k plain", path: "/1k", status: 200, size: 1024, over: "http://" + plain, checkLen: true},
		{name: "64k plain", path: "/64k", status: 200, size: 65536, over: "http://" + plain, checkLen: true},
		{name: "1k over TLS is HTTP/2", path: "/1k", status: 200, size: 1024, over: "https://" + secure, wantH2: true, checkLen: true},
		{name: "bytes", path: "/bytes?size=7", status: 200, size: 7, over: "http://" + plain, checkLen: true},
		{name: "bytes zero", path: "/bytes?size=0", status: 200, size: 0, over: "http://" + plain, checkLen: true},
		{name: "bytes negative", path: "/bytes?size=-1", status: 400, over: "http://" + plain},
		{name: "bytes too large", path: "/bytes?size=999999999", status: 400, over: "http://" + plain},
		{name: "bytes not a number", path: "/bytes?size=%00x", status: 400, over: "http://" + plain},
		{name: "healthz", path: "/healthz", status: 200, size: 3, over: "http://" + plain, checkLen: true},
		{name: "unknown path", path: "/nope", status: 404, over: "http://" + plain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Get(tc.over + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, b)
			}
			if tc.checkLen && len(b) != tc.size {
				t.Errorf("body %d bytes, want %d", len(b), tc.size)
			}
			if tc.wantH2 && resp.ProtoMajor != 2 {
				t.Errorf("protocol %s, want HTTP/2", resp.Proto)
			}
		})
	}
}

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "non-loopback listen", args: []string{"--listen", "0.0.0.0:1"}, want: `--listen "0.0.0.0:1"`},
		{name: "hostname listen", args: []string{"--listen", "example.com:1"}, want: "loopback"},
		{name: "no port", args: []string{"--listen", "127.0.0.1"}, want: "--listen"},
		{name: "tls without cert", args: []string{"--tls-listen", "127.0.0.1:0"}, want: "needs --cert and --key"},
		{name: "tls non-loopback", args: []string{"--tls-listen", "10.0.0.1:443", "--cert", "c", "--key", "k"}, want: "--tls-listen"},
		{name: "missing cert file", args: []string{"--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--cert", "/nonexistent/c", "--key", "/nonexistent/k"}, want: `--cert "/nonexistent/c"`},
		{name: "stray argument", args: []string{"extra"}, want: `unexpected argument "extra"`},
		{name: "unknown flag", args: []string{"--nope"}, want: "not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
