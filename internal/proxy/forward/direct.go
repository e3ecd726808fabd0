package forward

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The direct path (Config.DirectHTTP1) forwards simple HTTP/1.1 exchanges in
// the handler's own goroutine on pooled keep-alive connections: it writes the
// request and reads the response itself instead of handing both across
// channels to http.Transport's per-connection goroutines, and it does not
// clone the request. Anything it does not handle goes through ReverseProxy.

// directMaxBody is the largest request body the direct path sends. The
// request is written in full before the response is read, so the body must
// fit the socket buffers even if the app answers without reading it.
const directMaxBody = 64 << 10

// directEligible reports whether r can take the direct path.
func (h *Handler) directEligible(r *http.Request) bool {
	if h.pool == nil || r.Method == http.MethodConnect || r.Trailer != nil {
		return false
	}
	switch {
	case r.ContentLength == 0:
	case r.ContentLength > 0 && r.ContentLength <= directMaxBody:
	default:
		return false // unknown length or large: needs concurrent write and read
	}
	// ReverseProxy drops query parameters that Go cannot parse (semicolons)
	// so the app and the proxy agree; leave those requests to it.
	return strings.IndexByte(r.URL.RawQuery, ';') < 0
}

// serveDirect forwards r on a pooled connection.
// now is the time the request was handed to the upstream.
func (h *Handler) serveDirect(rw *respWriter, r *http.Request, now time.Time) {
	// The forwarding values live in rw, not in this frame: HTTP/2 runs
	// each request on a new goroutine, and a deep frame here made every
	// one of them grow its stack (a copy, ~7% of the CPU of a request).
	f := &rw.fwd
	h.fillForwarded(f, r, h.inspectClient(r))
	ctx := r.Context()
	crashRetried := false
	for attempt := 0; ; attempt++ {
		var uc *upConn
		if attempt == 0 {
			uc = h.pool.get(now)
		}
		if uc == nil {
			var err error
			if uc, err = h.pool.dial(ctx); err != nil {
				err = h.retryRefusedDial(ctx, err, func() (e error) {
					uc, e = h.pool.dial(ctx)
					return e
				})
			}
			if err != nil {
				h.handleError(rw, r, err)
				return
			}
			now = time.Now() // dialing (and retrying) takes time
		}
		// A client that goes away interrupts whatever the exchange blocks on.
		stop := context.AfterFunc(ctx, uc.abortFn)
		resp, err := h.exchange(rw, r, uc, f.ci.trusted, f, now)
		if err != nil {
			stop()
			uc.close()
			// The connection closed before a complete response header (so
			// nothing reached the client), and the request has no body and
			// is idempotent, so repeating it is safe
			// (RFC 9110 §9.2.2): once when a pooled connection was closed by
			// the app just as we used it, and once more — on a new
			// connection, through the refused-retry window — when the app
			// died with the request inside (a crash or kill during a
			// restart). Never more: a request that kills the app every time
			// must not take down each restarted instance too.
			if errors.Is(err, errStaleConn) && r.ContentLength == 0 && idempotent(r.Method) && ctx.Err() == nil {
				if uc.reused && attempt == 0 {
					continue
				}
				if !uc.reused && !crashRetried && h.cfg.RetryWindow > 0 {
					crashRetried = true
					h.m.retries.Inc()
					h.CloseIdle() // the app is gone: so are its other pooled connections
					continue
				}
			}
			h.handleError(rw, r, unwrapStale(err))
			return
		}
		reusable := h.copyDirectResponse(rw, r, uc, resp)
		if stop() && reusable && uc.canReuse() {
			h.pool.put(uc)
		} else {
			uc.close()
		}
		return
	}
}

// errStaleConn marks failures that happened before a complete response
// header arrived (the connection was closed or reset under the request),
// with nothing sent to the client yet.
var errStaleConn = errors.New("forward: pooled upstream connection closed before responding")

type staleError struct{ err error }

func (e *staleError) Error() string   { return e.err.Error() }
func (e *staleError) Unwrap() []error { return []error{e.err, errStaleConn} }
func unwrapStale(err error) error {
	var se *staleError
	if errors.As(err, &se) {
		return se.err
	}
	return err
}

