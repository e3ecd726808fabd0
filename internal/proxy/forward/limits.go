package forward

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// acquire takes an in-flight slot, waiting in the bounded queue if needed.
// It answers 503 (queue full or QueueTimeout) or notes a vanished client and
// returns false when no slot was taken.
func (h *Handler) acquire(rw *respWriter, r *http.Request) bool {
	select {
	case h.sem <- struct{}{}:
		h.m.inflight.Inc()
		return true
	default:
	}
	if h.queued.Add(1) > int64(h.cfg.MaxQueue) {
		h.queued.Add(-1)
		h.writeError(rw, r, http.StatusServiceUnavailable)
		return false
	}
	h.m.queued.Inc()
	defer func() {
		h.queued.Add(-1)
		h.m.queued.Dec()
	}()
	var timeout <-chan time.Time
	if h.cfg.QueueTimeout > 0 {
		t := time.NewTimer(h.cfg.QueueTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case h.sem <- struct{}{}:
		h.m.inflight.Inc()
		return true
	case <-timeout:
		h.writeError(rw, r, http.StatusServiceUnavailable)
	case <-r.Context().Done():
		rw.clientGone = true
	}
	return false
}

func (h *Handler) release() {
	h.m.inflight.Dec()
	<-h.sem
}

// isUpgrade reports whether r asks to switch protocols (WebSocket etc.).
func isUpgrade(r *http.Request) bool {
	if _, ok := r.Header["Upgrade"]; !ok {
		return false
	}
	return httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade")
}

// serveUpgrade forwards a protocol-switch request. The handshake takes an
// in-flight slot like any request (else an Upgrade header would bypass the
// limit), but the slot is released once the protocol switches: upgraded
// connections live as long as the app and client keep them open. They are
// tracked so Drain can wait for them and, at its deadline, cut them by
// cancelling their context (ReverseProxy then closes both ends).
func (h *Handler) serveUpgrade(rw *respWriter, r *http.Request) {
	if h.draining.Load() {
		h.writeError(rw, r, http.StatusServiceUnavailable)
		return
	}
	if h.sem != nil {
		if !h.acquire(rw, r) {
			return
		}
		rw.h, rw.holdsSlot = h, true
		defer func() {
			if rw.holdsSlot {
				rw.holdsSlot = false
				h.release()
			}
		}()
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	h.upMu.Lock()
	id := h.upNext
	h.upNext++
	h.upConns[id] = cancel
	h.upMu.Unlock()
	defer h.untrack(id)

	if rw.timing {
		rw.upstreamStart = time.Now()
	}
	h.proxy.ServeHTTP(rw, r.WithContext(ctx))
}

func (h *Handler) untrack(id uint64) {
	h.upMu.Lock()
	defer h.upMu.Unlock()
	delete(h.upConns, id)
	if len(h.upConns) == 0 {
		for _, c := range h.upIdle {
			close(c)
		}
		h.upIdle = nil
	}
}

// Drain stops accepting new upgrade requests (they get 503) and waits until
// every upgraded connection (WebSocket etc.) has finished. When ctx ends
// first, it closes the remaining ones and returns an error wrapping ctx.Err().
// Ordinary requests are drained by http.Server.Shutdown, not here.
func (h *Handler) Drain(ctx context.Context) error {
	h.draining.Store(true)
	h.upMu.Lock()
	if len(h.upConns) == 0 {
		h.upMu.Unlock()
		return nil
	}
	idle := make(chan struct{})
	h.upIdle = append(h.upIdle, idle)
	h.upMu.Unlock()

	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	h.upMu.Lock()
	n := len(h.upConns)
	for _, cancel := range h.upConns {
		cancel()
	}
	h.upMu.Unlock()
	if n == 0 {
		return nil
	}
	return fmt.Errorf("forward: drain: closed %d upgraded connections still open at the deadline: %w", n, ctx.Err())
}

// Upgraded returns the number of open upgraded (hijacked) connections.
func (h *Handler) Upgraded() int {
	h.upMu.Lock()
	defer h.upMu.Unlock()
	return len(h.upConns)
}

// clientBody wraps the client's request body: it enforces MaxBody on
// streamed bodies (never returning more than limit bytes; the byte after
// the limit yields *http.MaxBytesError) and marks read failures as
// bodyReadError so they are not blamed on the upstream.
type clientBody struct {
	rc    io.ReadCloser
	limit int64 // 0 = unlimited
	n     int64
	err   error
	// failure publishes err to the handler goroutine (Read runs in the
	// Transport's writer): a response that arrives after the client's body
	// already failed is not passed on; the client gets 400 or 413 instead.
	failure atomic.Pointer[error]
}

// failed returns the body's read failure, if one happened already.
func (b *clientBody) failed() error {
	if e := b.failure.Load(); e != nil {
		return *e
	}
	return nil
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.limit > 0 {
		if len(p) == 0 {
			return 0, nil
		}
		// Read at most one byte beyond the limit, to detect overflow.
		if rest := b.limit - b.n; int64(len(p)) > rest+1 {
			p = p[:rest+1]
		}
	}
	n, err := b.rc.Read(p)
	if b.limit > 0 && b.n+int64(n) > b.limit {
		n = int(b.limit - b.n)
		b.n = b.limit
		b.err = &http.MaxBytesError{Limit: b.limit}
		b.failure.Store(&b.err)
		return n, b.err
	}
	b.n += int64(n)
	if err != nil && err != io.EOF {
		err = &bodyReadError{err}
		b.err = err
		b.failure.Store(&b.err)
	}
	return n, err
}

func (b *clientBody) Close() error { return b.rc.Close() }
