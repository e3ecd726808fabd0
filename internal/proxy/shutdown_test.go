package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/testutil/poll"
)

type slowResult struct {
	status int
	body   string
	err    error
}

// startSlow issues GET /slow on its own connection and waits until the
// upstream has it.
func startSlow(t *testing.T, e *env, h2 bool) <-chan slowResult {
	t.Helper()
	out := make(chan slowResult, 1)
	c := e.client(e.clientTLS(), h2)
	go func() {
		resp, err := c.Get("https://" + e.addr() + "/slow")
		if err != nil {
			out <- slowResult{err: err}
			return
		}
		if want := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != want {
			err = fmt.Errorf("protocol %s, want HTTP/%d", resp.Proto, want)
		}
		b, rerr := io.ReadAll(resp.Body)
		err = errors.Join(err, rerr)
		resp.Body.Close()
		out <- slowResult{status: resp.StatusCode, body: string(b), err: err}
	}()
	select {
	case <-e.up.slowStarted:
	case <-time.After(10 * time.Second):
		t.Fatal("slow request never reached the upstream")
	}
	return out
}

func TestGracefulShutdown(t *testing.T) {
	for _, tt := range []struct {
		name string
		h2   bool
	}{{"HTTP/1.1", false}, {"HTTP/2", true}} {
		t.Run(tt.name, func(t *testing.T) { testGracefulShutdown(t, tt.h2) })
	}
}

func testGracefulShutdown(t *testing.T, h2 bool) {
	const delay = 300 * time.Millisecond
	e := newEnv(t, func(c *Config) { c.ShutdownDelay = delay })
	e.waitReady()
	slow := startSlow(t, e, h2)

	stopped := make(chan error, 1)
	go func() { stopped <- e.stop() }()
	poll.Until(t, 10*time.Second, "not ready right after cancel", func() bool { return e.p.Ready() != nil })
	if err := e.p.Ready(); !strings.Contains(err.Error(), "draining") {
		t.Fatalf("Ready = %v, want draining", err)
	}

	// During --shutdown-delay new connections are still served.
	if _, _, err := handshake(e.addr(), e.clientTLS()); err != nil {
		t.Fatalf("handshake during the shutdown delay: %v", err)
	}

	// After the delay the listener is closed.
	poll.Until(t, 10*time.Second, "new connections refused", func() bool {
		c, err := net.DialTimeout("tcp", e.addr(), time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	select {
	case r := <-slow:
		t.Fatalf("slow request ended before release: %+v", r)
	default:
	}

	e.up.releaseSlow()
	select {
	case r := <-slow:
		if r.err != nil || r.status != http.StatusOK {
			t.Fatalf("in-flight request during drain: %+v", r)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("in-flight request never completed")
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run after a clean drain = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestDrainTimeoutCutsConnections(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DrainTimeout = 200 * time.Millisecond })
	slow := startSlow(t, e, false)
	err := e.stop()
	if err == nil || !strings.Contains(err.Error(), "closed 1 connections") {
		t.Fatalf("Run = %v, want an error counting the cut connection", err)
	}
	r := <-slow
	if r.err == nil && r.status == http.StatusOK {
		t.Fatalf("cut request reported success: %+v", r)
	}
	poll.Until(t, 10*time.Second, "open connections back to 0", func() bool {
		return metricValue(t, e.reg, "outrigger_open_connections", nil) == 0
	})
}

func TestShutdownClosesRedirectListener(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RedirectHTTP = "127.0.0.1:0" })
	redir := e.p.RedirectAddr().String()
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{e.addr(), redir} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still accepts after shutdown", addr)
		}
	}
	if _, _, err := handshake(e.addr(), &tls.Config{InsecureSkipVerify: true}); err == nil {
		t.Fatal("handshake after shutdown")
	}
}

func TestRunTwice(t *testing.T) {
	e := newEnv(t, nil)
	e.waitReady() // the first Run is going
	if err := e.p.Run(t.Context()); err == nil {
		t.Fatal("second Run accepted")
	}
}

// openUpgraded opens an upgraded "echo" connection through the proxy and
// checks that it echoes.
func openUpgraded(t *testing.T, e *env) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	tc := e.clientTLS()
	tc.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", e.addr(), tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(c, "GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade status %d", resp.StatusCode)
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	line, err := br.ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echo = %q, %v", line, err)
	}
	return c, br
}

func TestDrainUpgradedConnections(t *testing.T) {
	tests := []struct {
		name       string
		clientQuit bool // the client closes during the drain
		wantErr    string
	}{
		{name: "client closes during drain", clientQuit: true},
		{name: "cut at drain timeout", wantErr: "upgraded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.DrainTimeout = 300 * time.Millisecond
				if tt.clientQuit {
					c.DrainTimeout = 10 * time.Second
				}
			})
			c, br := openUpgraded(t, e)
			stopped := make(chan error, 1)
			go func() { stopped <- e.stop() }()
			poll.Until(t, 10*time.Second, "draining", func() bool { return e.p.Ready() != nil })
			if tt.clientQuit {
				// Still usable while draining, then closed by the client.
				if _, err := io.WriteString(c, "again\n"); err != nil {
					t.Fatal(err)
				}
				if line, err := br.ReadString('\n'); err != nil || line != "again\n" {
					t.Fatalf("echo while draining = %q, %v", line, err)
				}
				c.Close()
			}
			var err error
			select {
			case err = <-stopped:
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return")
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Run = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run = %v, want containing %q", err, tt.wantErr)
			}
			if _, rerr := br.ReadString('\n'); rerr == nil {
				t.Fatal("cut upgraded connection still open")
			}
		})
	}
}