// connDied reports whether err says the upstream connection was closed or
// reset.
func connDied(err error) bool {
	return err != nil && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET))
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// exchange writes the request and reads the response headers, forwarding
// interim 1xx responses. The read deadline enforces UpstreamTimeout
// (see armReadDeadline for its precision); now is a recent time before the
// request is written.
func (h *Handler) exchange(rw *respWriter, r *http.Request, uc *upConn, trusted bool, f *fwdHeaders, now time.Time) (*http.Response, error) {
	if err := h.writeRequest(uc.bw, r, trusted, f); err != nil {
		if isBodyReadError(err) {
			return nil, err
		}
		return nil, &staleError{err}
	}
	if d := h.cfg.UpstreamTimeout; d > 0 {
		if r.ContentLength > 0 {
			now = time.Now() // copying the client's body may have taken a while
		}
		uc.armReadDeadline(now, d)
	}
	uc.lim.n, uc.lim.err = maxResponseHeaderBytes, nil
	defer func() { uc.lim.n = math.MaxInt64 }()
	interim := false // a 1xx was forwarded: the client has seen something
	for {
		// Wait for the first bytes, then try the fast parser on what
		// arrived; errors are left for http.ReadResponse to report.
		if _, err := uc.br.Peek(1); err == nil {
			hdr := rw.Header()
			if status, cl, ok := parseSimpleResponse(uc.br, r.Method, hdr, &uc.body); ok {
				resp := uc.simpleResponse(status, cl, r)
				if !bodyBuffered(resp, uc.br) {
					uc.clearReadDeadline()
				}
				return resp, nil
			}
		}
		resp, err := http.ReadResponse(uc.br, r)
		if err != nil {
			// Closed before the response header was complete (before a
			// single byte: a stale pooled connection; part-way: the app
			// died while answering). Nothing has reached the client, so
			// serveDirect may repeat an idempotent request.
			// (A header line cut by the close reads as malformed: the
			// connection's own read error says what happened.)
			if !interim && (connDied(err) || connDied(uc.lim.err)) {
				return nil, &staleError{err}
			}
			return nil, err
		}
		if resp.StatusCode < 100 {
			return nil, fmt.Errorf("%w %d", errBadStatus, resp.StatusCode)
		}
		if resp.StatusCode >= 200 {
			if !bodyBuffered(resp, uc.br) {
				// The body may take as long as it takes (downloads,
				// server-sent events): lift the header deadline. A body that
				// is already buffered needs no socket read, so the
				// deadline can stay armed for the connection's next request.
				uc.clearReadDeadline()
			}
			return resp, nil
		}
		switch resp.StatusCode {
		case http.StatusSwitchingProtocols:
			return nil, errors.New("forward: upstream switched protocols on a request that did not ask to")
		case http.StatusContinue:
			// The body was already sent (Expect is not forwarded).
		default:
			hdr := rw.Header()
			for k, vv := range resp.Header {
				hdr[k] = vv
			}
			rw.WriteHeader(resp.StatusCode)
			clear(hdr)
			interim = true
		}
	}
}

// bodyBuffered reports whether resp's body is empty or entirely in br, so
// reading it never touches the socket.
func bodyBuffered(resp *http.Response, br *bufio.Reader) bool {
	return resp.Body == http.NoBody || (resp.ContentLength >= 0 && int64(br.Buffered()) >= resp.ContentLength)
}

// bodyReadError wraps a failure reading the client's request body (client
// gone, upload broken off, shorter than announced), which is not the
// upstream's fault.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return "reading request body: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

func isBodyReadError(err error) bool {
	var be *bodyReadError
	return errors.As(err, &be)
}

