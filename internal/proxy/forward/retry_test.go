package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// serveOn serves h on l until the test ends; stop closes it early.
func serveOn(t *testing.T, l net.Listener, h http.Handler) (stop func()) {
	t.Helper()
	s := &http.Server{Handler: h, ReadHeaderTimeout: testTimeout}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = s.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestUpstreamRestartDuringBurst stops the app, fires a burst (GET and POST
// with bodies, HTTP/1.1 and HTTP/2 clients) and starts the app again on the
// same port 300 ms later: every request must succeed, bodies intact.
func TestUpstreamRestartDuringBurst(t *testing.T) {
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l1.Addr().String()
	stop1 := serveOn(t, l1, http.HandlerFunc(echoHandler))
	e := newEnv(t, Config{Upstream: mustUpstream(t, "http://"+addr), RetryWindow: 5 * time.Second}, nil)
	clients := []*http.Client{e.client(t, false), e.client(t, true)}

	// Warm the upstream pool, then take the app down.
	for _, c := range clients {
		if code, _, _ := get(t, c, e.front.URL+"/warm"); code != http.StatusOK {
			t.Fatalf("warm-up status %d", code)
		}
	}
	stop1()
	// The app closed its keep-alive connections; a POST sent on one of them
	// in the instant before the Transport notices cannot be retried safely,
	// so (like any proxy) we let the pool drop them first.
	e.h.CloseIdle()

	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[i%2]
			want := fmt.Sprintf("body-%d-%s", i, strings.Repeat("x", i*512))
			var req *http.Request
			if i%3 == 0 {
				req, _ = http.NewRequest(http.MethodGet, e.front.URL+"/get", nil)
				want = ""
			} else {
				req, _ = http.NewRequest(http.MethodPost, e.front.URL+"/post", bytes.NewReader([]byte(want)))
			}
			resp, err := c.Do(req)
			if err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				errs <- fmt.Errorf("request %d: status %d %q", i, resp.StatusCode, b)
				return
			}
			got := decodeEcho(t, resp)
			if got.Body != want {
				errs <- fmt.Errorf("request %d: upstream got body of %d bytes, want %d", i, len(got.Body), len(want))
			}
		}()
	}
	// Restart once the burst is waiting on refused connections.
	waitFor(t, func() bool { return metricValue(t, e.reg, "outrigger_upstream_retries_total", nil) > 0 })
	time.Sleep(300 * time.Millisecond)
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("re-listen on %s: %v", addr, err)
	}
	serveOn(t, l2, http.HandlerFunc(echoHandler))
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		for _, l := range e.logs.lines(t) {
			if l["level"] != "DEBUG" {
				t.Logf("log: %v", l)
			}
		}
	}
	if n := metricValue(t, e.reg, "outrigger_upstream_errors_total", map[string]string{"kind": "refused"}); n != 0 {
		t.Errorf("upstream_errors_total{refused} = %v, want 0 (retries are not errors)", n)
	}
}

func TestRetryGivesUpAfterWindow(t *testing.T) {
	e := newEnv(t, Config{Upstream: mustUpstream(t, "http://"+freeAddr(t)), RetryWindow: 100 * time.Millisecond}, nil)
	req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/", strings.NewReader("payload"))
	resp, err := e.client(t, false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	if n := metricValue(t, e.reg, "outrigger_upstream_retries_total", nil); n < 1 {
		t.Errorf("retries_total = %v, want >= 1", n)
	}
}

func TestRetryStopsWhenClientLeaves(t *testing.T) {
	e := newEnv(t, Config{Upstream: mustUpstream(t, "http://"+freeAddr(t)), RetryWindow: time.Hour}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitFor(t, func() bool { return metricValue(t, e.reg, "outrigger_upstream_retries_total", nil) > 0 })
		cancel()
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.front.URL+"/", nil)
	if resp, err := e.client(t, true).Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("request succeeded")
	}
	waitFor(t, func() bool {
		return metricValue(t, e.reg, "outrigger_requests_total", map[string]string{"code": "499"}) == 1
	})
}

func shortTempDir(t *testing.T) string {
	t.Helper()
	// t.TempDir paths can exceed the 107-byte unix socket limit.
	d, err := os.MkdirTemp("", "fwd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func TestUnixSocketUpstream(t *testing.T) {
	sock := filepath.Join(shortTempDir(t), "app.sock")
	up := mustUpstream(t, "unix:"+sock)
	e := newEnv(t, Config{Upstream: up, RetryWindow: 5 * time.Second}, nil)

	// Socket file missing (app not started yet): retried, then served.
	started := make(chan struct{})
	go func() {
		waitFor(t, func() bool { return metricValue(t, e.reg, "outrigger_upstream_retries_total", nil) > 0 })
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Errorf("listen unix: %v", err)
			close(started)
			return
		}
		serveOn(t, l, http.HandlerFunc(echoHandler))
		close(started)
	}()
	req, _ := http.NewRequest(http.MethodPut, e.front.URL+"/u?q=1", strings.NewReader("over unix"))
	resp, err := e.client(t, false).Do(req)
	<-started
	if err != nil {
		t.Fatal(err)
	}
	got := decodeEcho(t, resp)
	if got.Body != "over unix" || got.Path != "/u" || got.Method != "PUT" {
		t.Errorf("upstream saw %+v", got)
	}
	if err := e.h.CheckUpstream(context.Background()); err != nil {
		t.Errorf("CheckUpstream: %v", err)
	}
}

func TestH2CUpstream(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	s := &http.Server{Handler: http.HandlerFunc(echoHandler), Protocols: &p}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close() })
	e := newEnv(t, Config{Upstream: mustUpstream(t, "h2c://"+l.Addr().String()), PreserveHost: true}, nil)
	for _, h2 := range []bool{false, true} {
		req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/h2c", strings.NewReader("multiplexed"))
		resp, err := e.client(t, h2).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got := decodeEcho(t, resp)
		if got.Proto != "HTTP/2.0" || got.Body != "multiplexed" {
			t.Errorf("upstream saw proto %q body %q", got.Proto, got.Body)
		}
	}
}

func TestCheckUpstream(t *testing.T) {
	s, up := startUpstream(t, http.HandlerFunc(echoHandler))
	h, err := New(Config{Upstream: up}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := h.CheckUpstream(ctx); err != nil {
		t.Errorf("CheckUpstream with the app up: %v", err)
	}
	s.Close()
	err = h.CheckUpstream(ctx)
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), up.Raw) {
		t.Errorf("CheckUpstream with the app down: %v", err)
	}
}

// TestRefusedIsClassifiedForEveryScheme: a dead upstream is "refused" (and
// thus retried) whichever transport path is used.
func TestRefusedIsClassifiedForEveryScheme(t *testing.T) {
	for _, tc := range []struct{ name, upstream string }{
		{"http", "http://" + freeAddr(t)},
		{"h2c", "h2c://" + freeAddr(t)},
		{"unix", "unix:" + filepath.Join(shortTempDir(t), "missing.sock")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{Upstream: mustUpstream(t, tc.upstream), RetryWindow: 30 * time.Millisecond}, nil)
			req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/", strings.NewReader("body"))
			resp, err := e.client(t, false).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("status %d", resp.StatusCode)
			}
			if n := metricValue(t, e.reg, "outrigger_upstream_errors_total", map[string]string{"kind": "refused"}); n != 1 {
				t.Errorf("errors{refused} = %v", n)
			}
			if n := metricValue(t, e.reg, "outrigger_upstream_retries_total", nil); n < 1 {
				t.Errorf("retries = %v, want >= 1", n)
			}
		})
	}
}
