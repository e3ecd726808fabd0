package configapi

import (
	"errors"
	"net"
	"sync"
)

// relistener is the Server's listener: it accepts new connections from
// the real listener and also hands out connections given back by parked
// watchers (park.go), so that the http.Server serves a watcher's next
// request exactly as it serves a new connection's first.
type relistener struct {
	net.Listener
	acc  chan acceptResult
	back chan net.Conn
	done chan struct{}
	once sync.Once

	mu     sync.RWMutex
	closed bool
}

type acceptResult struct {
	c   net.Conn
	err error
}

func newRelistener(ln net.Listener) *relistener {
	l := &relistener{
		Listener: ln,
		acc:      make(chan acceptResult),
		back:     make(chan net.Conn, 256),
		done:     make(chan struct{}),
	}
	go l.pump()
	return l
}

// pump accepts from the real listener until it fails for good.
func (l *relistener) pump() {
	for {
		c, err := l.Listener.Accept()
		select {
		case l.acc <- acceptResult{c, err}:
		case <-l.done:
			if c != nil {
				_ = c.Close()
			}
			return
		}
		if err != nil {
			var ne interface{ Temporary() bool }
			if !errors.As(err, &ne) || !ne.Temporary() {
				return // http.Server stops serving on this error
			}
		}
	}
}

// Accept returns a given-back connection or a new one.
func (l *relistener) Accept() (net.Conn, error) {
	select {
	case c := <-l.back:
		return c, nil
	default:
	}
	select {
	case c := <-l.back:
		return c, nil
	case r := <-l.acc:
		return r.c, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// give queues c to be served as a new connection; false once closed or
// stop is closed.
func (l *relistener) give(c net.Conn, stop <-chan struct{}) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return false
	}
	select {
	case l.back <- c:
		return true
	case <-l.done:
		return false
	case <-stop:
		return false
	}
}

// Close closes the real listener and every connection still queued.
func (l *relistener) Close() error {
	l.once.Do(func() { close(l.done) })
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	for {
		select {
		case c := <-l.back:
			_ = c.Close()
		default:
			return l.Listener.Close()
		}
	}
}