// writeRequest serialises r for the upstream: origin-form target, Host,
// end-to-end headers, forwarding headers, body with Content-Length.
func (h *Handler) writeRequest(bw *bufio.Writer, r *http.Request, trusted bool, f *fwdHeaders) error {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	if u := r.RequestURI; u != "" && (u[0] == '/' || u == "*") && strings.IndexByte(u, '#') < 0 {
		// The client's own origin-form target, byte for byte (a fragment,
		// which ReverseProxy would drop, takes the slow branch).
		bw.WriteString(u)
	} else {
		bw.WriteString(r.URL.RequestURI())
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	if h.cfg.PreserveHost && r.Host != "" {
		bw.WriteString(r.Host)
	} else {
		bw.WriteString(h.targetHost)
	}
	bw.WriteString("\r\n")

	conn := r.Header["Connection"]
	for k, vv := range r.Header {
		if h.dropRequestHeader(k, trusted) || (len(conn) > 0 && listedIn(conn, k)) {
			continue
		}
		for _, v := range vv {
			writeHeaderLine(bw, k, v)
		}
	}
	if hasToken(r.Header["Te"], "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	writeHeaderIf(bw, "X-Forwarded-For", f.xff)
	writeHeaderIf(bw, "X-Forwarded-Proto", f.proto)
	writeHeaderIf(bw, "X-Forwarded-Host", f.host)
	bw.WriteString("Forwarded: ")
	bw.Write(f.appendForwarded(bw.AvailableBuffer()))
	bw.WriteString("\r\n")
	writeHeaderIf(bw, "X-Real-Ip", f.realIP)
	if h.certHeader != "" {
		writeHeaderIf(bw, h.certHeader, f.cert)
	}
	if r.ContentLength > 0 || r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), r.ContentLength, 10))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	if r.ContentLength > 0 {
		n, err := io.CopyN(bw, r.Body, r.ContentLength)
		if err != nil && n < r.ContentLength {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			var we *upstreamWriteError
			if errors.As(err, &we) {
				return we.err
			}
			return &bodyReadError{err}
		}
	}
	return bw.Flush()
}

// upstreamWriteError tells a failed write to the app apart from a failed
// read of the client's body inside io.CopyN.
type upstreamWriteError struct{ err error }

func (e *upstreamWriteError) Error() string { return e.err.Error() }
func (e *upstreamWriteError) Unwrap() error { return e.err }

// dropRequestHeader reports whether the client's header k must not be
// forwarded as is: hop-by-hop, framing, forwarding and spoofable headers.
func (h *Handler) dropRequestHeader(k string, trusted bool) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Expect",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "Proxy":
		return true
	}
	if k == h.certHeader {
		return true
	}
	return !trusted && isSpoofable(k)
}

func writeHeaderLine(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

func writeHeaderIf(bw *bufio.Writer, k, v string) {
	if v != "" {
		writeHeaderLine(bw, k, v)
	}
}

// listedIn reports whether header k is named in the Connection header values.
func listedIn(conn []string, k string) bool {
	for _, v := range conn {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(tok), k) {
				return true
			}
		}
	}
	return false
}

// hasToken reports whether the comma-separated values contain tok.
func hasToken(vals []string, tok string) bool { return listedIn(vals, tok) }

// responseHopHeaders are removed from responses, as ReverseProxy does.
var responseHopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// copyDirectResponse sends resp to the client and reports whether the
// exchange ended cleanly enough to reuse the connection. A nil resp.Header
// means parseSimpleResponse already put the headers into rw.Header().
func (h *Handler) copyDirectResponse(rw *respWriter, r *http.Request, uc *upConn, resp *http.Response) bool {
	hdr := rw.Header()
	announced := h.copyDirectHeader(hdr, r, resp)
	rw.WriteHeader(resp.StatusCode)

	flush := resp.ContentLength == -1 || isEventStream(hdr)
	if fb, ok := resp.Body.(*fixedBody); ok && fb.n > 0 && int64(fb.br.Buffered()) >= fb.n {
		// The whole body is already in the read buffer (a small response):
		// hand it over from there rather than through a copy buffer.
		p, _ := fb.br.Peek(int(fb.n))
		if _, werr := rw.Write(p); werr != nil {
			rw.clientGone = true
			return false
		}
		_, _ = fb.br.Discard(len(p))
		fb.n = 0
		if flush {
			_ = rw.FlushError()
		}
	}
	var buf []byte
	defer func() {
		if buf != nil {
			h.bufs.Put(buf)
		}
	}()
	for {
		if buf == nil {
			if fb, ok := resp.Body.(*fixedBody); ok && fb.n == 0 {
				break // nothing left to read
			}
			buf = h.bufs.Get()
		}
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := rw.Write(buf[:n]); werr != nil {
				// The client is gone; the rest of the body is not worth reading.
				rw.clientGone = true
				return false
			}
			if flush {
				_ = rw.FlushError()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if r.Context().Err() != nil {
				rw.clientGone = true
				return false
			}
			uc.close()
			// The app broke off mid-body. Abort so the client does not take
			// a truncated body for a complete one (as ReverseProxy does).
			h.log.Warn("upstream response body cut short", "upstream", h.cfg.Upstream.Raw,
				"err", rerr.Error(), "method", r.Method, "path", r.URL.Path)
			panic(http.ErrAbortHandler)
		}
	}
	_ = resp.Body.Close()
	if len(resp.Trailer) > 0 {
		copyDirectTrailer(hdr, resp, announced)
	}
	return !resp.Close
}

