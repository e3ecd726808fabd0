package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// freshConns counts the HTTP/1.x connections whose first request has not
// reached the handler yet, so shutdown can let them be served before it
// calls http.Server.Shutdown: once Shutdown has begun, net/http closes a
// connection whose request it has just read without answering it, which a
// client that opened the connection just before sees as an EOF. HTTP/2
// connections are not counted; their own graceful shutdown (GOAWAY with the
// last stream served) tells clients what to retry.
type freshConns struct {
	n     atomic.Int64
	marks sync.Map // net.Conn → *freshMark, while fresh
}

type freshMark struct {
	done atomic.Bool
	conn net.Conn
}

type freshKey struct{}

// add marks a new HTTP/1.x connection fresh. It is called by the TLS
// listener before the connection reaches Accept, so that a drain that has
// waited for the listener's handshakes also sees it counted (net/http calls
// ConnContext only later, on its own goroutine).
func (f *freshConns) add(c net.Conn) {
	if _, h2 := c.(*tls.Conn); h2 {
		return // h1guard hands h2 connections over as *tls.Conn
	}
	f.n.Add(1)
	f.marks.Store(c, &freshMark{conn: c})
}

// connContext is the http.Server's ConnContext: it gives the handler the
// connection's mark.
func (f *freshConns) connContext(ctx context.Context, c net.Conn) context.Context {
	if m, ok := f.marks.Load(c); ok {
		return context.WithValue(ctx, freshKey{}, m)
	}
	return ctx
}

// served is called by the handler for every request: the first one of a
// connection makes it no longer fresh.
func (f *freshConns) served(r *http.Request) {
	if f.n.Load() == 0 {
		return // no connection is fresh: skip the context lookup (the common case under keep-alive)
	}
	if m, ok := r.Context().Value(freshKey{}).(*freshMark); ok && !m.done.Load() && m.done.CompareAndSwap(false, true) {
		f.n.Add(-1)
		f.marks.Delete(m.conn)
	}
}

// gone is called from ConnState for closed and hijacked connections.
func (f *freshConns) gone(c net.Conn) {
	if v, ok := f.marks.LoadAndDelete(c); ok && v.(*freshMark).done.CompareAndSwap(false, true) {
		f.n.Add(-1)
	}
}

// wait returns when no connection is fresh, or ctx ends.
func (f *freshConns) wait(ctx context.Context) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for f.n.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
