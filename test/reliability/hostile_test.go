package reliability

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
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
	addr string
	mu   sync.Mutex
	reqs []seenRequest
}

// seenRequest is one request the upstream received.
type seenRequest struct {
	path     string
	bodyOK   bool  // the body was read to its end without error
	bodySize int64 // bytes of body read
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
		n, err := io.Copy(io.Discard, r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, seenRequest{path: r.URL.Path, bodyOK: err == nil, bodySize: n})
		u.mu.Unlock()
		_, _ = io.WriteString(w, "ok\n")
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return u
}

// saw returns the requests the upstream received for path.
func (u *recordingUpstream) saw(path string) []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []seenRequest
	for _, r := range u.reqs {
		if r.path == path {
			out = append(out, r)
		}
	}
	return out
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
// binary over raw TLS sockets and checks each is refused with the right
// status, that the connection is not read further, and that the upstream
// never receives a request the proxy refused: not its head when the head was
// refused, not a complete body when the body was refused (the proxy streams
// bodies, so a request whose body turns out bad mid-way has already reached
// the app; the app then sees the body cut short, never completed), and never
// the request hidden behind it ("/smuggled").
//
// Two probes are ambiguous rather than invalid under RFC 9112, and Go's HTTP
// server alone would normalize them instead of refusing: Content-Length
// together with Transfer-Encoding (§6.3) and an obs-fold line (§5.2). The
// proxy's smuggling guard (internal/proxy/h1guard) refuses both with 400, as
// hardened proxies do, and this test requires it. RELIABILITY_STRICT_SMUGGLING=0
// relaxes those two cases to the RFC's alternative (the upstream receives
// exactly what the proxy parsed) for comparing with a guard-less build.
func TestHostileInputToProxy(t *testing.T) {
	up := newRecordingUpstream(t)
	p := startProxy(t, freeAddr(t), "http://"+up.addr, insecureTLS(), "--max-body", "1K", "--max-header-bytes", "16K")
	strict := os.Getenv("RELIABILITY_STRICT_SMUGGLING") != "0"

	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	type level int
	const (
		head level = iota // refused on the request head: nothing reaches the app
		body              // refused mid-body: the head may reach the app, a complete body never
	)
	cases := []struct {
		name string
		raw  string
		want int
		// alt is another refusal status that is just as correct (0: none).
		alt   int
		level level
		// normalized, when set, is what RFC 9112 also allows instead of
		// `want`: the check that the upstream saw exactly the proxy's parse.
		normalized func(t *testing.T) bool
	}{
		{name: "Content-Length and Transfer-Encoding", want: 400, level: head,
			raw: "POST /cl-te HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
			normalized: func(t *testing.T) bool {
				// Chunked won: an empty body upstream, and /smuggled was a
				// second request the proxy itself parsed and forwarded.
				rs := up.saw("/cl-te")
				return len(rs) == 1 && rs[0].bodyOK && rs[0].bodySize == 0
			}},
		{name: "two different Content-Lengths", want: 400, level: head,
			raw: "POST /cl-cl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 44\r\n\r\nhello" + smuggled},
		{name: "obs-fold header line", want: 400, level: head,
			raw: "POST /fold HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n",
			normalized: func(t *testing.T) bool {
				rs := up.saw("/fold")
				return len(rs) == 1 && rs[0].bodyOK
			}},
		{name: "folded Content-Length", want: 400, level: head,
			raw: "POST /fold-cl HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n 4\r\n\r\n" + strings.Repeat("x", 44)},
		{name: "invalid chunk size", want: 400, level: body,
			raw: "POST /chunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" + smuggled},
		// RFC 9112 §6.1: 501 for a coding the server does not implement; the
		// proxy's smuggling guard refuses the ambiguous framing with 400 first.
		{name: "Transfer-Encoding not chunked", want: 501, alt: 400, level: head,
			raw: "POST /te-gzip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{name: "space before colon", want: 400, level: head,
			raw: "POST /space HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello" + smuggled},
		{name: "oversized headers", want: 431, level: head,
			raw: "GET /big-header HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n" + smuggled},
		{name: "oversized body", want: 413, level: body,
			raw: "POST /big-body HTTP/1.1\r\nHost: x\r\nContent-Length: 10240\r\n\r\n" + strings.Repeat("b", 10240) + smuggled},
		{name: "oversized chunked body", want: 413, level: body,
			raw: "POST /big-chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2800\r\n" + strings.Repeat("c", 10240) + "\r\n0\r\n\r\n" + smuggled},
	}
	var gaps []string
	notRefused := 0
	for _, tc := range cases {
		ok := t.Run(tc.name, func(t *testing.T) {
			path := strings.Fields(tc.raw)[1]
			smuggledBefore := len(up.saw("/smuggled"))
			resps := rawExchange(t, p.listen, tc.raw)
			if len(resps) == 0 {
				t.Fatalf("no response, want %d", tc.want)
			}
			got := resps[0].StatusCode
			if tc.alt != 0 && got == tc.alt {
				got = tc.want
			}
			if got != tc.want && tc.normalized != nil && !strict {
				if !tc.normalized(t) {
					t.Fatalf("status %d (not %d) and the upstream did not receive the request as the proxy parsed it: %+v", got, tc.want, up.saw(path))
				}
				t.Logf("KNOWN GAP: %s answered %d, not %d: Go's server normalizes it as RFC 9112 allows; no desync with the app (RELIABILITY_STRICT_SMUGGLING=0 allowed this)", tc.name, got, tc.want)
				gaps = append(gaps, tc.name)
				return
			}
			if got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
			if len(resps) > 1 {
				t.Errorf("%d responses on one connection: the proxy kept reading after a refused request", len(resps))
			}
			for _, r := range up.saw(path) {
				if tc.level == head || r.bodyOK {
					t.Errorf("upstream received %+v for a refused request", r)
				}
			}
			// rawExchange returned after the proxy closed (or 3 s of
			// silence), so anything forwarded has arrived by now.
			if n := len(up.saw("/smuggled")) - smuggledBefore; n != 0 {
				t.Errorf("upstream received %d request(s) smuggled behind the refused one", n)
			}
		})
		if !ok {
			notRefused++
		}
	}
	reportCounts(t, "hostile-requests", int64(len(cases)), int64(notRefused),
		fmt.Sprintf("probes over raw TLS; known gaps (normalized per RFC 9112, not refused): %q", gaps))

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
	if p.Exited() {
		t.Fatalf("proxy exited:\n%s", p.Output())
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
