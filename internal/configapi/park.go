package configapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Parked watchers. A long poll that has to wait, on a plain HTTP/1.1
// keep-alive connection of a Server, leaves net/http while it waits: the
// handler hijacks the connection, hands it to a small goroutine that only
// waits for the connection to become readable (the client's departure or
// next request) or for the wait to end, and returns. The watcher then
// costs a socket and that goroutine's small stack instead of net/http's
// per-connection state (two goroutines on deeper stacks, read and write
// buffers, request and response), and when a new version arrives its
// answer is written by a few hub workers in a tight loop from bytes
// encoded once per version, instead of by ten thousand woken handlers each
// building headers. The next request on the connection is read only once
// the whole wave of answers is written, which is the wave hold (wave.go)
// without a goroutine held in a handler. It is normally the watcher's
// re-arm, which the same goroutine parks again when it is of the plainest
// form (rearm.go); anything else is handed back to the http.Server
// through its listener (relisten.go) with the bytes read, so it gets
// every limit and header rule a new connection gets.
//
// What the client sees is what the handler path sends: the same status
// lines, headers (sorted, with Date) and bodies, written whole; the
// differential test in park_test.go holds the two byte-for-byte.

// Parked watcher claim states: the first to move a watcher out of
// parkWaiting answers it.
const (
	parkWaiting uint32 = iota
	parkByHub          // a hub worker answers with the new version
	parkBySelf         // its own goroutine answers (timeout, shutdown, client gone)
)

// parkWriteTimeout bounds one answer written to a parked connection, so
// that a client that stopped reading cannot stall a worker long.
const parkWriteTimeout = waveHoldMax

// parked is a long-poll watcher whose connection the hub holds directly.
type parked struct {
	conn    net.Conn
	name    string
	e       *entry
	matches func(int64) bool
	start   time.Time
	wait    time.Duration
	claim   atomic.Uint32

	// listed is the wave whose list holds p, idx its index there
	// (guarded by that wave's pmu).
	listed atomic.Pointer[wave]
	idx    int

	// Set by the hub worker that answered (claim == parkByHub) before it
	// closes the wave's answered channel.
	in         *wave
	written    bool
	answeredAt time.Time

	// For the access log line written when the watch ends.
	path, remote, token string

	// rbuf takes the start of the connection's next request: usually
	// all of a re-arm, in the read that wakes the watcher.
	rbuf [rearmFirstRead]byte
}

// parkConns is how the api hands connections back to its http.Server;
// nil (NewHandler without a Server) keeps every watcher in its handler.
type parkConns interface {
	// give serves c as a new connection; false if the server is closing
	// or stop is closed (the caller closes c).
	give(c net.Conn, stop <-chan struct{}) bool
}

// tryPark parks a long poll on name if it would block now; false (with
// nothing written or taken) means the caller serves it in the handler.
func (a *api) tryPark(w http.ResponseWriter, r *http.Request, name string, matches func(int64) bool, wait time.Duration) bool {
	h := a.hub
	if h.conns == nil || h.noHold || r.Method != http.MethodGet || r.TLS != nil || !r.ProtoAtLeast(1, 1) || r.Close {
		return false
	}
	ctx := r.Context()
	e := h.acquire(name)
	st := e.state.Load()
	for st.latest < 0 {
		if err := h.loadLatest(ctx, name, e); err != nil {
			h.release(name, e)
			return false
		}
		st = e.state.Load()
	}
	if !matches(st.latest) {
		h.release(name, e)
		return false // answered at once by the handler
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.release(name, e)
		return false
	}
	ri := infoFrom(ctx)
	ri.detached = true
	p := &parked{
		conn: conn, name: name, e: e, matches: matches, start: ri.start, wait: wait,
		path: r.URL.Path, remote: r.RemoteAddr, token: ri.token,
	}
	if p.start.IsZero() {
		p.start = time.Now()
	}
	if n := brw.Reader.Buffered(); n > 0 {
		// Pipelined bytes after the request: it will be answered at once
		// (304) and the bytes served next, as net/http would after the
		// wait, only sooner.
		pre, _ := brw.Reader.Peek(n)
		p.conn = withPrefix(conn, append([]byte(nil), pre...))
		_ = p.conn.SetReadDeadline(time.Now())
	} else {
		_ = p.conn.SetReadDeadline(p.start.Add(wait))
	}
	if !h.parkBegin() {
		// Shutting down: answer 304 at once, as a woken handler would.
		_ = writeParked(conn, notModifiedWire(st.latest, time.Now(), true))
		_ = conn.Close()
		h.release(name, e)
		h.logParked(p, http.StatusNotModified)
		return true
	}
	h.live.Store(p, struct{}{})
	h.park(p)
	go a.runParked(p)
	return true
}

