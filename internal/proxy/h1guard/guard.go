package h1guard

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a guarded connection.
type Options struct {
	// OnReject is called once per refused connection with the reason (one of
	// the Reason* constants), e.g. to count it in a metric. It may be nil.
	// It runs on the connection's reading goroutine and must not block.
	OnReject func(reason string)
	// MaxHeaderBytes must equal the http.Server's MaxHeaderBytes (0 means
	// http.DefaultMaxHeaderBytes). Like net/http, the guard allows 4096 bytes
	// of slack; a larger header block is not scanned further so that
	// net/http answers it with 431.
	MaxHeaderBytes int
}

// ErrRejected is returned by Read on a connection whose request was refused
// while a handler was reading that request's body (a malformed chunked body).
var ErrRejected = errors.New("h1guard: request refused")

// rejectResponse is written to the client instead of handing the request to
// net/http.
const rejectResponse = "HTTP/1.1 400 Bad Request\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Length: 12\r\n" +
	"Connection: close\r\n" +
	"\r\n" +
	"Bad Request\n"

// Conn is a guarded connection. It is returned by Wrap for connections that
// are not *tls.Conn.
type Conn struct {
	net.Conn
	onReject func(string)
	sc       scanner
	// httpState is the last http.ConnState reported through ConnState, or
	// -1 if none was; it tells a background read from a request read.
	httpState atomic.Int32
	// hooked is set once net/http reported any state: the ConnState hook is
	// installed, so Upgrade can be followed through StateHijacked.
	hooked atomic.Bool
	// written counts bytes written to the client; writtenAtActive is its
	// value when net/http last reported StateActive (a request's head was
	// read, every earlier response was flushed). Equal values mean nothing
	// of the current request's response has been written yet.
	written, writtenAtActive atomic.Int64
	// reason is set once a violation is found; bytes before it have been
	// returned, the violating bytes never are.
	reason   string
	answered bool // the 400 has been written (or a body read failed)
	wmu      sync.Mutex
	closed   atomic.Bool // set after the 400: Write fails
	// No read buffer lives here: every idle keep-alive connection carries
	// this struct, and only a refused one needs to discard input
	// (discardBuf).
	// pending holds bytes given back with Unread; Read returns them first.
	pending []byte
}

// discardBuf is the size of the buffer a refused connection reads into
// while it waits or lingers.
const discardBuf = 256

// TLSConn is a guarded *tls.Conn. net/http does not see a *tls.Conn, but
// it fills Request.TLS from ConnectionState.
type TLSConn struct {
	Conn
	tc *tls.Conn
}

// ConnectionState reports the TLS state of the underlying *tls.Conn; net/http
// uses it to set Request.TLS.
func (c *TLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// NetConn returns the wrapped *tls.Conn.
func (c *TLSConn) NetConn() net.Conn { return c.tc }

// Wrap returns a net.Conn that passes the bytes of c through to an HTTP/1.1
// server unchanged while scanning each request's framing. On a violation it
// writes a minimal 400 response with "Connection: close" to c, calls
// opts.OnReject, and makes Read return io.EOF, so net/http never sees the
// request. If c is a *tls.Conn the result is a *TLSConn, otherwise a *Conn;
// a *tls.Conn must have completed its handshake before net/http serves the
// result, because net/http reads ConnectionState first (NewTLSListener
// does this).
func Wrap(c net.Conn, opts Options) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		t := &TLSConn{tc: tc}
		t.init(c, opts)
		return t
	}
	g := &Conn{}
	g.init(c, opts)
	return g
}

func (c *Conn) init(nc net.Conn, opts Options) {
	c.Conn = nc
	c.onReject = opts.OnReject
	limit := opts.MaxHeaderBytes
	if limit <= 0 {
		limit = http.DefaultMaxHeaderBytes
	}
	c.sc.limit = limit + 4096
	c.httpState.Store(-1)
}

// NetConn returns the wrapped connection.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Read reads from the connection, returning only bytes that precede a
// violation.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		// Already scanned on their first way through.
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
		return n, nil
	}
	if c.reason != "" {
		return c.refuse()
	}
	if c.sc.st == stPass && c.sc.tunnel && c.sc.after == 0 && c.httpState.Load() == int32(http.StateIdle) {
		// The handler did not take over the tunnel (no Hijack) and net/http
		// waits for the next request, no byte of which was read yet:
		// scanning resumes in step, so Upgrade cannot switch it off.
		c.sc.reset()
	}
	c.sc.hijackAware = c.hooked.Load()
	n, err := c.Conn.Read(p)
	if n == 0 || c.sc.st == stPass || c.httpState.Load() == int32(http.StateHijacked) {
		c.sc.after += n
		return n, err
	}
	i, reason := c.sc.scan(p[:n])
	if reason == "" {
		return n, err
	}
	c.reason = reason
	if c.onReject != nil {
		c.onReject(reason)
	}
	if i > 0 {
		// Hand over what precedes the violation (earlier pipelined requests,
		// the start of this one); the refusal follows on the next Read.
		return i, nil
	}
	return c.refuse()
}