// copyDirectTrailer passes resp's trailers on (see copyDirectHeader for why
// it is not inlined).
//
//go:noinline
func copyDirectTrailer(hdr http.Header, resp *http.Response, announced []string) {
	for k, vv := range resp.Trailer {
		if slices.Contains(announced, k) {
			hdr[k] = vv
		} else {
			hdr[http.TrailerPrefix+k] = vv // not announced up front
		}
	}
}

// copyDirectHeader fills the client's response header from resp's (when
// the fast parser did not already put them there). Not inlined: its map
// iterators would otherwise sit in copyDirectResponse's frame under every
// body write, deepening the stack of each HTTP/2 request's goroutine.
//
//go:noinline
func (h *Handler) copyDirectHeader(hdr http.Header, r *http.Request, resp *http.Response) (announced []string) {
	if conn := resp.Header["Connection"]; len(conn) > 0 {
		for k := range resp.Header {
			if listedIn(conn, k) {
				delete(resp.Header, k)
			}
		}
	}
	for _, k := range responseHopHeaders {
		delete(resp.Header, k)
	}
	for k, vv := range resp.Header {
		hdr[k] = vv
	}
	if len(resp.Trailer) > 0 {
		announced = make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			announced = append(announced, k)
		}
		hdr["Trailer"] = []string{strings.Join(announced, ", ")}
	}
	if h.hsts != nil && r.TLS != nil {
		hdr["Strict-Transport-Security"] = h.hsts[:1:1]
	}
	return announced
}

// isEventStream reports whether the response is server-sent events.
func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	if len(ct) == 0 {
		return false
	}
	const sse = "text/event-stream"
	v := strings.TrimSpace(ct[0])
	return len(v) >= len(sse) && strings.EqualFold(v[:len(sse)], sse) &&
		(len(v) == len(sse) || v[len(sse)] == ';' || v[len(sse)] == ' ')
}

// retryRefusedDial retries dial while the upstream refuses connections,
// with the same backoff as retryTransport, until RetryWindow or ctx ends.
func (h *Handler) retryRefusedDial(ctx context.Context, err error, dial func() error) error {
	if !isRefused(err) || h.cfg.RetryWindow <= 0 {
		return err
	}
	h.CloseIdle()
	deadline := time.Now().Add(h.cfg.RetryWindow)
	delay := retryBaseDelay
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	for {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return err
		}
		timer.Reset(min(jitter(delay), remaining))
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-timer.C:
		}
		h.m.retries.Inc()
		if err = dial(); err == nil || !isRefused(err) {
			return err
		}
		delay = min(2*delay, retryMaxDelay)
	}
}

// simpleResponse fills uc.resp for a response the fast parser took, whose
// headers are already in the client's header map (resp.Header stays nil).
// Not inlined: the literal would put a second http.Response in exchange's
// frame, under every request's upstream I/O.
//
//go:noinline
func (uc *upConn) simpleResponse(status int, cl int64, r *http.Request) *http.Response {
	resp := &uc.resp
	*resp = http.Response{StatusCode: status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		ContentLength: cl, Body: http.NoBody, Request: r}
	if cl > 0 {
		resp.Body = &uc.body
	}
	return resp
}