// park adds p to the wave of its entry's current state, or answers it if
// that state no longer matches.
func (h *hub) park(p *parked) {
	for {
		st := p.e.state.Load()
		if !p.matches(st.latest) {
			// Changed between the check and here: answer from a worker
			// of its own (the state's wave is gone).
			go h.answerParked(p.e, []*parked{p}, nil)
			return
		}
		if st.wave.addParked(p) {
			break
		}
	}
	select {
	case <-h.closing: // the sweep may have run before p was listed
		_ = p.conn.SetReadDeadline(time.Now())
	default:
	}
}

// runParked serves a parked watcher's connection: it waits for the
// watch to end (finishParked), then takes the connection's next request
// itself when that is another long poll it can park at once (rearm), and
// otherwise hands the connection back to the http.Server.
func (a *api) runParked(p *parked) {
	h := a.hub
	defer h.parkWG.Done()
	for {
		// p stays listed for the shutdown sweep until its connection's
		// next request is read.
		first, keep := h.finishParked(p)
		if !keep {
			h.live.Delete(p)
			_ = p.conn.Close()
			return
		}
		next, pre := a.rearm(p, first)
		h.live.Delete(p)
		if next != nil {
			p = next
			continue
		}
		if pre == nil {
			_ = p.conn.Close()
			return
		}
		_ = p.conn.SetDeadline(time.Time{})
		if !h.conns.give(withPrefix(p.conn, pre), h.closing) {
			_ = p.conn.Close()
		}
		return
	}
}

// finishParked waits until p's connection is readable (the next request,
// or the client gone) or its read deadline passes (the wait's end,
// shutdown), answers it if no worker did, and logs it. keep reports that
// the connection goes on, with first, the start of its next request.
func (h *hub) finishParked(p *parked) (first []byte, keep bool) {
	b := p.rbuf[:]
	n, rerr := p.conn.Read(b)
	var ne net.Error
	timeout := errors.As(rerr, &ne) && ne.Timeout()
	status := http.StatusOK
	keep = true
	idleFrom := time.Now()
	if p.claim.CompareAndSwap(parkWaiting, parkBySelf) {
		if w := p.listed.Load(); w != nil {
			w.removeParked(p)
		}
		switch {
		case n > 0 || timeout:
			status = http.StatusNotModified
			latest := p.e.state.Load().latest
			keep = writeParked(p.conn, notModifiedWire(latest, time.Now(), h.isClosing())) == nil
			idleFrom = time.Now()
		default:
			status = 499 // client gone, for the log only
			keep = false
		}
	} else {
		<-p.in.answered // the worker's write is done
		// Answered: the client's next request is here (n > 0), it left
		// (an error) or it is idle (timeout).
		keep = p.written && (rerr == nil || timeout)
		idleFrom = p.answeredAt
	}
	h.release(p.name, p.e)
	h.logParked(p, status)
	if keep && n == 0 {
		// Idle after its answer: wait here for the next request, as long
		// as net/http would keep an idle connection, so that the server
		// gets the connection back only with a request on it (an idle
		// one would count as a new connection that delays Shutdown).
		if h.idle > 0 {
			_ = p.conn.SetReadDeadline(idleFrom.Add(h.idle))
		} else {
			_ = p.conn.SetReadDeadline(time.Time{})
		}
		select {
		case <-h.closing: // the sweep may have run before the deadline was set
			keep = false
		default:
			n, _ = p.conn.Read(b)
			keep = n > 0
		}
	}
	select {
	case <-h.closing:
		keep = false
	default:
	}
	return b[:n], keep
}

