package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/testutil/poll"
	"github.com/outrigger-sidecar/outrigger/internal/testutil/tcpserve"
)

// headEchoApp is an app that answers every request with the request head
// it received as the body, so a client sees exactly what the proxy sent
// upstream. /sse answers chunked without a Content-Length, /1xx sends an
// interim 103 first, /close closes after answering.
func headEchoApp(t *testing.T) string {
	t.Helper()
	addr := tcpserve.Start(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			var head strings.Builder
			cl := 0
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				head.WriteString(line)
				if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
					cl, _ = strconv.Atoi(strings.TrimSpace(v))
				}
				if line == "\r\n" {
					break
				}
			}
			body := make([]byte, cl)
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			h := head.String()
			path := strings.Fields(h)[1]
			var out string
			switch {
			case strings.HasPrefix(path, "/sse"):
				out = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
					fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(h), h)
			case strings.HasPrefix(path, "/1xx"):
				out = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" +
					fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(h), h)
			case strings.HasPrefix(path, "/notype"):
				out = fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(h), h)
			case strings.HasPrefix(path, "/404"):
				out = fmt.Sprintf("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nX-App: 1\r\nContent-Length: %d\r\n\r\n%s", len(h), h)
			default:
				out = fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: %d\r\n\r\n%s%s", len(h), h, body)
				out = strings.Replace(out, fmt.Sprintf("Content-Length: %d", len(h)), fmt.Sprintf("Content-Length: %d", len(h)+len(body)), 1)
			}
			if _, err := io.WriteString(c, out); err != nil {
				return
			}
			if strings.HasPrefix(path, "/close") {
				return
			}
		}
	})
	return "http://" + addr
}

var fastDateRE = regexp.MustCompile(`Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT`)

// tlsExchange writes raw to a new HTTP/1.1 TLS connection and returns all
// bytes until the proxy closes it, with the proxy's Date values blanked.
func tlsExchange(t *testing.T, e *env, raw string) string {
	t.Helper()
	cfg := e.clientTLS()
	cfg.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", e.addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	s := string(got)
	s = strings.ReplaceAll(s, "Date: Mon, 02 Jan 2006 15:04:05 GMT", "Date: <app>")
	return fastDateRE.ReplaceAllString(s, "Date: <now>")
}

// TestHTTP1FastDifferential sends the same bytes over TLS to a proxy with
// and one without --http1-fast, in front of an app that echoes the request
// head it got: the app must receive the same request and the client the
// same response, for plain requests (served by h1fast) and for the others
// (handed over to net/http).
func TestHTTP1FastDifferential(t *testing.T) {
	app := headEchoApp(t)
	mk := func(fast bool) *env {
		e := newEnv(t, func(c *Config) {
			c.Upstream = app
			c.HTTP1Fast = fast
			c.HSTS = true
			c.PreserveHost = true
		})
		e.waitReady()
		return e
	}
	plain, fast := mk(false), mk(true)
	const closing = "GET /close HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n"
	get := func(path string, extra ...string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: app.example\r\n" + strings.Join(extra, "") + "\r\n"
	}
	for _, tc := range []struct{ name, raw string }{
		{"plain", get("/a?b=c") + closing},
		{"head", "HEAD /a HTTP/1.1\r\nHost: app.example\r\n\r\n" + closing},
		{"forwarding headers", get("/x", "X-Forwarded-For: 203.0.113.9\r\n", "Forwarded: for=1.2.3.4\r\n", "X-Real-IP: 6.6.6.6\r\n",
			"X-Forwarded-Proto: http\r\n", "True-Client-IP: 1.1.1.1\r\n", "Proxy: evil\r\n", "Accept: */*\r\n", "Connection: keep-alive\r\n") + closing},
		{"pipelined", get("/1") + get("/2") + get("/404") + get("/notype") + closing},
		{"chunked app answer", get("/sse") + closing},
		{"interim answer", get("/1xx") + closing},
		{"semicolon query (ReverseProxy)", get("/q?a=1;b=2") + closing},
		{"post then get", "POST /p HTTP/1.1\r\nHost: app.example\r\nContent-Length: 3\r\n\r\nabc" + get("/after") + closing},
		{"get then post", get("/before") + "POST /p HTTP/1.1\r\nHost: app.example\r\nContent-Length: 3\r\n\r\nabc" + closing},
		{"smuggling refused", get("/ok") + "POST /p HTTP/1.1\r\nHost: app.example\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"guard refusal first", "GET /x HTTP/1.1\r\nHost: app.example\r\nX: a\r\n b\r\n\r\n"},
		{"app closes", get("/close-now") + get("/after") + closing},
		{"missing host", "GET /x HTTP/1.1\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tlsExchange(t, plain, tc.raw)
			got := tlsExchange(t, fast, tc.raw)
			if testing.Verbose() {
				t.Logf("%q", got)
			}
			if got != want {
				t.Errorf("responses differ\nnet/http:\n%q\nh1fast:\n%q", want, got)
			}
		})
	}
	if fast.p.fast.Served() == 0 {
		t.Fatal("h1fast served no request: the test did not exercise it")
	}
	if err := fast.stop(); err != nil {
		t.Fatal(err)
	}
	if n := fast.p.open.Load(); n != 0 {
		t.Errorf("open connections after shutdown: %d", n)
	}
}

// TestParkedConnectionsMetric: with --http1-fast an idle keep-alive
// connection parks, outrigger_parked_connections shows it, its next request
// is proxied as before, and the gauge drops when the client leaves.
func TestParkedConnectionsMetric(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("connections park on Linux only")
	}
	e := newEnv(t, func(c *Config) { c.HTTP1Fast = true })
	e.waitReady()
	c, err := tls.Dial("tcp", e.addr(), e.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	parked := func() float64 { return metricValue(t, e.reg, "outrigger_parked_connections", nil) }
	for _, path := range []string{"/one", "/two"} {
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), path) {
			t.Fatalf("GET %s: %d %q", path, resp.StatusCode, body)
		}
		poll.Until(t, 10*time.Second, "the connection parked", func() bool { return parked() == 1 })
	}
	if open := metricValue(t, e.reg, "outrigger_open_connections", nil); open != 1 {
		t.Errorf("outrigger_open_connections = %v with one parked connection, want 1", open)
	}
	_ = c.Close()
	poll.Until(t, 10*time.Second, "no parked connection", func() bool { return parked() == 0 })
}
