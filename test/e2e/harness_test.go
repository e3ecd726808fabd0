// Package e2e drives the compiled outrigger binary as real processes: the
// stand-in legacy app, the proxy, sync and the config API, talking over real
// sockets with real signals. The pod test runs them inside network
// namespaces the test creates (root only).
package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/testutil/freeport"
	"github.com/outrigger-sidecar/outrigger/internal/testutil/proctest"
)

// bin is the outrigger binary built once for all tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outrigger-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "outrigger")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/outrigger")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building outrigger:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a child process (internal/testutil/proctest).
type proc = proctest.Proc

// start runs argv (argv[0] may be "outrigger" for the built binary) and
// registers cleanup that kills it.
func start(t testing.TB, name string, argv []string, env ...string) *proc {
	t.Helper()
	if argv[0] == "outrigger" {
		argv = append([]string{bin}, argv[1:]...)
	}
	return proctest.Start(t, name, argv, env...)
}

// waitFor polls cond until it is true or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a free 127.0.0.1 address for a child process to bind.
func freeAddr(t testing.TB) string { return freeport.Addr(t) }

// insecureClient trusts any certificate: the proxy's is self-signed.
func insecureClient(dial func(ctx context.Context, network, addr string) (net.Conn, error), h2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2:   h2,
		MaxIdleConnsPerHost: 64,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	if dial != nil {
		tr.DialContext = dial
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// get fetches url and returns status and body ("" and -1 on transport errors).
func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return -1, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// firstLine returns the first non-empty line of s.
func firstLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			return l
		}
	}
	return ""
}
