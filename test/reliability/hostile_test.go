package reliability

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/loadgen"
)

// recordingUpstream is an app that remembers every request path it served,
// to prove what the proxy did (not) forward.
type recordingUpstream struct {
	addr  string
	mu    sync.Mutex
	paths []string
}

func newRecordingUpstream(t testing.TB) *recordingUpstream {
	t.Helper()
	u := &recordingUpstream{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.paths = append(u.paths, r.URL.Path)
		u.mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok\n")
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *recordingUpstream) saw(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, p := range u.paths {
		if p == path {
			n++
		}
	}
	return n
}

// rawExchange sends raw bytes over a fresh TLS (HTTP/1.1) connection and
// returns every response the proxy sends before closing (or 3 s of silence).
func rawExchange(t testing.TB, addr string, raw string) []*http.Response {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	go func() { _, _ = io.WriteString(c, raw) }() // the proxy may stop reading early
	br := bufio.NewReader(c)
	var out []*http.Response
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out = append(out, resp)
	}
}

// TestHostileInputToProxy throws malformed and abusive requests at the proxy
// binary and checks each is refused with the right status while the
// upstream never sees a request the client did not unambiguously send.
func TestHostileInputToProxy(t *testing.T) {
	up := newRecordingUpstream(t)
	p := startProxy(t, freeAddr(t), "http://"+up.addr, insecureTLS(), "--max-body", "1K", "--max-header-bytes", "16K")

	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	cases := []struct {
		name string
		raw  string
		want int
	}{
		{"Content-Length and Transfer-Encoding",
			"POST /cl-te HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"two different Content-Lengths",
			"POST /cl-cl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 44\r\n\r\nhello" + smuggled, 400},
		{"obs-fold header line",
			"GET /fold HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n" + smuggled, 400},
		{"invalid chunk size",
			"POST /chunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" + smuggled, 400},
		{"Transfer-Encoding not chunked",
			"POST /te-gzip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggled, 501},
		{"space before colon",
			"GET /space HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello" + smuggled, 400},
		{"oversized headers",
			"GET /big-header HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", 431},
		{"oversized body",
			"POST /big-body HTTP/1.1\r\nHost: x\r\nContent-Length: 10240\r\n\r\n" + strings.Repeat("b", 10240), 413},
		{"oversized chunked body",
			"POST /big-chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2800\r\n" + strings.Repeat("c", 10240) + "\r\n0\r\n\r\n", 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resps := rawExchange(t, p.listen, tc.raw)
			if len(resps) == 0 {
				t.Fatalf("no response, want %d", tc.want)
			}
			if resps[0].StatusCode != tc.want {
				t.Errorf("status %d, want %d", resps[0].StatusCode, tc.want)
			}
			if len(resps) > 1 {
				t.Errorf("%d responses on one connection: the proxy kept reading after a rejected request", len(resps))
			}
		})
	}
	// The refused requests must not have reached the app at all, nor
	// anything hidden in their bodies.
	for _, path := range []string{"/smuggled", "/cl-te", "/cl-cl", "/fold", "/chunk", "/te-gzip", "/space", "/big-header"} {
		if n := up.saw(path); n != 0 {
			t.Errorf("upstream saw %d request(s) for %s", n, path)
		}
	}

	t.Run("garbage instead of a ClientHello", func(t *testing.T) {
		for _, junk := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\x16\x03\x01\xff\xff" + strings.Repeat("\x00", 64), strings.Repeat("\xff", 4096)} {
			c, err := net.DialTimeout("tcp", p.listen, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(15 * time.Second))
			_, _ = io.WriteString(c, junk)
			_, err = io.Copy(io.Discard, c) // returns when the proxy closes
			c.Close()
			if err != nil && !strings.Contains(err.Error(), "reset") {
				t.Errorf("after %q…: %v, want the proxy to close the connection", junk[:min(len(junk), 8)], err)
			}
		}
		if code, _ := httpGet(httpsClient(insecureTLS()), p.url+"/after-garbage"); code != http.StatusOK {
			t.Fatalf("after garbage handshakes GET = %d, want 200", code)
		}
	})
	if p.exited() {
		t.Fatalf("proxy exited:\n%s", p.output())
	}
}

// TestSlowloris holds 500 TLS connections open, each sending one header byte
// a second, while a normal client keeps loading the proxy: the normal client
// must get only 200s; its p99 is reported.
//
// RELIABILITY_SLOWLORIS_DURATION sets the length (default 8s).
func TestSlowloris(t *testing.T) {
	dur := envDuration(t, "RELIABILITY_SLOWLORIS_DURATION", 8*time.Second)
	dir := t.TempDir()
	appAddr := freeAddr(t)
	startApp(t, dir, appAddr, "hello slowloris")
	p := startProxy(t, freeAddr(t), "http://"+appAddr, insecureTLS(), "--read-header-timeout", "5s")

	const conns = 500
	var opened, cut atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	header := "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + strings.Repeat("a", 1000)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Reconnect when the proxy cuts the connection, so the pressure
			// stays at conns connections for the whole run.
			for first := true; ; first = false {
				select {
				case <-stop:
					return
				default:
				}
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", p.listen,
					&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				if first {
					opened.Add(1)
				}
				if !dribble(c, header, stop) {
					cut.Add(1)
				}
				c.Close()
			}
		}()
	}
	// Let the slow connections pile up before measuring the normal client.
	waitFor(t, 30*time.Second, "slowloris connections to open", func() bool { return opened.Load() >= conns*9/10 })
	r := runLoad(t, t.Context(), loadgen.Options{URL: p.url + "/", Concurrency: 2, Duration: dur, TLSConfig: insecureTLS()})
	rn := runLoad(t, t.Context(), loadgen.Options{URL: p.url + "/", Concurrency: 1, Duration: 2 * time.Second,
		TLSConfig: insecureTLS(), NewConnPerRequest: true})
	close(stop)
	wg.Wait()
	note := fmt.Sprintf("slow_conns=%d opened=%d cut_by_proxy=%d", conns, opened.Load(), cut.Load())
	report(t, "slowloris/normal-client-keep-alive", r, note)
	report(t, "slowloris/normal-client-new-conn", rn, note)
	if r.Failed != 0 || rn.Failed != 0 || r.OK == 0 || rn.OK == 0 {
		t.Errorf("normal clients under slowloris: %d and %d failed (samples %q %q), want 0", r.Failed, rn.Failed, r.ErrorSamples, rn.ErrorSamples)
	}
}

// dribble writes header one byte a second until stop (true) or until the
// proxy closes the connection (false).
func dribble(c net.Conn, header string, stop <-chan struct{}) bool {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; ; i++ {
		if _, err := io.WriteString(c, header[i%len(header):i%len(header)+1]); err != nil {
			return false
		}
		select {
		case <-stop:
			return true
		case <-tick.C:
		}
	}
}