// answerParked writes each parked watcher in ps that still waits its
// answer: the latest version's content if its condition no longer
// matches, else it is parked on the newer state. w's answered channel
// (a fresh one if w is nil) is closed when all are written. A large wave
// is split over one worker per P, so that the answers are written on
// every CPU the process gets.
func (h *hub) answerParked(e *entry, ps []*parked, w *wave) {
	if w == nil {
		w = &wave{answered: make(chan struct{})}
	}
	defer close(w.answered)
	st := e.state.Load()
	aw := &answerWave{h: h, e: e, w: w, latest: st.latest, changed: st.changed, now: time.Now(), name: ps[0].name}
	k := min(runtime.GOMAXPROCS(0), (len(ps)+answerChunk-1)/answerChunk)
	var wg sync.WaitGroup
	for i := 1; i < k; i++ {
		part := ps[i*len(ps)/k : (i+1)*len(ps)/k]
		wg.Go(func() { aw.answer(part) })
	}
	aw.answer(ps[:len(ps)/k])
	wg.Wait()
}

// answerChunk is the smallest share of a wave worth its own worker.
const answerChunk = 512

// answerWave is one wave's answer, shared by its workers.
type answerWave struct {
	h       *hub
	e       *entry
	w       *wave
	name    string
	latest  int64
	changed time.Time
	now     time.Time

	once sync.Once
	wire []byte
}

func (aw *answerWave) answer(ps []*parked) {
	h, now := aw.h, aw.now
	for _, p := range ps {
		if p.claim.Load() != parkWaiting {
			continue
		}
		if p.matches(aw.latest) {
			h.park(p) // still matched (a list of ETags): wait on
			continue
		}
		aw.once.Do(func() { aw.wire = h.answerWire(aw.e, aw.name, aw.latest) })
		// Set before the claim: the watcher's goroutine reads it once
		// its own claim has failed.
		p.in = aw.w
		if !p.claim.CompareAndSwap(parkWaiting, parkByHub) {
			continue
		}
		p.written = writeParked(p.conn, aw.wire) == nil
		p.answeredAt = now
		if h.idle > 0 && p.written && p.start.Add(p.wait).Sub(now) > h.idle {
			// Idle from now on: the read deadline is the wait's end;
			// keep it no later than the server's idle timeout.
			_ = p.conn.SetReadDeadline(now.Add(h.idle))
		}
		if !aw.changed.IsZero() {
			h.m.wake.Observe(time.Since(aw.changed).Seconds())
		}
	}
}

// answerWire is the response to a watcher whose condition no longer
// matches latest.
func (h *hub) answerWire(e *entry, name string, latest int64) []byte {
	now := time.Now()
	if latest == 0 {
		return jsonWire(http.StatusNotFound, fmt.Sprintf("config %q: not found", name), now)
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.readTO)
	defer cancel()
	r, err := h.content(ctx, name, e, latest)
	if err != nil {
		ae := storeError(name, err)
		if ae.Code >= 500 {
			h.log.Error("config api: request failed", "method", "GET", "path", "/v1/configs/"+name, "err", ae.Err, "msg", ae.Msg)
		}
		return jsonWire(ae.Code, ae.Msg, now)
	}
	return r.wire(now)
}

// writeParked writes one whole answer to a parked connection: at once
// when the socket takes it, else within parkWriteTimeout.
func writeParked(c net.Conn, b []byte) error {
	n, err := tryWriteNow(c, b)
	if err != nil || n == len(b) {
		return err
	}
	_ = c.SetWriteDeadline(time.Now().Add(parkWriteTimeout))
	_, err = c.Write(b[n:])
	return err
}

