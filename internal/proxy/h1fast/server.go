package h1fast

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultWatchDelay is how long a request runs before the server starts
// watching for the client to go away (see Server.WatchDelay).
const DefaultWatchDelay = 50 * time.Millisecond

// Server serves plain HTTP/1.1 requests itself and hands every other
// connection (HTTP/2, and HTTP/1.1 from its first request that is not
// plain) to HTTPServer. Use Listener to put it in front of HTTPServer.Serve
// and Shutdown next to HTTPServer.Shutdown.
type Server struct {
	// Handler serves the requests (required).
	Handler http.Handler
	// HTTPServer is the net/http server behind this one (required). Its
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout,
	// MaxHeaderBytes, ConnState and ErrorLog apply here too.
	HTTPServer *http.Server
	// WatchDelay is how long a request may run before a read in the
	// background watches for the client going away, which cancels the
	// request's context (0 = DefaultWatchDelay). net/http watches from the
	// start; a delay spares that cost for quick requests.
	WatchDelay time.Duration
	// ParkAfter is how long a keep-alive connection waits for its next
	// request before it gives back its goroutine and read buffer and waits
	// on the socket alone (0 = DefaultParkAfter, negative = never; see
	// park.go). Parked connections keep their timeouts and are closed by
	// Shutdown as idle ones are.
	ParkAfter time.Duration
	// OnPark, if set, is called with +1 when a connection parks and -1
	// when it leaves that state (a gauge's Add).
	OnPark func(delta float64)

	initOnce sync.Once
	handoff  chan net.Conn // connections for HTTPServer
	stopped  chan struct{} // closed by Shutdown and Close: no more handoffs
	stopOnce sync.Once
	shutting atomic.Bool
	noKeep   atomic.Bool // SetKeepAlivesEnabled(false)

	served atomic.Uint64
	parked atomic.Int64

	mu    sync.Mutex
	conns map[*conn]struct{}
}

// Parked reports how many of this server's connections are parked: idle
// for longer than ParkAfter, waiting without a goroutine or buffers.
func (s *Server) Parked() int { return int(s.parked.Load()) }

// Served reports how many requests this server has served itself.
func (s *Server) Served() uint64 { return s.served.Load() }

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.handoff = make(chan net.Conn)
		s.stopped = make(chan struct{})
		s.conns = make(map[*conn]struct{})
		if s.WatchDelay <= 0 {
			s.WatchDelay = DefaultWatchDelay
		}
	})
}

func (s *Server) shuttingDown() bool { return s.shutting.Load() }

// doKeepAlives reports whether connections may serve another request.
func (s *Server) doKeepAlives() bool { return !s.noKeep.Load() && !s.shutting.Load() }

// SetKeepAlivesEnabled mirrors http.Server's: with false, responses say
// "Connection: close" and their connections close after them, and idle
// connections are closed now; requests are still served (Shutdown stops
// that). Call it together with HTTPServer's.
func (s *Server) SetKeepAlivesEnabled(v bool) {
	s.init()
	s.noKeep.Store(!v)
	if !v {
		s.closeIdle()
	}
}

func (s *Server) logf(format string, args ...any) {
	if l := s.HTTPServer.ErrorLog; l != nil {
		l.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

func (s *Server) setState(c *conn, st http.ConnState) {
	c.state.Store(int32(st))
	if st == http.StateNew {
		// The hook hears of the connection with its first request (see
		// announce): one handed over before that is new to net/http.
		c.since.Store(time.Now().UnixNano())
		return
	}
	c.announce()
	if hook := s.HTTPServer.ConnState; hook != nil {
		hook(c.nc, st)
	}
}

func (s *Server) track(c *conn, add bool) {
	s.mu.Lock()
	if add {
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	s.mu.Unlock()
}

// Listener returns a listener for HTTPServer.Serve: it accepts from inner,
// serves HTTP/1.1 connections that can take back buffered bytes (the
// smuggling guard's connections) itself, and returns the others, and the
// ones it hands over, to HTTPServer.
func (s *Server) Listener(inner net.Listener) net.Listener {
	s.init()
	return &listener{s: s, inner: inner, accepted: make(chan accepted), done: make(chan struct{})}
}

// unreader is a connection that can take back bytes read but not used.
type unreader interface {
	net.Conn
	Unread([]byte)
}

type accepted struct {
	c   net.Conn
	err error
}

type listener struct {
	s         *Server
	inner     net.Listener
	pumpOnce  sync.Once
	accepted  chan accepted
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

func (l *listener) Accept() (net.Conn, error) {
	l.pumpOnce.Do(func() { go l.pump() })
	for {
		select {
		case c := <-l.s.handoff:
			return c, nil
		case a := <-l.accepted:
			if a.err != nil {
				return nil, a.err
			}
			return a.c, nil
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
}

func isH2(c net.Conn) bool {
	cs, ok := c.(interface{ ConnectionState() tls.ConnectionState })
	return ok && cs.ConnectionState().NegotiatedProtocol == "h2"
}

// pump accepts from inner: it starts serving the connections this server
// takes and moves the others to Accept, which also waits for handoffs.
func (l *listener) pump() {
	for {
		c, err := l.inner.Accept()
		if err == nil {
			if uc, ok := c.(unreader); ok && !isH2(c) && !l.s.shuttingDown() {
				go l.s.newConn(l, uc).serve()
				continue
			}
		}
		select {
		case l.accepted <- accepted{c, err}:
		case <-l.done:
			if c != nil {
				_ = c.Close()
			}
			return
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

func (l *listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.closeErr = l.inner.Close()
	})
	return l.closeErr
}

func (l *listener) Addr() net.Addr { return l.inner.Addr() }

// Shutdown stops handing connections over, closes idle connections, lets
// requests in progress finish (their responses say Connection: close), and
// returns when no connection is left or ctx ends (then with ctx's error;
// call Close to cut the rest). Call it together with HTTPServer.Shutdown,
// which closes the listener.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.shutting.Store(true)
	s.stopOnce.Do(func() { close(s.stopped) })
	wait := time.Millisecond
	for {
		if s.closeIdle() {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// closeIdle closes idle connections (and new ones that sent nothing for 5
// s, as net/http does) and reports whether none are left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		st := http.ConnState(c.state.Load())
		if st == http.StateIdle || (st == http.StateNew && time.Since(time.Unix(0, c.since.Load())) > 5*time.Second) {
			c.closeIdleConn()
		}
	}
	return len(s.conns) == 0
}

// Close closes every connection at once.
func (s *Server) Close() error {
	s.init()
	s.shutting.Store(true)
	s.stopOnce.Do(func() { close(s.stopped) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.closeIdleConn() // closes it, parked or not
	}
	return nil
}

// Open reports how many connections this server is serving.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
