//go:build linux

package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/testutil/poll"
)

// startSuccessor starts a second proxy with cfg (New + Run) and returns it
// with a stop function that returns Run's result.
func startSuccessor(t *testing.T, cfg Config, logs *syncBuffer) (*Proxy, func() error) {
	t.Helper()
	p, err := New(cfg, Deps{Logger: newBufLogger(logs), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("successor New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				t.Error("successor Run did not return")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return p, stop
}

// TestHandoverZeroLoss hammers the port with new TLS connections while a
// second proxy takes the listening socket over --handover-socket and the
// first one drains and exits: every request must succeed, the first proxy's
// Run must return nil by itself, and the socket file must pass to the
// successor and be removed when it stops.
func TestHandoverZeroLoss(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "handover.sock")
	var cfg Config
	a := newEnv(t, func(c *Config) { c.HandoverSocket = sock; cfg = *c })
	a.waitReady()
	poll.Until(t, 10*time.Second, "handover socket", func() bool { _, err := os.Stat(sock); return err == nil })
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("handover socket mode = %v (%v), want 0600", fi.Mode(), err)
	}
	url := "https://" + a.addr() + "/"

	// Load: new connection per request, so connections keep arriving in
	// the accept queue while the first proxy stops accepting.
	var sent, failed atomic.Int64
	var firstErr atomic.Pointer[string]
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{TLSClientConfig: a.clientTLS(), DisableKeepAlives: true,
				TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for i := 0; i < 20000; i++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				sent.Add(1)
				resp, err := c.Get(url)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					s := err.Error()
					firstErr.CompareAndSwap(nil, &s)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)

	var logs syncBuffer
	b, stopB := startSuccessor(t, cfg, &logs)
	if b.Addr().String() != a.addr() {
		t.Fatalf("successor bound %s, want the inherited %s", b.Addr(), a.addr())
	}
	if !strings.Contains(logs.String(), "took over the listening sockets") {
		t.Errorf("successor did not log the takeover:\n%s", logs.String())
	}
	select {
	case err := <-a.done:
		a.done <- err // for the cleanup's stop
		if err != nil {
			t.Errorf("first proxy's Run after handover = %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("first proxy did not drain and exit after the successor served")
	}
	time.Sleep(300 * time.Millisecond) // load runs against the successor alone
	close(stopLoad)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed across the handover, want 0 (first: %s)", failed.Load(), sent.Load(), *firstErr.Load())
	}
	if sent.Load() < 20 {
		t.Errorf("only %d requests sent: the load did not run", sent.Load())
	}
	t.Logf("%d requests across the handover, %d failed", sent.Load(), failed.Load())

	if _, err := os.Stat(sock); err != nil {
		t.Errorf("handover socket gone after the first proxy exited (the successor owns it): %v", err)
	}
	if err := stopB(); err != nil {
		t.Errorf("successor Run = %v", err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("handover socket still there after the last proxy stopped: %v", err)
	}
}

// TestHandoverDifferentListen: a successor configured for another address
// binds its own socket and leaves the running proxy serving.
func TestHandoverDifferentListen(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "handover.sock")
	var cfg Config
	a := newEnv(t, func(c *Config) { c.HandoverSocket = sock; cfg = *c })
	a.waitReady()
	poll.Until(t, 10*time.Second, "handover socket", func() bool { _, err := os.Stat(sock); return err == nil })
	cfg.Listen = "127.0.0.2:0"
	var logs syncBuffer
	b, _ := startSuccessor(t, cfg, &logs)
	if b.Addr().String() == a.addr() {
		t.Fatalf("successor took %s although its --listen differs", a.addr())
	}
	if !strings.Contains(logs.String(), "different --listen") {
		t.Errorf("successor did not explain why it bound its own socket:\n%s", logs.String())
	}
	assertStillServing(t, a, "after a declined handover")
}

// assertStillServing fails unless the proxy of e keeps running and serving.
func assertStillServing(t *testing.T, e *env, when string) {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-e.done:
		t.Fatalf("proxy stopped (%v) %s", err, when)
	default:
	}
	resp, _ := get(t, e.client(e.clientTLS(), false), "https://"+e.addr()+"/", nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("proxy %s: GET = %d", when, resp.StatusCode)
	}
}

// TestHandoverHostilePeers: garbage, a half-open connection and a peer that
// takes the sockets and disappears before serving leave the running proxy
// serving.
func TestHandoverHostilePeers(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "handover.sock")
	a := newEnv(t, func(c *Config) { c.HandoverSocket = sock })
	a.waitReady()
	poll.Until(t, 10*time.Second, "handover socket", func() bool { _, err := os.Stat(sock); return err == nil })

	for _, payload := range []string{"", "garbage\n", `{"op":"serving"}` + "\n", strings.Repeat("x", 100000), "\x00\xff\n"} {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		_, _ = c.Write([]byte(payload))
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.Copy(io.Discard, c)
		_ = c.Close()
	}
	// Takes the sockets, then hangs up before serving.
	in, err := takeListeners(sock, a.p.cfg.Listen, "")
	if err != nil || in.listen == nil {
		t.Fatalf("takeListeners: %v %+v", err, in)
	}
	_ = in.listen.Close()
	in.release()

	assertStillServing(t, a, "after hostile handover peers")
}

// TestHandoverPathNotASocket: a regular file at the path is neither removed
// nor a reason to stop serving.
func TestHandoverPathNotASocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "handover.sock")
	if err := os.WriteFile(sock, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := newEnv(t, func(c *Config) { c.HandoverSocket = sock })
	a.waitReady()
	assertStillServing(t, a, "with a regular file at --handover-socket")
	if b, err := os.ReadFile(sock); err != nil || string(b) != "keep me" {
		t.Errorf("regular file at --handover-socket was touched: %q %v", b, err)
	}
}
