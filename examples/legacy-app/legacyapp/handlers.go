package legacyapp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Bounds on query parameters, so that a typo cannot tie the app up.
const (
	maxSleep    = 5 * time.Minute
	maxLines    = 100000
	maxBytes    = 256 << 20 // /bytes
	maxWSFrame  = 1 << 20   // /ws message size
	defaultWait = 200 * time.Millisecond
	patternSize = 1 << 20 // the shared /bytes buffer
)

// routes maps the endpoints. Each handler is small on purpose: they are the
// behaviours a reverse proxy must carry faithfully.
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", a.root)
	mux.HandleFunc("/healthz", a.healthz)
	mux.HandleFunc("/config", a.config)
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/slow", slow)
	mux.HandleFunc("/stream", stream)
	mux.HandleFunc("/sse", sse)
	mux.HandleFunc("/ws", a.ws)
	mux.HandleFunc("/upload", upload)
	mux.HandleFunc("/bytes", bytesHandler)
	return mux
}

// root answers the greeting and which config produced it.
func (a *app) root(w http.ResponseWriter, _ *http.Request) {
	c := a.cur.Load()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%s\nconfig load #%d, sha256 %s, loaded %s\n",
		c.cfg.Greeting, c.version, c.sha256[:12], c.at.UTC().Format(time.RFC3339))
}

// healthz is 200 unless the config says "healthy": false.
func (a *app) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !a.cur.Load().healthy() {
		http.Error(w, "unhealthy: the config says \"healthy\": false", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// config returns the config file as it was read.
func (a *app) config(w http.ResponseWriter, _ *http.Request) {
	c := a.cur.Load()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Config-Version", strconv.Itoa(c.version))
	_, _ = w.Write(c.raw)
}

// echoReply is what /echo returns: the request as the app saw it, to check
// what a proxy forwards (Host, X-Forwarded-*, hop-by-hop headers...).
type echoReply struct {
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	Query      string              `json:"query"`
	Proto      string              `json:"proto"`
	Host       string              `json:"host"`
	RemoteAddr string              `json:"remote_addr"`
	Headers    map[string][]string `json:"headers"`
	BodyLength int64               `json:"body_length"`
}

func echo(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	reply := echoReply{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Proto: r.Proto,
		Host: r.Host, RemoteAddr: r.RemoteAddr, Headers: r.Header, BodyLength: n,
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(reply)
}

// durationParam reads a duration query parameter within [0, max].
func durationParam(r *http.Request, name string, def, max time.Duration) (time.Duration, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > max {
		return 0, fmt.Errorf("%s=%q: want a duration between 0 and %v", name, v, max)
	}
	return d, nil
}

// intParam reads an integer query parameter within [0, max].
func intParam(r *http.Request, name string, def, max int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > max {
		return 0, fmt.Errorf("%s=%q: want an integer between 0 and %d", name, v, max)
	}
	return n, nil
}

// slow sleeps ?d= (default 1s) before answering, and gives up as soon as
// the client goes away: a proxy must propagate cancellation.
func slow(w http.ResponseWriter, r *http.Request) {
	d, err := durationParam(r, "d", time.Second, maxSleep)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		fmt.Fprintf(w, "slept %v\n", d)
	case <-r.Context().Done():
		// The client left; nobody reads an answer.
	}
}

// tick calls emit n times, interval apart, flushing after each; it stops
// early when the client leaves.
func tick(w http.ResponseWriter, r *http.Request, emit func(i int)) {
	n, err := intParam(r, "n", 5, maxLines)
	if err == nil {
		var interval time.Duration
		interval, err = durationParam(r, "interval", defaultWait, time.Minute)
		if err == nil {
			rc := http.NewResponseController(w)
			for i := 1; i <= n; i++ {
				emit(i)
				if err := rc.Flush(); err != nil {
					return
				}
				if i == n {
					return
				}
				select {
				case <-time.After(interval):
				case <-r.Context().Done():
					return
				}
			}
			return
		}
	}
	http.Error(w, err.Error(), http.StatusBadRequest)
}

// stream sends ?n= lines, one every ?interval=, each flushed at once
// (chunked transfer encoding): a proxy must not buffer them.
func stream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	tick(w, r, func(i int) { fmt.Fprintf(w, "line %d\n", i) })
}

// sse sends ?n= server-sent events, one every ?interval=.
func sse(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	tick(w, r, func(i int) { fmt.Fprintf(w, "id: %d\nevent: tick\ndata: tick %d\n\n", i, i) })
}

// ws echoes every WebSocket message back, text or binary.
func (a *app) ws(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered the client already
	}
	defer c.CloseNow()
	c.SetReadLimit(maxWSFrame)
	ctx := r.Context()
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == -1 && ctx.Err() == nil {
				a.log.Warn("ws read", "err", err)
			}
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

// uploadReply is what /upload answers.
type uploadReply struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// upload reads the whole body and answers its size and SHA-256, so tests
// can check that large bodies cross the proxy intact.
func upload(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(uploadReply{Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))})
}

// pattern returns the shared body of /bytes, built once: benchmarks must
// measure the proxy, not the allocation of response bodies.
var pattern = sync.OnceValue(func() []byte {
	buf := make([]byte, patternSize)
	for i := range buf {
		buf[i] = 'a' + byte(i%26)
	}
	return buf
})

// bytesHandler answers exactly ?size= bytes (default 1024), with a
// Content-Length, from the shared pattern buffer.
func bytesHandler(w http.ResponseWriter, r *http.Request) {
	size, err := intParam(r, "size", 1024, maxBytes)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(size))
	buf := pattern()
	for size > 0 {
		n := min(size, len(buf))
		if _, err := w.Write(buf[:n]); err != nil {
			return
		}
		size -= n
	}
}
