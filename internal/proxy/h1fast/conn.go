package h1fast

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// conn is one connection served by Server.
type conn struct {
	s        *Server
	nc       unreader
	br       *bufio.Reader
	bw       *bufio.Writer
	werr     error // first write error, as net/http's checkConnErrorWriter
	tlsState *tls.ConnectionState
	remote   string
	raw      syscall.RawConn // the socket, if the connection can park (park.go)
	pstate   atomic.Uint32   // parkNone, parkWaiting, parkClaimed
	pid      int32           // registration id while parked, else -1
	ptimer   *time.Timer     // a parked connection's idle deadline
	ctx      context.Context // ends when the client is gone or the connection closes
	cancel   context.CancelFunc
	state    atomic.Int32 // http.ConnState
	since    atomic.Int64 // when StateNew was entered (UnixNano); read by closeIdle
	res      *response    // from responsePool while the connection is not parked
	rdl      bool         // a read deadline is set
	// announced is set once the ConnState hook was told StateNew: at the
	// first request served here, or when the connection closes.
	announced bool
	// requests counts the requests that arrived; firstBy and idleBy are
	// the read deadlines of the wait for the first and for the next one.
	requests        int
	firstBy, idleBy time.Time

	// The background read (see watch).
	timer     *time.Timer
	wmu       sync.Mutex
	wcond     sync.Cond
	inRequest bool
	watching  bool
	aborting  bool
	hasByte   bool
	byteBuf   [1]byte
	gone      bool // the background read failed: the client is gone
}

// aLongTimeAgo is a deadline in the past: it wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// connReader feeds the request reader, starting with a byte the background
// read may have taken.
type connReader struct{ c *conn }

func (r connReader) Read(p []byte) (int, error) {
	c := r.c
	if c.hasByte && len(p) > 0 {
		p[0] = c.byteBuf[0]
		c.hasByte = false
		return 1, nil
	}
	return c.nc.Read(p)
}

// connWriter records the first write error and ends the connection's
// context, as net/http does.
type connWriter struct{ c *conn }

func (w connWriter) Write(p []byte) (int, error) {
	n, err := w.c.nc.Write(p)
	if err != nil && w.c.werr == nil {
		w.c.werr = err
		w.c.cancel()
	}
	return n, err
}

// putResponse gives the response state back to responsePool. A handler must
// not use its ResponseWriter after it returned (as with net/http); the
// state is reused only once the connection parks or ends, well after that.
func (c *conn) putResponse() {
	if c.res != nil {
		*c.res = response{}
		responsePool.Put(c.res)
		c.res = nil
	}
}

var (
	responsePool = sync.Pool{New: func() any { return new(response) }}
	readerPool   = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writerPool   = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

// newConn sets up a connection's state and reports it as new, on the
// accepting goroutine as net/http does: from then on Shutdown sees it, and
// the ConnContext hook (the proxy's fresh-connection count) has run.
func (s *Server) newConn(ln net.Listener, nc unreader) *conn {
	c := &conn{s: s, nc: nc, remote: nc.RemoteAddr().String(), pid: -1}
	c.raw = rawConnOf(nc)
	c.wcond.L = &c.wmu
	if cs, ok := nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
		st := cs.ConnectionState()
		c.tlsState = &st
	}
	// The context chain net/http builds: BaseContext, the server, the
	// connection's ConnContext, the local address.
	base := context.Background()
	if s.HTTPServer.BaseContext != nil {
		base = s.HTTPServer.BaseContext(ln)
	}
	base = context.WithValue(base, http.ServerContextKey, s.HTTPServer)
	if cc := s.HTTPServer.ConnContext; cc != nil {
		base = cc(base, nc)
	}
	base = context.WithValue(base, http.LocalAddrContextKey, nc.LocalAddr())
	c.ctx, c.cancel = context.WithCancel(base)
	s.track(c, true)
	s.setState(c, http.StateNew)
	return c
}

// serve runs the connection on its own goroutine.
func (c *conn) serve() {
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(connReader{c})
	c.timer = time.AfterFunc(time.Hour, c.watch)
	c.timer.Stop()
	c.run()
}

