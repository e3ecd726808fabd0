package h1guard

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// TLSOptions configure NewTLSListener.
type TLSOptions struct {
	Options
	// HandshakeTimeout bounds each TLS handshake (0: 10s). It replaces
	// http.Server.TLSHandshakeTimeout, which only applies to *tls.Conn.
	HandshakeTimeout time.Duration
	// OnHandshakeError is called for each failed handshake (may be nil). It
	// replaces net/http's "TLS handshake error" log line.
	OnHandshakeError func(remote net.Addr, err error)
}

// NewTLSListener returns a listener that accepts raw connections from inner,
// performs the TLS handshake with cfg in a goroutine per connection (never
// in Accept), and returns:
//   - the *tls.Conn itself when ALPN negotiated "h2", so net/http hands it to
//     TLSNextProto["h2"] exactly as with tls.NewListener;
//   - otherwise (HTTP/1.1, no ALPN) a *TLSConn guarding the *tls.Conn; net/http
//     serves it as HTTP/1.1 and fills Request.TLS from its ConnectionState.
//
// Closing the listener closes inner and aborts handshakes in progress.
func NewTLSListener(inner net.Listener, cfg *tls.Config, opts TLSOptions) net.Listener {
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &tlsListener{
		inner:    inner,
		cfg:      cfg,
		opts:     opts,
		ctx:      ctx,
		cancel:   cancel,
		conns:    make(chan net.Conn),
		errc:     make(chan error),
		loopDone: make(chan struct{}),
	}
}

type tlsListener struct {
	inner  net.Listener
	cfg    *tls.Config
	opts   TLSOptions
	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	start  sync.Once
	conns  chan net.Conn
	errc   chan error // errors from inner.Accept
	once   sync.Once
	err    error // inner.Close's result

	draining   atomic.Bool    // Drain closed inner; its ErrClosed is not an error
	loopDone   chan struct{}  // closed when acceptLoop has returned (or never ran)
	handshakes sync.WaitGroup // handshakes in progress; Add only in acceptLoop
}

// Accept returns the next handshaken connection.
func (l *tlsListener) Accept() (net.Conn, error) {
	l.start.Do(func() { go l.acceptLoop() })
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

func (l *tlsListener) acceptLoop() {
	defer close(l.loopDone)
	for {
		c, err := l.inner.Accept()
		if err != nil && l.draining.Load() && errors.Is(err, net.ErrClosed) {
			return // Drain: Accept keeps delivering handshakes in progress
		}
		if err != nil {
			// Pass every error on (http.Server backs off on temporary
			// ones); stop once the listener is closed.
			select {
			case l.errc <- err:
			case <-l.ctx.Done():
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		l.handshakes.Add(1)
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(raw net.Conn) {
	defer l.handshakes.Done()
	tc := tls.Server(raw, l.cfg)
	ctx, cancel := context.WithTimeout(l.ctx, l.opts.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader) {
			// As net/http does: a plain-text request to the TLS port.
			_, _ = io.WriteString(rh.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		_ = raw.Close()
		if l.opts.OnHandshakeError != nil {
			l.opts.OnHandshakeError(raw.RemoteAddr(), err)
		}
		return
	}
	var out net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		out = Wrap(tc, l.opts.Options)
	}
	select {
	case l.conns <- out:
	case <-l.ctx.Done():
		_ = tc.Close()
	}
}

func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// Drain stops accepting new connections (it closes inner) but lets the
// handshakes in progress finish and hands them to Accept, until they are
// all done or ctx ends. Call it before http.Server.Shutdown so a client
// whose TCP connection was accepted just before is served, not cut.
func (l *tlsListener) Drain(ctx context.Context) error {
	l.draining.Store(true)
	err := l.inner.Close()
	l.start.Do(func() { close(l.loopDone) }) // never accepted: nothing to wait for
	done := make(chan struct{})
	go func() {
		<-l.loopDone // no Add after this
		l.handshakes.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return err
}

// Close stops accepting, closes inner and aborts handshakes in progress.
func (l *tlsListener) Close() error {
	l.once.Do(func() {
		l.cancel()
		l.err = l.inner.Close()
		if l.draining.Load() && errors.Is(l.err, net.ErrClosed) {
			l.err = nil // closed by Drain
		}
	})
	return l.err
}

// Addr returns inner's address.
func (l *tlsListener) Addr() net.Addr { return l.inner.Addr() }
