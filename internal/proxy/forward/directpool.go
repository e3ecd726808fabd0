package forward

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// connPool keeps idle keep-alive connections to the upstream for the direct
// path, most recently used first (LIFO keeps a hot working set and lets the
// app's idle timeout reap the rest).
type connPool struct {
	dialer      net.Dialer
	network     string
	addr        string
	max         int
	idleTimeout time.Duration

	mu      sync.Mutex
	idle    []*upConn
	reaping bool // a reap is scheduled
}

// maxResponseHeaderBytes bounds the app's response header, as
// http.Transport.MaxResponseHeaderBytes does on the ReverseProxy path.
const maxResponseHeaderBytes = 1 << 20

var errHeadersTooLarge = errors.New("forward: upstream response headers exceed 1 MiB")

// headerLimit caps the bytes read from the connection while a response
// header is being parsed; it is lifted for the body.
type headerLimit struct {
	r   io.Reader
	n   int64
	err error // the last read error from r (the connection died: EOF, reset)
}

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeadersTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if err != nil {
		l.err = err
	}
	return n, err
}

func newConnPool(cfg *Config) *connPool {
	p := &connPool{
		dialer:      net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second},
		network:     "tcp",
		addr:        cfg.Upstream.Addr,
		max:         cfg.MaxIdleConns,
		idleTimeout: cfg.IdleConnTimeout,
	}
	if cfg.Upstream.Scheme == SchemeUnix {
		p.network = "unix"
	}
	return p
}

// upConn is one upstream connection with its buffers.
type upConn struct {
	nc        net.Conn
	lim       headerLimit
	br        *bufio.Reader   // nil while idle in the pool
	bw        *bufio.Writer   // nil while idle in the pool
	w         io.Writer       // upstreamWriter{nc}, converted once
	rc        syscall.RawConn // for the liveness peek; nil if unavailable
	peek      func(fd uintptr) bool
	abortFn   func() // abort, bound once so each request does not allocate it
	peekAlive bool
	idleSince time.Time
	rdl       time.Time     // read deadline currently set (zero = none)
	resp      http.Response // reused by the fast response parser
	body      fixedBody     // resp.Body of a fast-parsed response
	reused    bool
	aborted   atomic.Bool
}

// upstreamWriter marks write failures so they can be told apart from
// failures reading the client's body in the same io.Copy.
type upstreamWriter struct{ nc net.Conn }

func (w upstreamWriter) Write(p []byte) (int, error) {
	n, err := w.nc.Write(p)
	if err != nil {
		err = &upstreamWriteError{err}
	}
	return n, err
}

// dial opens a new connection.
func (p *connPool) dial(ctx context.Context) (*upConn, error) {
	nc, err := p.dialer.DialContext(ctx, p.network, p.addr)
	if err != nil {
		return nil, err
	}
	uc := &upConn{nc: nc, lim: headerLimit{r: nc, n: math.MaxInt64}, w: upstreamWriter{nc}}
	uc.takeBuffers()
	uc.abortFn = uc.abort
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			uc.rc = rc
			uc.peek = uc.peekFD // bound once, so each check does not allocate
		}
	}
	return uc, nil
}

// get returns an idle connection that is still open, or nil; now is the
// current time.
func (p *connPool) get(now time.Time) *upConn {
	p.mu.Lock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		uc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if now.Sub(uc.idleSince) < p.idleTimeout && uc.alive() {
			uc.reused = true
			uc.takeBuffers()
			return uc
		}
		uc.close()
		p.mu.Lock()
	}
	p.mu.Unlock()
	return nil
}

// put returns a connection after a clean exchange. It also retires the
// oldest idle connection if it outlived the idle timeout, so a pool under
// traffic does not keep connections the app is about to close.
func (p *connPool) put(uc *upConn) {
	uc.releaseBuffers()
	uc.idleSince = time.Now()
	var old *upConn
	p.mu.Lock()
	if len(p.idle) >= p.max {
		p.mu.Unlock()
		uc.close()
		return
	}
	if len(p.idle) > 0 && uc.idleSince.Sub(p.idle[0].idleSince) >= p.idleTimeout {
		old = p.idle[0]
		copy(p.idle, p.idle[1:])
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
	}
	p.idle = append(p.idle, uc)
	if !p.reaping {
		p.reaping = true
		time.AfterFunc(p.idleTimeout, p.reap)
	}
	p.mu.Unlock()
	if old != nil {
		old.close()
	}
}