// run serves requests until the connection ends, is handed over, or parks.
func (c *conn) run() {
	for {
		switch c.loop() {
		case loopHandedOver:
			return
		case loopParked:
			if c.park(c.waitDeadline(time.Now())) { // fixed by the wait that parked
				return
			}
			// Could not park: it waits with a normal read now.
		default:
			c.end()
			return
		}
	}
}

// end closes the connection and forgets it.
func (c *conn) end() {
	if c.bw != nil {
		_ = c.bw.Flush()
	}
	_ = c.nc.Close()
	c.cancel()
	c.release()
	c.s.track(c, false)
	c.s.setState(c, http.StateClosed)
}

func (s *Server) readHeaderTimeout() time.Duration {
	if d := s.HTTPServer.ReadHeaderTimeout; d != 0 {
		return d
	}
	return s.HTTPServer.ReadTimeout
}

func (s *Server) idleTimeout() time.Duration {
	if d := s.HTTPServer.IdleTimeout; d != 0 {
		return d
	}
	return s.HTTPServer.ReadTimeout
}

func (s *Server) maxHeaderBytes() int {
	if n := s.HTTPServer.MaxHeaderBytes; n > 0 {
		return n
	}
	return http.DefaultMaxHeaderBytes
}

func (c *conn) setReadDeadline(t time.Time) {
	if t.IsZero() && !c.rdl {
		return
	}
	c.rdl = !t.IsZero()
	_ = c.nc.SetReadDeadline(t)
}

func (c *conn) release() {
	c.putResponse()
	if c.br != nil {
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.br = nil
	}
	c.putWriter()
}

// getWriter takes a write buffer for a response. Idle connections hold
// none, which keeps thousands of idle keep-alive connections cheap.
func (c *conn) getWriter() {
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(connWriter{c})
}

func (c *conn) putWriter() {
	if c.bw != nil {
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
		c.bw = nil
	}
}

// waitDeadline returns the read deadline of the wait for the next request
// (zero: none), fixed when the wait begins (at now) and kept across
// parking: the first request's, ReadHeaderTimeout from the start, or the
// idle one.
func (c *conn) waitDeadline(now time.Time) time.Time {
	s := c.s
	if c.requests == 0 {
		if d := s.readHeaderTimeout(); d > 0 {
			if c.firstBy.IsZero() {
				c.firstBy = now.Add(d)
			}
			return c.firstBy
		}
	} else if d := s.idleTimeout(); d > 0 {
		if c.idleBy.IsZero() {
			c.idleBy = now.Add(d)
		}
		return c.idleBy
	}
	return time.Time{}
}

// loop's outcomes.
const (
	loopEnded      = iota // the connection is to be closed
	loopHandedOver        // net/http has it
	loopParked            // it waits for its next request without a goroutine (park.go)
)

