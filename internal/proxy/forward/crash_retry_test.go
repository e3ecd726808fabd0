package forward

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// crashOnceUpstream reads each request and, for the first `crashes`
// requests, writes partial (possibly "") and closes the connection with a
// reset instead of answering — what a kill -9 of the app looks like from the
// proxy. Later requests get "ok".
func crashOnceUpstream(t *testing.T, crashes int32, partial string) (addr string, seen *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	seen = new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if seen.Add(1) <= crashes {
						if partial != "" {
							_, _ = io.WriteString(c, partial)
							time.Sleep(20 * time.Millisecond) // let it arrive before the reset
						}
						_ = c.(*net.TCPConn).SetLinger(0) // RST, like a killed process
						return
					}
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
				}
			}(c)
		}
	}()
	return l.Addr().String(), seen
}

// TestRetryWhenTheAppDiesWithTheRequestInside: an idempotent request without
// a body that was inside the app when it died (reset, no response byte) is
// repeated once through the retry window; a request with a body is not.
func TestRetryWhenTheAppDiesWithTheRequestInside(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		body      string
		window    time.Duration
		crashes   int32
		partial   string // response bytes the app wrote before it died
		want      int
		wantSeen  int32
		wantRetry float64
	}{
		{name: "GET is repeated", method: http.MethodGet, window: 2 * time.Second, crashes: 1, want: 200, wantSeen: 2, wantRetry: 1},
		{name: "HEAD is repeated", method: http.MethodHead, window: 2 * time.Second, crashes: 1, want: 200, wantSeen: 2, wantRetry: 1},
		{name: "POST with a body is not", method: http.MethodPost, body: "payload", window: 2 * time.Second, crashes: 1, want: 502, wantSeen: 1},
		{name: "no retry window, no repeat", method: http.MethodGet, window: 0, crashes: 1, want: 502, wantSeen: 1},
		{name: "a request that kills every instance is repeated only once", method: http.MethodGet, window: 2 * time.Second, crashes: 100, want: 502, wantSeen: 2, wantRetry: 1},
		{name: "GET cut inside the response header is repeated", method: http.MethodGet, window: 2 * time.Second, crashes: 1, partial: "HTTP/1.1 200 OK\r\nContent-Le", want: 200, wantSeen: 2, wantRetry: 1},
		{name: "GET cut after the status line is repeated", method: http.MethodGet, window: 2 * time.Second, crashes: 1, partial: "HTTP/1.1 500 Internal Server Error\r\n", want: 200, wantSeen: 2, wantRetry: 1},
		{name: "POST cut inside the response header is not", method: http.MethodPost, body: "payload", window: 2 * time.Second, crashes: 1, partial: "HTTP/1.1 200 OK\r\n", want: 502, wantSeen: 1},
		// The response was committed: the client's connection is cut (a
		// transport error, not a truncated 200), and the app is not asked again.
		{name: "GET cut inside the body is not", method: http.MethodGet, window: 2 * time.Second, crashes: 1, partial: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal", want: 0, wantSeen: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, seen := crashOnceUpstream(t, tt.crashes, tt.partial)
			e := newEnv(t, Config{Upstream: mustUpstream(t, "http://"+addr), RetryWindow: tt.window, DirectHTTP1: true}, nil)
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, _ := http.NewRequest(tt.method, e.front.URL+"/x", body)
			resp, err := e.client(t, false).Do(req)
			switch {
			case err != nil && tt.want != 0:
				t.Fatal(err)
			case err == nil && tt.want == 0:
				resp.Body.Close()
				t.Errorf("status %d, want a cut connection", resp.StatusCode)
			case err == nil:
				resp.Body.Close()
				if resp.StatusCode != tt.want {
					t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
				}
			}
			if n := seen.Load(); n != tt.wantSeen {
				t.Errorf("the app saw the request %d times, want %d", n, tt.wantSeen)
			}
			if n := metricValue(t, e.reg, "outrigger_upstream_retries_total", nil); n != tt.wantRetry {
				t.Errorf("retries = %v, want %v", n, tt.wantRetry)
			}
		})
	}
}
