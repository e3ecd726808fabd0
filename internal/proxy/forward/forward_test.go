package forward

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// echo is what the test app reports about the request it received.
type echo struct {
	Proto  string
	Method string
	Path   string
	Query  string
	Host   string
	Header http.Header
	Body   string
}

func echoHandler(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(echo{
		Proto: r.Proto, Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		Host: r.Host, Header: r.Header, Body: string(b),
	})
}

func decodeEcho(t *testing.T, resp *http.Response) echo {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d, body %q", resp.StatusCode, b)
	}
	var e echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("decode echo: %v", err)
	}
	return e
}

func TestProxyThroughTLSFront(t *testing.T) {
	_, up := startUpstream(t, http.HandlerFunc(echoHandler))
	e := newEnv(t, Config{Upstream: up, PreserveHost: true, HSTS: "max-age=63072000"}, nil)
	for _, tc := range []struct {
		name      string
		h2        bool
		wantProto string
	}{
		{"HTTP/1.1 client", false, "HTTP/1.1"},
		{"HTTP/2 client", true, "HTTP/2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.client(t, tc.h2)
			req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/a%2Fb/c?x=1&y=%20", strings.NewReader("hello"))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Proto != tc.wantProto {
				t.Errorf("client proto %q, want %q", resp.Proto, tc.wantProto)
			}
			if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=63072000" {
				t.Errorf("HSTS %q", got)
			}
			got := decodeEcho(t, resp)
			if got.Proto != "HTTP/1.1" || got.Method != "POST" || got.Path != "/a%2Fb/c" || got.Query != "x=1&y=%20" || got.Body != "hello" {
				t.Errorf("upstream saw %+v", got)
			}
			if got.Host != e.front.Listener.Addr().String() {
				t.Errorf("Host %q not preserved (front %s)", got.Host, e.front.Listener.Addr())
			}
			if got.Header.Get("X-Forwarded-Proto") != "https" {
				t.Errorf("X-Forwarded-Proto %q", got.Header.Get("X-Forwarded-Proto"))
			}
			// The client sent no Accept-Encoding: the proxy must not add one.
			if ae, ok := got.Header["Accept-Encoding"]; ok {
				t.Errorf("proxy negotiated compression: Accept-Encoding %q", ae)
			}
		})
	}
	if n := metricValue(t, e.reg, "outrigger_requests_total", map[string]string{"code": "200", "method": "POST"}); n != 2 {
		t.Errorf("requests_total{200,POST} = %v, want 2", n)
	}
}

func TestHostHeader(t *testing.T) {
	_, up := startUpstream(t, http.HandlerFunc(echoHandler))
	for _, tc := range []struct {
		name     string
		preserve bool
		want     func(e *env) string
	}{
		{"preserved", true, func(e *env) string { return "app.example:443" }},
		{"replaced by upstream address", false, func(*env) string { return up.Addr }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{Upstream: up, PreserveHost: tc.preserve}, nil)
			req, _ := http.NewRequest(http.MethodGet, e.front.URL+"/", nil)
			req.Host = "app.example:443"
			resp, err := e.client(t, false).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := decodeEcho(t, resp)
			if want := tc.want(e); got.Host != want {
				t.Errorf("Host %q, want %q", got.Host, want)
			}
			if xfh := got.Header.Get("X-Forwarded-Host"); xfh != "app.example:443" {
				t.Errorf("X-Forwarded-Host %q", xfh)
			}
		})
	}
}

func TestHopByHopHeadersStripped(t *testing.T) {
	_, up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Resp-End", "1")
		echoHandler(w, r)
	}))
	e := newEnv(t, Config{Upstream: up}, nil)
	req, _ := http.NewRequest(http.MethodGet, e.front.URL+"/", nil)
	req.Header.Set("Connection", "keep-alive, X-Custom-Hop")
	req.Header.Set("X-Custom-Hop", "secret")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("Te", "gzip")
	req.Header.Set("Proxy", "http://evil.example:3128") // httpoxy
	req.Header.Set("X-End-To-End", "kept")
	resp, err := e.client(t, false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"X-Resp-Hop", "Keep-Alive"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("response hop-by-hop header %s = %q reached the client", h, v)
		}
	}
	if resp.Header.Get("X-Resp-End") != "1" {
		t.Error("end-to-end response header lost")
	}
	got := decodeEcho(t, resp)
	for _, h := range []string{"Connection", "X-Custom-Hop", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Proxy"} {
		if v, ok := got.Header[h]; ok {
			t.Errorf("hop-by-hop header %s = %q reached the upstream", h, v)
		}
	}
	if got.Header.Get("X-End-To-End") != "kept" {
		t.Error("end-to-end header lost")
	}
}