// loop serves requests until the connection ends, is handed over to
// net/http, or parks. It keeps the read deadline of a wait across parking:
// the first request's (ReadHeaderTimeout from the start), or the idle one.
func (c *conn) loop() int {
	s := c.s
	for {
		if c.br.Buffered() == 0 {
			now := time.Now()
			switch err := c.fill(c.waitDeadline(now), now); {
			case err == errParked:
				return loopParked
			case err != nil:
				return loopEnded
			}
		}
		c.idleBy = time.Time{}
		c.requests++
		if s.shuttingDown() {
			return loopEnded // as net/http: a request that arrives during shutdown is not served
		}
		buf, _ := c.br.Peek(c.br.Buffered())
		n, ok := plainHead(buf, s.maxHeaderBytes())
		if !ok {
			c.handOver()
			return loopHandedOver
		}
		// The request context is the connection's (see the package doc).
		req, err := parsePlain(c.ctx, buf[:n])
		_, _ = c.br.Discard(n)
		s.setState(c, http.StateActive)
		if err != nil {
			// plainHead admits nothing http.ReadRequest refuses
			// (FuzzParsePlain); answer as net/http would if it did.
			_, _ = io.WriteString(c.nc, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request")
			return loopEnded
		}
		if !c.serveRequest(req) {
			return loopEnded
		}
		s.setState(c, http.StateIdle)
		if !s.doKeepAlives() {
			return loopEnded // as net/http: the response said Connection: close
		}
	}
}

// serveRequest runs the handler for req and reports whether the connection
// can be kept.
func (c *conn) serveRequest(req *http.Request) (keep bool) {
	s := c.s
	req.RemoteAddr = c.remote
	req.TLS = c.tlsState
	if d := s.HTTPServer.WriteTimeout; d > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(d))
	}
	s.served.Add(1)
	c.getWriter()
	hdr := make(http.Header, 4)
	if c.res == nil {
		c.res = responsePool.Get().(*response)
	}
	c.res.reset(c, req, hdr)
	c.startRequest()
	panicked := true
	func() {
		defer func() {
			if !panicked {
				return
			}
			if err := recover(); err != nil && err != http.ErrAbortHandler {
				const size = 64 << 10
				buf := make([]byte, size)
				buf = buf[:runtime.Stack(buf, false)]
				s.logf("http: panic serving %v: %v\n%s", c.remote, err, buf)
			}
		}()
		s.Handler.ServeHTTP(c.res, req)
		panicked = false
	}()
	c.endRequest()
	if panicked {
		c.res.release()
		return false
	}
	c.res.finish()
	c.putWriter() // flushed by finish
	if s.HTTPServer.WriteTimeout > 0 {
		_ = c.nc.SetWriteDeadline(time.Time{})
	}
	return c.res.reusable() && !c.gone
}

// announce tells the ConnState hook about the connection, once.
func (c *conn) announce() {
	if c.announced {
		return
	}
	c.announced = true
	if hook := c.s.HTTPServer.ConnState; hook != nil {
		hook(c.nc, http.StateNew)
	}
}

// handOver passes the connection, with what is buffered, to net/http.
func (c *conn) handOver() {
	s := c.s
	if n := c.br.Buffered(); n > 0 {
		buf, _ := c.br.Peek(n)
		c.nc.Unread(buf)
	}
	c.setReadDeadline(time.Time{}) // net/http sets its own
	c.release()
	c.cancel()
	s.track(c, false)
	// A connection handed over before its first request was never
	// announced: to net/http's hooks it is simply new (its ConnContext
	// then finds what this server's call set up, e.g. the proxy's
	// fresh-connection mark). One that served requests here leaves, and
	// comes back as new.
	if c.announced {
		s.setState(c, http.StateClosed)
	}
	select {
	case s.handoff <- c.nc:
	case <-s.stopped:
		_ = c.nc.Close()
	}
}

// startRequest arms the background read for a request.
func (c *conn) startRequest() {
	c.wmu.Lock()
	c.inRequest = true
	c.wmu.Unlock()
	c.timer.Reset(c.s.WatchDelay)
}

// watch runs WatchDelay into a request: it reads from the connection until
// the client sends more (a pipelined request: the byte is kept), goes away
// (the connection's context is cancelled) or endRequest stops it.
func (c *conn) watch() {
	c.wmu.Lock()
	if !c.inRequest || c.watching || c.aborting {
		c.wmu.Unlock()
		return
	}
	c.watching = true
	// The idle deadline set before the request must not end this read.
	c.setReadDeadline(time.Time{})
	c.wmu.Unlock()

	n, err := c.nc.Read(c.byteBuf[:])

	c.wmu.Lock()
	if n == 1 {
		c.hasByte = true
	}
	var ne net.Error
	if err != nil && !(c.aborting && errors.As(err, &ne) && ne.Timeout()) {
		c.gone = true
		c.cancel()
	}
	c.watching = false
	c.wcond.Broadcast()
	c.wmu.Unlock()
}

// endRequest stops the background read, waiting for it if it runs.
func (c *conn) endRequest() {
	c.timer.Stop()
	c.wmu.Lock()
	c.inRequest = false
	if c.watching {
		c.aborting = true
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
		for c.watching {
			c.wcond.Wait()
		}
		c.aborting = false
		c.rdl = true // cleared by the next setReadDeadline
	}
	c.wmu.Unlock()
}
