package configapi

import (
	"bytes"
	"net/url"
	"sync"
	"time"
)

// Re-arms. A parked watcher's next request is almost always its next long
// poll. When that request is of the plainest form — GET
// /v1/configs/{name}?wait=… over HTTP/1.1 with one Host, one If-None-Match,
// at most one Authorization, no body or connection-level headers, nothing
// pipelined after it — and would wait, the watcher's goroutine parks it
// again itself instead of handing the connection back to the http.Server,
// which would set up a new connection (goroutine, buffers, contexts) for
// each re-arm. Anything else, including every request that would be
// refused or answered at once, goes to the http.Server with the bytes
// read so far, so that the server's own parsing, limits, error answers and
// logs apply to it unchanged. The checks here are stricter than
// net/http's, never looser: a request this parser accepts is one net/http
// would accept and route to the same long poll.

// rearmHeadMax bounds the request head taken here; a longer one goes to
// the http.Server (whose limit is far larger). rearmFirstRead is what a
// parked watcher reads when its connection becomes readable, enough for a
// typical re-arm.
const (
	rearmHeadMax   = 2048
	rearmFirstRead = 320
)

var headPool = sync.Pool{New: func() any { b := make([]byte, 0, rearmHeadMax); return &b }}

// rearm reads the rest of the request that starts with first. It returns the watcher
// parked anew, or else the bytes read, to be served by the http.Server
// (nil: close the connection, as net/http does when a request head does
// not arrive within its header timeout).
func (a *api) rearm(p *parked, first []byte) (next *parked, pre []byte) {
	h := a.hub
	bp := headPool.Get().(*[]byte)
	defer headPool.Put(bp)
	buf := append((*bp)[:0], first...)
	fallback := func() (*parked, []byte) { return nil, append([]byte(nil), buf...) }
	end := -1
	for deadline := false; ; {
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			end = i + 4
			break
		}
		if len(buf) == cap(buf) {
			return fallback() // too long for here
		}
		if !deadline {
			// The rest of the head must come within the server's
			// header timeout.
			deadline = true
			if h.hdrTimeout > 0 {
				_ = p.conn.SetReadDeadline(time.Now().Add(h.hdrTimeout))
			} else {
				_ = p.conn.SetReadDeadline(time.Time{})
			}
			select {
			case <-h.closing: // the sweep may have run before the deadline was set
				return nil, nil
			default:
			}
		}
		n, err := p.conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if n > 0 {
				continue // look at what arrived; the next read fails again
			}
			return nil, nil
		}
	}
	if end != len(buf) {
		return fallback() // pipelined bytes after the head
	}
	rq, ok := parseRearmHead(buf)
	if !ok {
		return fallback()
	}
	ri := &reqInfo{start: time.Now(), longPoll: true}
	if _, e := a.authorizeHeader(rq.auth, ri, RoleRead, rq.name); e != nil {
		return fallback()
	}
	q, err := url.ParseQuery(rq.query)
	if err != nil || q.Has("version") || !q.Has("wait") {
		return fallback()
	}
	wait, e := a.parseWait(q.Get("wait"))
	if e != nil || wait <= 0 {
		return fallback()
	}
	inm, hasINM, err := parseETags(rq.inm)
	if err != nil || !hasINM {
		return fallback()
	}
	select {
	case <-h.closing:
		return nil, nil
	default:
	}
	e2 := h.acquire(rq.name)
	if st := e2.state.Load(); st.latest < 0 || !inm.matches(st.latest) {
		h.release(rq.name, e2)
		return fallback() // answered at once by the handler
	}
	np := &parked{
		conn: p.conn, name: rq.name, e: e2, matches: inm.matches, start: ri.start, wait: wait,
		path: "/v1/configs/" + rq.name, remote: p.remote, token: ri.token,
	}
	_ = np.conn.SetReadDeadline(np.start.Add(wait))
	h.live.Store(np, struct{}{})
	h.park(np)
	return np, nil
}

// rearmReq is what a re-arm request carries.
type rearmReq struct {
	name, query, auth, inm string
}

// parseRearmHead parses a whole request head (ending in an empty line)
// if it is a long poll of the plainest form; ok is false for anything
// else.
func parseRearmHead(head []byte) (r rearmReq, ok bool) {
	const prefix, proto = "GET /v1/configs/", " HTTP/1.1"
	line, rest, ok := cutCRLF(head)
	if !ok || !bytes.HasPrefix(line, []byte(prefix)) || !bytes.HasSuffix(line, []byte(proto)) || len(line) < len(prefix)+len(proto) {
		return r, false
	}
	target := line[len(prefix) : len(line)-len(proto)]
	for _, c := range target {
		if c <= ' ' || c >= 0x7f || c == '%' || c == '#' {
			return r, false
		}
	}
	name, query, _ := bytes.Cut(target, []byte("?"))
	if ValidName(string(name)) != nil {
		return r, false // includes any further '/': other routes
	}
	r.name, r.query = string(name), string(query)
	hosts, auths, inms := 0, 0, 0
	for {
		line, rest, ok = cutCRLF(rest)
		if !ok {
			return r, false
		}
		if len(line) == 0 {
			break
		}
		k, v, found := bytes.Cut(line, []byte(":"))
		if !found || len(k) == 0 {
			return r, false
		}
		for _, c := range k {
			if !isTokenChar(c) {
				return r, false
			}
		}
		v = bytes.Trim(v, " \t")
		for _, c := range v {
			if (c < ' ' && c != '\t') || c >= 0x7f {
				return r, false
			}
		}
		switch {
		case bytes.EqualFold(k, []byte("Host")):
			hosts++
			if len(v) == 0 {
				return r, false
			}
			for _, c := range v {
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_') {
					return r, false
				}
			}
		case bytes.EqualFold(k, []byte("Authorization")):
			auths++
			r.auth = string(v)
		case bytes.EqualFold(k, []byte("If-None-Match")):
			inms++
			r.inm = string(v)
		case framingHeader(k):
			return r, false
		}
	}
	return r, hosts == 1 && auths <= 1 && inms == 1 && len(rest) == 0
}

// framingHeader: headers about the body, the connection or protocol
// switches, which the http.Server handles.
func framingHeader(k []byte) bool {
	for _, h := range [...]string{"Content-Length", "Transfer-Encoding", "Connection", "Upgrade", "Expect", "Te", "Trailer", "Keep-Alive", "Proxy-Connection", "Http2-Settings"} {
		if bytes.EqualFold(k, []byte(h)) {
			return true
		}
	}
	return false
}

// cutCRLF splits off one line ending in CRLF; false for a bare CR or LF.
func cutCRLF(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, b[i+1:], true
}

// isTokenChar reports whether c may appear in a header field name (RFC
// 9110 tchar).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}