// TestStreamingIncremental checks that chunks reach the client as the app
// writes them: the app does not write the second chunk until the client has
// read the first.
func TestStreamingIncremental(t *testing.T) {
	for _, tc := range []struct {
		name          string
		contentType   string
		contentLength string // set to force the SSE rule rather than the unknown-length one
		h2            bool
	}{
		{"chunked HTTP/1.1", "text/plain", "", false},
		{"chunked HTTP/2", "text/plain", "", true},
		{"SSE with Content-Length HTTP/1.1", "text/event-stream", "24", false},
		{"SSE HTTP/2", "text/event-stream", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			firstRead := make(chan struct{})
			_, up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				if tc.contentLength != "" {
					w.Header().Set("Content-Length", tc.contentLength)
				}
				_, _ = io.WriteString(w, "data: first-chunk\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-firstRead:
				case <-r.Context().Done():
					return
				case <-time.After(testTimeout):
					return
				}
				_, _ = io.WriteString(w, "done\n")
			}))
			e := newEnv(t, Config{Upstream: up}, nil)
			resp, err := e.client(t, tc.h2).Get(e.front.URL + "/stream")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			line, err := br.ReadString('\n')
			if err != nil || line != "data: first-chunk\n" {
				t.Fatalf("first line %q, %v", line, err)
			}
			close(firstRead)
			rest, err := io.ReadAll(br)
			if err != nil || string(rest) != "\ndone\n" {
				t.Fatalf("rest %q, %v", rest, err)
			}
		})
	}
}

func TestUpstreamErrors(t *testing.T) {
	t.Run("502 nothing listening", func(t *testing.T) {
		up := mustUpstream(t, "http://"+freeAddr(t))
		e := newEnv(t, Config{Upstream: up}, nil)
		resp, err := e.client(t, true).Get(e.front.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || string(body) != "502 bad gateway: upstream unavailable\n" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		if strings.Contains(string(body), "refused") || strings.Contains(string(body), "127.0.0.1") {
			t.Errorf("internal error text leaked: %q", body)
		}
		if n := metricValue(t, e.reg, "outrigger_upstream_errors_total", map[string]string{"kind": "refused"}); n != 1 {
			t.Errorf("upstream_errors_total{refused} = %v", n)
		}
		var found bool
		for _, l := range e.logs.lines(t) {
			if l["msg"] == "upstream request failed" {
				found = true
				if l["kind"] != "refused" || l["upstream"] != up.Raw || !strings.Contains(fmt.Sprint(l["err"]), "refused") {
					t.Errorf("log line %v", l)
				}
			}
		}
		if !found {
			t.Error("no error log line")
		}
	})

	t.Run("504 slow upstream", func(t *testing.T) {
		release := make(chan struct{})
		_, up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer close(release)
		e := newEnv(t, Config{Upstream: up, UpstreamTimeout: 50 * time.Millisecond}, nil)
		resp, err := e.client(t, false).Get(e.front.URL + "/slow")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusGatewayTimeout || !strings.HasPrefix(string(body), "504 gateway timeout") {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		if n := metricValue(t, e.reg, "outrigger_upstream_errors_total", map[string]string{"kind": "timeout"}); n != 1 {
			t.Errorf("upstream_errors_total{timeout} = %v", n)
		}
	})

	t.Run("reset by upstream", func(t *testing.T) {
		_, up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = c.Close()
			}
		}))
		e := newEnv(t, Config{Upstream: up}, nil)
		resp, err := e.client(t, false).Get(e.front.URL + "/reset")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status %d", resp.StatusCode)
		}
		if n := metricValue(t, e.reg, "outrigger_upstream_errors_total", map[string]string{"kind": "reset"}); n != 1 {
			t.Errorf("upstream_errors_total{reset} = %v", n)
		}
	})

	t.Run("client cancel is not an upstream error", func(t *testing.T) {
		arrived := make(chan struct{})
		_, up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(arrived)
			<-r.Context().Done()
		}))
		e := newEnv(t, Config{Upstream: up, AccessLog: true}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-arrived
			cancel()
		}()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.front.URL+"/gone", nil)
		if resp, err := e.client(t, true).Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("request unexpectedly succeeded")
		}
		waitFor(t, func() bool {
			return metricValue(t, e.reg, "outrigger_requests_total", map[string]string{"code": "499"}) == 1
		})
		for k := range numKinds {
			if n := metricValue(t, e.reg, "outrigger_upstream_errors_total", map[string]string{"kind": k.String()}); n != 0 {
				t.Errorf("upstream_errors_total{%s} = %v", k, n)
			}
		}
		for _, l := range e.logs.lines(t) {
			if l["level"] == "WARN" || l["level"] == "ERROR" {
				t.Errorf("log noise for a client cancel: %v", l)
			}
		}
	})
}

