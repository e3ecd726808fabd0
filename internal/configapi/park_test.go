package configapi

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// serveParking serves a handler over st the way Server does (watchers
// park, connections come back through a relistener), so that it can share
// one store with a handler-path server in the same test.
func serveParking(t testing.TB, st store.Store) (addr string, a *api) {
	t.Helper()
	reg := prometheus.NewRegistry()
	a, h, stop, err := newAPIHandler(st, DefaultConfig(), Deps{Registry: reg, Gatherer: reg}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl := newRelistener(ln)
	a.hub.conns = rl
	a.hub.idle = serverIdleTimeout
	a.hub.hdrTimeout = serverReadHeaderTimeout
	srv := &http.Server{Handler: h, ReadHeaderTimeout: serverReadHeaderTimeout, IdleTimeout: serverIdleTimeout}
	go func() { _ = srv.Serve(rl) }()
	t.Cleanup(func() {
		stop()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return ln.Addr().String(), a
}

// rawConn is a test client on one keep-alive connection that returns
// responses as the bytes on the wire.
type rawConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

func longPoll(path string, have int64, wait string) string {
	return fmt.Sprintf("GET %s?wait=%s HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"%d\"\r\n\r\n", path, wait, have)
}

// read reads one response (Content-Length framed or bodiless) as raw
// bytes, within 30 s (a deadlock guard).
func (r *rawConn) read() string {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	code, clen := 0, 0
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("reading response: %v (so far %q)", err, b.String())
		}
		b.WriteString(line)
		if code == 0 {
			code, _ = strconv.Atoi(strings.Fields(line)[1])
			continue
		}
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
			clen, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, clen)
	if _, err := io.ReadFull(r.br, body); err != nil {
		r.t.Fatalf("reading body: %v", err)
	}
	b.Write(body)
	return b.String()
}

var dateLine = regexp.MustCompile(`(?m)^Date: [^\r]*\r\n`)

// TestParkedAnswersMatchHandler: a parked watcher gets, byte for byte
// (but the Date), what the same watch served in its handler gets: the
// pushed version, the 304 at the wait's end, and the 200 at once when it
// is already behind.
func TestParkedAnswersMatchHandler(t *testing.T) {
	st := openBolt(t)
	h, _, err := NewHandler(st, DefaultConfig(), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	plain := strings.TrimPrefix(serveHandler(t, h), "http://")
	parkAddr, pa := serveParking(t, st)
	doURL(t, http.DefaultClient, "http://"+parkAddr, withHdr(put("/v1/configs/app", "application/json", `{"a":1}`), "X-Outrigger-Author", "ops"))

	cases := []struct {
		name string
		req  string
		push bool
	}{
		{name: "woken by a push", req: longPoll("/v1/configs/app", 1, "60s"), push: true},
		{name: "wait ends", req: longPoll("/v1/configs/app", 2, "1s")},
		{name: "already behind", req: longPoll("/v1/configs/app", 1, "60s")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pc, hc := dialRaw(t, parkAddr), dialRaw(t, plain)
			pc.send(tc.req)
			hc.send(tc.req)
			if tc.push {
				waitFor(t, func() bool { return pa.hub.entryWaiters("app") == 1 })
				doURL(t, http.DefaultClient, "http://"+parkAddr, withHdr(put("/v1/configs/app", "application/json", `{"a":2}`), "X-Outrigger-Author", "ops"))
			}
			got, want := dateLine.ReplaceAllString(pc.read(), ""), dateLine.ReplaceAllString(hc.read(), "")
			if got != want {
				t.Fatalf("parked answer\n%q\nhandler answer\n%q", got, want)
			}
		})
	}
}

// entryWaiters is how many watchers wait on name (0 if none).
func (h *hub) entryWaiters(name string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.entries[name]; e != nil {
		return e.waiters.Load()
	}
	return 0
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30s (deadlock guard)")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestParkedConnectionLifecycle: after a parked watch, the connection
// serves its next requests (other endpoints and another parked watch);
// every watch is counted and logged when it ends; a pipelined request
// ends the wait at once; a client that leaves is released; shutdown
// answers 304 and closes.
func TestParkedConnectionLifecycle(t *testing.T) {
	ts := startServer(t, nil)
	ts.do(t, put("/v1/configs/app", "text/plain", "one"))
	addr := strings.TrimPrefix(ts.url, "http://")
	count := func(code string) float64 {
		return counterValue(t, ts, "outrigger_config_requests_total", "code", code)
	}
	hub := ts.srv.api.hub

	c := dialRaw(t, addr)
	ok0, nm0 := count("200"), count("304")
	c.send(longPoll("/v1/configs/app", 1, "60s"))
	waitWatchers(t, ts, 1)
	ts.do(t, put("/v1/configs/app", "text/plain", "two"))
	if r := c.read(); !strings.HasPrefix(r, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(r, "\r\n\r\ntwo") || !strings.Contains(r, "Etag: \"2\"\r\n") {
		t.Fatalf("woken parked watcher got %q", r)
	}
	// The same connection: a plain GET, then another parked watch that
	// ends with its wait.
	c.send("GET /v1/configs/app HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read(); !strings.HasPrefix(r, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(r, "two") {
		t.Fatalf("GET after a parked watch got %q", r)
	}
	c.send(longPoll("/v1/configs/app", 2, "1s"))
	if r := c.read(); !strings.HasPrefix(r, "HTTP/1.1 304 Not Modified\r\n") || !strings.Contains(r, "Etag: \"2\"\r\n") {
		t.Fatalf("parked watch at its wait's end got %q", r)
	}
	waitFor(t, func() bool { return count("200") >= ok0+2 && count("304") >= nm0+1 }) // the parked watch and the GET (PUTs are 201)
	if !strings.Contains(ts.logs.String(), `"msg":"config api request","method":"GET","path":"/v1/configs/app","status":304`) {
		t.Errorf("no access log line for the parked watch:\n%s", ts.logs.String())
	}

	t.Run("pipelined request ends the wait", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(longPoll("/v1/configs/app", 2, "60s") + "GET /v1/configs/app HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := c.read(); !strings.HasPrefix(r, "HTTP/1.1 304 ") {
			t.Fatalf("pipelined watch got %q", r)
		}
		if r := c.read(); !strings.HasPrefix(r, "HTTP/1.1 200 ") || !strings.HasSuffix(r, "two") {
			t.Fatalf("pipelined GET got %q", r)
		}
	})

	t.Run("client leaves", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(longPoll("/v1/configs/app", 2, "60s"))
		waitFor(t, func() bool { return hub.entryWaiters("app") == 1 })
		_ = c.c.Close()
		waitFor(t, func() bool { return watchersGauge(t, ts) == 0 && hub.entryWaiters("app") == 0 })
	})

	t.Run("shutdown answers 304 and closes", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(longPoll("/v1/configs/app", 2, "300s"))
		waitWatchers(t, ts, 1)
		done := make(chan struct{})
		go func() { ts.stop(); close(done) }()
		if r := c.read(); !strings.HasPrefix(r, "HTTP/1.1 304 ") || !strings.Contains(r, "\r\nConnection: close\r\n") {
			t.Fatalf("parked watch at shutdown got %q, want a 304 with Connection: close", r)
		}
		if _, err := c.br.ReadByte(); err != io.EOF {
			t.Fatalf("connection after the shutdown answer: %v, want EOF", err)
		}
		<-done
	})
}