// reap closes connections idle longer than the idle timeout, so that a pool
// without traffic does not hold sockets the app has long closed. It
// reschedules itself while connections remain.
func (p *connPool) reap() {
	now := time.Now()
	var expired []*upConn
	p.mu.Lock()
	keep := p.idle[:0]
	for _, uc := range p.idle {
		if now.Sub(uc.idleSince) >= p.idleTimeout {
			expired = append(expired, uc)
		} else {
			keep = append(keep, uc)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.reaping = len(p.idle) > 0
	if p.reaping {
		time.AfterFunc(p.idleTimeout, p.reap)
	}
	p.mu.Unlock()
	for _, uc := range expired {
		uc.close()
	}
}

// closeIdle closes every idle connection.
func (p *connPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, uc := range idle {
		uc.close()
	}
}

func (c *upConn) close() { _ = c.nc.Close() }

// Buffers of upstream connections: 4 KiB each way, as http.Transport uses
// (bodies bypass them: large reads go straight to the caller's buffer).
// An idle pooled connection holds none: after a burst the pool may keep
// hundreds of connections until their idle timeout, and 8 KiB each of
// buffers they do not use.
var (
	upReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	upWriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

// takeBuffers gives a connection leaving the pool (or new) its buffers.
func (c *upConn) takeBuffers() {
	c.br = upReaderPool.Get().(*bufio.Reader)
	c.br.Reset(&c.lim)
	c.bw = upWriterPool.Get().(*bufio.Writer)
	c.bw.Reset(c.w)
}

// releaseBuffers gives the buffers of a connection entering the pool back,
// with the last response that referred to them: a clean exchange left
// nothing in them (canReuse).
func (c *upConn) releaseBuffers() {
	c.body = fixedBody{}
	c.resp = http.Response{}
	c.br.Reset(nil)
	upReaderPool.Put(c.br)
	c.bw.Reset(nil)
	upWriterPool.Put(c.bw)
	c.br, c.bw = nil, nil
}

// armReadDeadline ensures a read deadline at least d after now is set.
// Setting a deadline costs a runtime timer update, so an armed one is kept
// while it is still at least d away, and a new one gets slack added
// (deadlineSlack): the timeout then fires between d and d+slack after the
// request, never early, and a busy connection re-arms a few times per second
// rather than twice per request.
func (c *upConn) armReadDeadline(now time.Time, d time.Duration) {
	want := now.Add(d)
	if !c.rdl.IsZero() && !c.rdl.Before(want) {
		return
	}
	c.rdl = want.Add(deadlineSlack(d))
	_ = c.nc.SetReadDeadline(c.rdl)
}

// clearReadDeadline removes the read deadline, if one is set.
func (c *upConn) clearReadDeadline() {
	if !c.rdl.IsZero() {
		c.rdl = time.Time{}
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}

// maxDeadlineSlack bounds how late an upstream timeout may fire.
const maxDeadlineSlack = 250 * time.Millisecond

// deadlineSlack is how much later than d an upstream timeout may fire: 1/16
// of it, at most maxDeadlineSlack.
func deadlineSlack(d time.Duration) time.Duration {
	return min(d/16, maxDeadlineSlack)
}

// aLongTimeAgo is a deadline in the past: it wakes blocked reads and writes.
var aLongTimeAgo = time.Unix(1, 0)

// abort interrupts a blocked exchange when the client goes away.
func (c *upConn) abort() {
	c.aborted.Store(true)
	_ = c.nc.SetDeadline(aLongTimeAgo)
}

// canReuse reports whether the connection is in a clean state for the next
// request: not aborted, and no unread bytes from the app.
func (c *upConn) canReuse() bool {
	return !c.aborted.Load() && c.br.Buffered() == 0
}

// alive peeks at the socket without blocking: an idle keep-alive connection
// must have nothing to read. EOF means the app closed it (restart, idle
// timeout); unsolicited bytes mean it is out of step. Either way it is not
// reused. This avoids sending a request, possibly a non-idempotent one, on
// a connection that is already gone.
func (c *upConn) alive() bool {
	if c.rc == nil {
		return true
	}
	c.peekAlive = false
	if err := c.rc.Read(c.peek); err != nil {
		return false
	}
	return c.peekAlive
}