// Unread gives back bytes that an earlier reader took from c but did not
// use, so that the next reader of c gets them first: a server that hands a
// connection over to another one passes on what it had buffered. p must be
// exactly the bytes most recently read and not consumed, and no Read may run
// concurrently. The bytes are not scanned again.
func (c *Conn) Unread(p []byte) {
	if len(p) == 0 {
		return
	}
	c.pending = append(append(make([]byte, 0, len(p)+len(c.pending)), p...), c.pending...)
}

// refuse answers a Read once a violation was found.
func (c *Conn) refuse() (int, error) {
	if c.answered {
		return 0, io.EOF
	}
	switch http.ConnState(c.httpState.Load()) {
	case http.StateActive:
		if c.sc.st >= stBody {
			// The handler is reading the violating request's body: fail
			// it; net/http then closes the connection. If the handler has
			// not written a byte of its response yet, the 400 is ours to
			// send now (and its later writes are refused): otherwise a
			// handler that sees the connection's context cancelled by this
			// very error may leave net/http to send an empty 200.
			c.answered = true
			if c.hooked.Load() && c.written.Load() == c.writtenAtActive.Load() {
				c.wmu.Lock()
				if !c.closed.Load() {
					_, _ = io.WriteString(c.Conn, rejectResponse)
					c.closed.Store(true)
				}
				c.wmu.Unlock()
			}
			return 0, ErrRejected
		}
		// A background read while an earlier request is being handled:
		// writing now would interleave with its response, and an error
		// would cancel it. Wait like a read with no data would, until
		// net/http aborts this read (deadline) or the client goes away.
		buf := make([]byte, discardBuf)
		for {
			if _, err := c.Conn.Read(buf); err != nil {
				return 0, err
			}
		}
	}
	// net/http is reading a request: no response is in flight.
	c.answered = true
	c.wmu.Lock()
	_, err := io.WriteString(c.Conn, rejectResponse)
	c.closed.Store(true)
	c.wmu.Unlock()
	if err == nil {
		c.linger()
	}
	return 0, io.EOF
}

// Lingering bounds: closing a socket with unread input makes the kernel send
// a RST, which can destroy the 400 before the client reads it. net/http
// avoids this the same way (closeWriteAndWait).
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 64 << 10
)

// linger half-closes the connection and discards what the client still
// sends, for a bounded time and amount, so the 400 reaches it.
func (c *Conn) linger() {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	if c.Conn.SetReadDeadline(time.Now().Add(lingerTime)) != nil {
		return
	}
	buf := make([]byte, discardBuf)
	for n := 0; n < lingerBytes; {
		m, err := c.Conn.Read(buf)
		if err != nil {
			return
		}
		n += m
	}
}

// CloseWrite shuts down the writing side if the wrapped connection supports
// it (*net.TCPConn, *tls.Conn); net/http uses it to close gracefully.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// errRefused is returned by Write after the 400 was written, so net/http's
// own error response does not follow it.
var errRefused = &net.OpError{Op: "write", Net: "tcp", Err: ErrRejected}

// Write writes to the connection unless the guard has already answered it.
func (c *Conn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, errRefused
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return 0, errRefused
	}
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// setHTTPState records net/http's view of the connection.
func (c *Conn) setHTTPState(s http.ConnState) {
	if s == http.StateActive {
		c.writtenAtActive.Store(c.written.Load())
	}
	c.httpState.Store(int32(s))
	c.hooked.Store(true)
}

type guarded interface{ setHTTPState(http.ConnState) }

// ConnState returns an http.Server.ConnState hook that tells guarded
// connections what net/http is doing with them, then calls next (if not nil).
// Without it a refusal that follows a pipelined request can be written
// while that request's response is still being written.
func ConnState(next func(net.Conn, http.ConnState)) func(net.Conn, http.ConnState) {
	return func(nc net.Conn, s http.ConnState) {
		if g, ok := nc.(guarded); ok {
			g.setHTTPState(s)
		}
		if next != nil {
			next(nc, s)
		}
	}
}

// WrapListener returns a listener whose accepted connections are wrapped by
// Wrap. Use it for plain-text HTTP/1.1 listeners; see the package
// documentation for TLS.
func WrapListener(l net.Listener, opts Options) net.Listener {
	return &listener{Listener: l, opts: opts}
}

type listener struct {
	net.Listener
	opts Options
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c, l.opts), nil
}