// TestParkedFanOut: many parked watchers on their own connections all get
// each pushed version, re-arming on the same connection.
func TestParkedFanOut(t *testing.T) {
	ts := startServer(t, nil)
	ts.do(t, put("/v1/configs/fan", "text/plain", "v1"))
	addr := strings.TrimPrefix(ts.url, "http://")
	const n, pushes = 300, 3
	cs := make([]*rawConn, n)
	for i := range cs {
		cs[i] = dialRaw(t, addr)
		cs[i].send(longPoll("/v1/configs/fan", 1, "60s"))
	}
	for k := 2; k <= pushes+1; k++ {
		waitWatchers(t, ts, n)
		ts.do(t, put("/v1/configs/fan", "text/plain", fmt.Sprintf("v%d", k)))
		for i, c := range cs {
			r := c.read()
			if !strings.HasPrefix(r, "HTTP/1.1 200 ") || !strings.HasSuffix(r, fmt.Sprintf("\r\n\r\nv%d", k)) {
				t.Fatalf("push %d, watcher %d got %q", k, i, r)
			}
			c.send(longPoll("/v1/configs/fan", int64(k), "60s"))
		}
	}
}

// TestParkedRearms: a re-arm on a parked watcher's connection is parked
// again with its token checked; refused, answered-at-once and
// connection-closing requests on that connection get the http.Server's
// own answers.
func TestParkedRearms(t *testing.T) {
	file := writeFile(t, t.TempDir(), "tokens.yaml", tokensYAML())
	ts := startServer(t, func(c *Config) { c.Tokens = file })
	admin := func(r req) req { return withHdr(r, "Authorization", "Bearer "+adminTok) }
	ts.do(t, admin(put("/v1/configs/app-x", "text/plain", "v1")))
	ts.do(t, admin(put("/v1/configs/web2", "text/plain", "w1")))
	addr := strings.TrimPrefix(ts.url, "http://")
	hub := ts.srv.api.hub
	poll := func(name string, have int64, tok, extra string) string {
		return fmt.Sprintf("GET /v1/configs/%s?wait=60s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nIf-None-Match: \"%d\"\r\n%s\r\n", name, tok, have, extra)
	}
	c := dialRaw(t, addr)
	c.send(poll("app-x", 1, writeTok, ""))
	for v := 2; v <= 3; v++ { // the first parks through net/http, the second is a re-arm
		waitFor(t, func() bool { return hub.entryWaiters("app-x") == 1 })
		ts.do(t, admin(put("/v1/configs/app-x", "text/plain", fmt.Sprintf("v%d", v))))
		if r := c.read(); !strings.HasPrefix(r, "HTTP/1.1 200 ") || !strings.HasSuffix(r, fmt.Sprintf("v%d", v)) {
			t.Fatalf("push %d: %q", v, r)
		}
		if v == 2 {
			c.send(poll("app-x", 2, writeTok, ""))
		}
	}
	if !strings.Contains(ts.logs.String(), `"status":200,`) || !strings.Contains(ts.logs.String(), `"token":"ci"`) {
		t.Errorf("parked watches not logged with their token:\n%s", ts.logs.String())
	}
	steps := []struct {
		name, req, want string
	}{
		{name: "unknown token", req: poll("app-x", 3, "nope-0123456789abcdef", ""), want: "HTTP/1.1 401 "},
		{name: "config outside the token's patterns", req: poll("web2", 1, writeTok, ""), want: "HTTP/1.1 403 "},
		{name: "already behind", req: poll("app-x", 1, writeTok, ""), want: "HTTP/1.1 200 "},
		{name: "not a long poll", req: "GET /v1/configs/app-x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + writeTok + "\r\n\r\n", want: "HTTP/1.1 200 "},
	}
	for _, s := range steps {
		c.send(s.req)
		if r := c.read(); !strings.HasPrefix(r, s.want) {
			t.Fatalf("%s: got %q, want %q…", s.name, r, s.want)
		}
	}
	// A watch that asks to close the connection waits in its handler and
	// closes after its answer.
	c.send(poll("app-x", 3, writeTok, "Connection: close\r\n"))
	waitFor(t, func() bool { return hub.entryWaiters("app-x") == 1 })
	ts.do(t, admin(put("/v1/configs/app-x", "text/plain", "v4")))
	if r := c.read(); !strings.HasPrefix(r, "HTTP/1.1 200 ") || !strings.Contains(r, "Connection: close\r\n") {
		t.Fatalf("closing watch: %q", r)
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("after the closing watch: %v, want EOF", err)
	}
}

// TestParkedContentReadFailure: when the content read of a new version
// fails, parked watchers get the handler's 500 and JSON error, a watcher
// whose ETag list still matches keeps waiting, and the next watch reads
// again.
func TestParkedContentReadFailure(t *testing.T) {
	st := &failingStore{Store: openBolt(t), version: 2}
	st.fails.Store(1)
	addr, a := serveParking(t, st)
	ctx := context.Background()
	if _, _, err := st.Store.Put(ctx, "app", []byte("v1"), store.PutOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	keeper, c := dialRaw(t, addr), dialRaw(t, addr)
	keeper.send("GET /v1/configs/app?wait=60s HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"1\", \"2\"\r\n\r\n")
	c.send(longPoll("/v1/configs/app", 1, "60s"))
	waitFor(t, func() bool { return a.hub.entryWaiters("app") == 2 })
	// Written behind the API's back: only the change stream tells the hub.
	if _, _, err := st.Store.Put(ctx, "app", []byte("v2"), store.PutOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	if r := c.read(); !strings.HasPrefix(r, "HTTP/1.1 500 ") || !strings.HasSuffix(r, "\r\n\r\n{\"error\":\"config \\\"app\\\": store error\"}\n") {
		t.Fatalf("parked watcher during the failed read: %q", r)
	}
	c.send(longPoll("/v1/configs/app", 1, "60s"))
	if r := c.read(); !strings.HasPrefix(r, "HTTP/1.1 200 ") || !strings.HasSuffix(r, "v2") {
		t.Fatalf("watcher after the failed read: %q", r)
	}
	if n := a.hub.entryWaiters("app"); n != 1 {
		t.Fatalf("%d waiters, want the keeper still waiting", n)
	}
}

// TestWriteParked: an answer larger than the socket takes at once (a
// partial non-blocking write) is finished with a deadline and arrives
// whole; on a connection without a file descriptor it is written the
// ordinary way.
func TestWriteParked(t *testing.T) {
	msg := []byte(strings.Repeat("0123456789abcdef", 1<<20/16))
	check := func(t *testing.T, w, r net.Conn) {
		t.Helper()
		got := make(chan []byte, 1)
		go func() {
			time.Sleep(50 * time.Millisecond) // let the write fill the buffers first
			b, _ := io.ReadAll(io.LimitReader(r, int64(len(msg))))
			got <- b
		}()
		if err := writeParked(w, msg); err != nil {
			t.Fatalf("writeParked: %v", err)
		}
		if b := <-got; !bytes.Equal(b, msg) {
			t.Fatalf("read %d bytes, want the %d written", len(b), len(msg))
		}
	}
	t.Run("tcp", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_ = s.(*net.TCPConn).SetWriteBuffer(4096) // 1 MiB does not fit at once
		check(t, withPrefix(s, nil), c)
	})
	t.Run("pipe", func(t *testing.T) {
		w, r := net.Pipe()
		defer w.Close()
		defer r.Close()
		check(t, w, r)
	})
}

// TestParkedRearmInPieces: a re-arm that arrives in pieces, longer than
// the first read, is still parked and answered.
func TestParkedRearmInPieces(t *testing.T) {
	ts := startServer(t, nil)
	ts.do(t, put("/v1/configs/app", "text/plain", "v1"))
	hub := ts.srv.api.hub
	c := dialRaw(t, strings.TrimPrefix(ts.url, "http://"))
	c.send(longPoll("/v1/configs/app", 1, "60s"))
	waitFor(t, func() bool { return hub.entryWaiters("app") == 1 })
	ts.do(t, put("/v1/configs/app", "text/plain", "v2"))
	if r := c.read(); !strings.HasSuffix(r, "v2") {
		t.Fatalf("first answer %q", r)
	}
	c.send("GET /v1/configs/app?wait=60s HTTP/1.1\r\nHo")
	time.Sleep(20 * time.Millisecond)
	c.send("st: x\r\nUser-Agent: " + strings.Repeat("x", 2*rearmFirstRead) + "\r\nIf-None-Match: \"2\"\r\n")
	time.Sleep(20 * time.Millisecond)
	c.send("\r\n")
	waitFor(t, func() bool { return hub.entryWaiters("app") == 1 })
	ts.do(t, put("/v1/configs/app", "text/plain", "v3"))
	if r := c.read(); !strings.HasPrefix(r, "HTTP/1.1 200 ") || !strings.HasSuffix(r, "v3") {
		t.Fatalf("answer to the re-arm in pieces: %q", r)
	}
}

// TestParkedWaveListBounded: watchers whose waits end, or whose clients
// leave, while the config does not change are unlisted from the wave, so
// that it does not grow with every re-arm.
func TestParkedWaveListBounded(t *testing.T) {
	ts := startServer(t, nil)
	ts.do(t, put("/v1/configs/app", "text/plain", "v1"))
	addr := strings.TrimPrefix(ts.url, "http://")
	hub := ts.srv.api.hub
	listed := func() int {
		hub.mu.Lock()
		e := hub.entries["app"]
		hub.mu.Unlock()
		if e == nil {
			return 0
		}
		w := e.state.Load().wave
		w.pmu.Lock()
		defer w.pmu.Unlock()
		return len(w.parked)
	}
	c := dialRaw(t, addr)
	keep := dialRaw(t, addr) // keeps the entry (and its wave) alive
	keep.send(longPoll("/v1/configs/app", 1, "60s"))
	waitFor(t, func() bool { return hub.entryWaiters("app") == 1 })
	for i := 0; i < 30; i++ {
		c.send(longPoll("/v1/configs/app", 1, "5ms"))
		if r := c.read(); !strings.HasPrefix(r, "HTTP/1.1 304 ") {
			t.Fatalf("round %d: %q", i, r)
		}
		gone := dialRaw(t, addr)
		gone.send(longPoll("/v1/configs/app", 1, "60s"))
		waitFor(t, func() bool { return hub.entryWaiters("app") >= 2 })
		_ = gone.c.Close()
		waitFor(t, func() bool { return hub.entryWaiters("app") == 1 })
	}
	if n := listed(); n > 2 {
		t.Fatalf("%d watchers listed in the wave after 60 ended watches, want the keeper (and at most one more)", n)
	}
}