// waitFor polls cond until it holds, failing after testTimeout.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before the deadlock guard")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestExpectContinueAndTrailers(t *testing.T) {
	_, up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = fmt.Fprintf(w, "got %d bytes", len(b))
		w.Header().Set("X-Checksum", "abc123")
	}))
	e := newEnv(t, Config{Upstream: up}, nil)
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			c := e.client(t, h2)
			c.Transport.(*http.Transport).ExpectContinueTimeout = testTimeout
			req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/upload", strings.NewReader(strings.Repeat("z", 5000)))
			req.Header.Set("Expect", "100-continue")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != "got 5000 bytes" {
				t.Errorf("got %d %q", resp.StatusCode, body)
			}
			if got := resp.Trailer.Get("X-Checksum"); got != "abc123" {
				t.Errorf("trailer X-Checksum = %q", got)
			}
		})
	}
}

func TestLargeBodiesAndBodilessResponses(t *testing.T) {
	big := make([]byte, 3<<20+17)
	for i := range big {
		big[i] = byte(i*7 + i>>9)
	}
	_, up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			_, _ = w.Write(big)
		case "/echo":
			// Read everything first: Go's HTTP/1 server is not full duplex.
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			_, _ = w.Write(b)
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		}
	}))
	e := newEnv(t, Config{Upstream: up}, nil)
	for _, h2 := range []bool{false, true} {
		c := e.client(t, h2)
		name := map[bool]string{false: "h1", true: "h2"}[h2]
		t.Run(name+"/download", func(t *testing.T) {
			resp, err := c.Get(e.front.URL + "/big")
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || !bytes.Equal(got, big) || resp.ContentLength != int64(len(big)) {
				t.Errorf("got %d bytes (CL %d), err %v; want %d identical", len(got), resp.ContentLength, err, len(big))
			}
		})
		t.Run(name+"/upload streamed", func(t *testing.T) {
			resp, err := c.Post(e.front.URL+"/echo", "application/octet-stream", onlyReader{bytes.NewReader(big)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || !bytes.Equal(got, big) {
				t.Errorf("echoed %d bytes, err %v", len(got), err)
			}
		})
		t.Run(name+"/HEAD", func(t *testing.T) {
			resp, err := c.Head(e.front.URL + "/big")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(big)) {
				t.Errorf("HEAD: %d, CL %d", resp.StatusCode, resp.ContentLength)
			}
		})
		for _, code := range []int{204, 304} {
			t.Run(fmt.Sprintf("%s/%d", name, code), func(t *testing.T) {
				resp, err := c.Get(fmt.Sprintf("%s/%d", e.front.URL, code))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != code || len(b) != 0 {
					t.Errorf("got %d with %d body bytes", resp.StatusCode, len(b))
				}
			})
		}
	}
}

// TestFullDuplexStreaming: the app echoes each line of a streamed upload as
// it arrives; the client only sends the next line after reading the echo.
// Only HTTP/2 clients get this: for HTTP/1.1, Go's server (like nginx with
// request buffering) does not stream a response while the upload is still
// running, and ResponseController.EnableFullDuplex makes net/http panic
// ("invalid concurrent Body.Read call") when a handler leaves such a body
// unread, which a proxy answering 502/503 does.
func TestFullDuplexStreaming(t *testing.T) {
	_, up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex()
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		br := bufio.NewReader(r.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = io.WriteString(w, "echo "+line)
			_ = rc.Flush()
		}
	}))
	e := newEnv(t, Config{Upstream: up}, nil)
	c := e.client(t, true)
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/duplex", pr)
	respc := make(chan *http.Response, 1)
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Do(req)
		if err != nil {
			errc <- err
			return
		}
		respc <- resp
	}()
	if _, err := io.WriteString(pw, "line 0\n"); err != nil {
		t.Fatal(err)
	}
	var resp *http.Response
	select {
	case resp = <-respc:
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(testTimeout):
		t.Fatal("no response headers while uploading")
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		got, err := br.ReadString('\n')
		if want := fmt.Sprintf("echo line %d\n", i); err != nil || got != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
		if i < 2 {
			if _, err := fmt.Fprintf(pw, "line %d\n", i+1); err != nil {
				t.Fatal(err)
			}
		}
	}
	pw.Close()
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("trailing data %q", rest)
	}
}
