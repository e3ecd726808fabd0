package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/certs/certstest"
)

func TestProxies(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "path="+r.URL.Path+" xff="+r.Header.Get("X-Forwarded-For"))
	}))
	defer backend.Close()
	ca := certstest.NewCA(t, "naive CA")
	certFile, keyFile := certstest.WritePair(t, t.TempDir(), ca.Issue(t, certstest.LeafOpts{}))

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--upstream", backend.URL, "--cert", certFile, "--key", keyFile}, pw, io.Discard)
		_ = pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr := ""
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "https="); ok {
			addr = v
		}
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr + "/1k")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(b) != "path=/1k xff=127.0.0.1" {
		t.Fatalf("%s %q", resp.Proto, b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop")
	}
}

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "remote listen", args: []string{"--listen", "0.0.0.0:8443"}, want: "--listen"},
		{name: "remote upstream", args: []string{"--upstream", "http://10.0.0.1:80"}, want: "loopback"},
		{name: "https upstream", args: []string{"--upstream", "https://127.0.0.1:80"}, want: "scheme must be http"},
		{name: "upstream without port", args: []string{"--upstream", "http://127.0.0.1"}, want: "--upstream"},
		{name: "no cert", args: nil, want: "--cert"},
		{name: "stray", args: []string{"x"}, want: "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
