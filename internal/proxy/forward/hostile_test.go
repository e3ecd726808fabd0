package forward

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawUpstream accepts connections, reads one request head and writes the
// scripted bytes, then closes. It stands in for a broken or hostile app.
func rawUpstream(t *testing.T, response string) Upstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				_, _ = io.WriteString(c, response)
			}()
		}
	}()
	return mustUpstream(t, "http://"+l.Addr().String())
}

func TestHostileUpstreamResponses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		response string
		status   int    // 0: the client must see a transport error (aborted body)
		body     string // checked when status != 0
	}{
		{"garbage status line", "HTTP/1.1 abc\r\n\r\n", http.StatusBadGateway, "502 bad gateway: upstream unavailable\n"},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", http.StatusBadGateway, ""},
		{"status 000", "HTTP/1.1 000 Zero\r\nContent-Length: 0\r\n\r\n", http.StatusBadGateway, ""},
		{"status 099", "HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n", http.StatusBadGateway, ""},
		{"status 999 passes", "HTTP/1.1 999 High\r\nContent-Length: 0\r\n\r\n", 999, ""},
		{"header too large", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n", http.StatusBadGateway, ""},
		{"closed without response", "", http.StatusBadGateway, ""},
		{"101 without upgrade", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", http.StatusBadGateway, ""},
		{"body shorter than Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b", 0, ""},
		{"malformed chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 0, ""},
		{"close-delimited HTTP/1.0 body", "HTTP/1.0 200 OK\r\n\r\nuntil close", http.StatusOK, "until close"},
		{"unsolicited 100 then 200", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", http.StatusOK, "ok"},
		{"early hints then 200", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", http.StatusOK, "ok"},
		{"trailing garbage after response", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE", http.StatusOK, "ok"},
		{"hop-by-hop response headers", "HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nContent-Length: 2\r\n\r\nok", http.StatusOK, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{Upstream: rawUpstream(t, tc.response)}, nil)
			for _, h2 := range []bool{false, true} {
				resp, err := e.client(t, h2).Get(e.front.URL + "/")
				if err != nil {
					if tc.status == 0 {
						continue
					}
					t.Fatalf("h2=%v: %v", h2, err)
				}
				body, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if tc.status == 0 {
					if rerr == nil {
						t.Errorf("h2=%v: truncated body %q read without error", h2, body)
					}
					continue
				}
				if resp.StatusCode != tc.status || (tc.body != "" && string(body) != tc.body) {
					t.Errorf("h2=%v: got %d %q, want %d %q", h2, resp.StatusCode, body, tc.status, tc.body)
				}
				if resp.Header.Get("X-Hop") != "" {
					t.Errorf("h2=%v: hop-by-hop header passed", h2)
				}
			}
		})
	}
}

// oneShotUpstream answers the first request on each connection and closes
// the connection on reading the second, without answering: a keep-alive
// connection the app dropped just as the proxy reused it.
func oneShotUpstream(t *testing.T) Upstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = l.Close()
		wg.Wait()
	})
	readHead := func(br *bufio.Reader) (contentLength int, ok bool) {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return 0, false
			}
			if line == "\r\n" {
				return contentLength, true
			}
			if k, v, found := strings.Cut(line, ":"); found && strings.EqualFold(k, "Content-Length") {
				n := 0
				for _, c := range strings.TrimSpace(v) {
					n = n*10 + int(c-'0')
				}
				contentLength = n
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				n, ok := readHead(br)
				if !ok {
					return
				}
				_, _ = io.CopyN(io.Discard, br, int64(n))
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				readHead(br) // the next request: drop it
			}()
		}
	}()
	return mustUpstream(t, "http://"+l.Addr().String())
}

func TestStaleKeepAliveConnection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		body   string
		want   int
	}{
		{"GET is retried on a new connection", http.MethodGet, "", http.StatusOK},
		{"HEAD is retried on a new connection", http.MethodHead, "", http.StatusOK},
		{"POST with body is not repeated", http.MethodPost, "data", http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{Upstream: oneShotUpstream(t)}, nil)
			c := e.client(t, false)
			if code, _, _ := get(t, c, e.front.URL+"/warm"); code != http.StatusOK {
				t.Fatalf("warm-up: %d", code)
			}
			req, _ := http.NewRequest(tc.method, e.front.URL+"/again", strings.NewReader(tc.body))
			if tc.body == "" {
				req.Body = nil
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
				for _, l := range e.logs.lines(t) {
					t.Logf("log: %v", l)
				}
			}
		})
	}
}

// FuzzDirectResponse feeds arbitrary upstream bytes to the direct path's
// response handling over an in-memory connection: it may fail or abort the
// response (http.ErrAbortHandler), but never panic otherwise or hang.
func FuzzDirectResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: <x>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: X-A\r\nX-A: 1\r\n\r\nbody",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
		"garbage",
	} {
		f.Add(s)
	}
	up := Upstream{Scheme: "http", Addr: "127.0.0.1:1", Raw: "http://127.0.0.1:1"}
	h, err := New(Config{Upstream: up, DirectHTTP1: true}, Deps{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, response string) {
		client, server := net.Pipe()
		defer client.Close()
		go func() {
			defer server.Close()
			br := bufio.NewReader(server)
			for {
				line, err := br.ReadString('\n')
				if err != nil || line == "\r\n" {
					break
				}
			}
			_, _ = io.WriteString(server, response)
		}()
		uc := &upConn{nc: client, lim: headerLimit{r: client, n: 1 << 62}}
		uc.br = bufio.NewReaderSize(&uc.lim, 4<<10)
		uc.bw = bufio.NewWriterSize(upstreamWriter{client}, 4<<10)
		req := httptest.NewRequest(http.MethodGet, "http://app.example/x", nil)
		rec := httptest.NewRecorder()
		rw := &respWriter{w: rec}
		f := h.forwardedValues(req, h.inspectClient(req))
		resp, err := h.exchange(rw, req, uc, false, &f, time.Now())
		if err != nil {
			return
		}
		if resp.StatusCode < 200 || resp.StatusCode > 999 {
			t.Fatalf("final status %d", resp.StatusCode)
		}
		func() {
			defer func() {
				if p := recover(); p != nil && p != http.ErrAbortHandler {
					panic(p)
				}
			}()
			h.copyDirectResponse(rw, req, uc, resp)
		}()
		if rw.status != resp.StatusCode {
			t.Fatalf("client got %d, upstream sent %d", rw.status, resp.StatusCode)
		}
		for _, k := range []string{"Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade"} {
			if _, ok := rec.Header()[k]; ok {
				t.Fatalf("hop-by-hop %s forwarded", k)
			}
		}
	})
}