// logParked is the access log line and request count of a parked watch,
// as accessLog writes them for a watch served in its handler.
func (h *hub) logParked(p *parked, status int) {
	h.m.request(http.MethodGet, status).Inc()
	lvl := slog.LevelDebug // a long poll's 200 or 304
	switch {
	case status >= 500:
		lvl = slog.LevelError
	case status >= 400: // 404, or 499 (client gone)
		lvl = slog.LevelInfo
	}
	if !h.log.Enabled(context.Background(), lvl) {
		return
	}
	attrs := []any{
		"method", http.MethodGet,
		"path", p.path,
		"status", status,
		"duration_ms", float64(time.Since(p.start).Microseconds()) / 1000,
		"remote", p.remote,
	}
	if p.token != "" {
		attrs = append(attrs, "token", p.token)
	}
	h.log.Log(context.Background(), lvl, "config api request", attrs...)
}

// sweepParked ends every parked wait at shutdown: each watcher's
// goroutine wakes, answers 304 if it had no answer yet and closes its
// connection.
func (h *hub) sweepParked() {
	now := time.Now()
	h.live.Range(func(k, _ any) bool {
		_ = k.(*parked).conn.SetReadDeadline(now)
		return true
	})
}

// --- wire encoding: what net/http writes for the same handler output ---

var headerNewlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

// appendWire appends an HTTP/1.1 response head as net/http's server
// writes it: status line, the header sorted by key, then Date.
func appendWire(b []byte, code int, hdr http.Header, now time.Time) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "\r\n"...)
	keys := make([]string, 0, len(hdr))
	for k := range hdr {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range hdr[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, strings.TrimSpace(headerNewlineToSpace.Replace(v))...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "Date: "...)
	b = now.UTC().AppendFormat(b, http.TimeFormat)
	return append(b, "\r\n\r\n"...)
}

// wire is r's whole 200 response (head and body) at time now.
func (r *rendered) wire(now time.Time) []byte {
	b := make([]byte, 0, 512+len(r.v.Data))
	b = appendWire(b, http.StatusOK, r.hdr, now)
	return append(b, r.v.Data...)
}

// notModifiedWire is notModified's response.
func notModifiedWire(latest int64, now time.Time, closing bool) []byte {
	h := http.Header{"Cache-Control": {"no-cache"}}
	if closing {
		h["Connection"] = []string{"close"} // shutting down: as net/http says it
	}
	if latest > 0 {
		h["Etag"] = []string{etag(latest)}
		h["X-Outrigger-Version"] = []string{strconv.FormatInt(latest, 10)}
	}
	return appendWire(make([]byte, 0, 256), http.StatusNotModified, h, now)
}

// isClosing reports whether the server is shutting down.
func (h *hub) isClosing() bool {
	select {
	case <-h.closing:
		return true
	default:
		return false
	}
}

// jsonWire is the response wrap writes for an error message.
func jsonWire(code int, msg string, now time.Time) []byte {
	b, _ := json.Marshal(map[string]string{"error": msg})
	body := string(b) + "\n"
	h := http.Header{
		"Content-Type":           {"application/json"},
		"X-Content-Type-Options": {"nosniff"},
		"Content-Length":         {strconv.Itoa(len(body))},
	}
	return append(appendWire(make([]byte, 0, 256+len(body)), code, h, now), body...)
}

// prefixConn replays bytes already read from a connection before reading
// on.
type prefixConn struct {
	net.Conn
	pre []byte
}

func withPrefix(c net.Conn, pre []byte) net.Conn {
	if pc, ok := c.(*prefixConn); ok {
		if len(pc.pre) == 0 {
			pc.pre = pre
			return pc
		}
		c = pc.Conn
		pre = append(append([]byte(nil), pre...), pc.pre...)
	}
	return &prefixConn{Conn: c, pre: pre}
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(b, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// CloseWrite keeps net/http's graceful close (FIN before close) working.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
