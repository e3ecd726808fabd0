package forward

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultDialTimeout     = 5 * time.Second
	DefaultIdleConnTimeout = 60 * time.Second
	DefaultMaxIdleConns    = 1024

	retryBaseDelay = 25 * time.Millisecond
	retryMaxDelay  = 400 * time.Millisecond

	// unixHost is the URL host used for unix-socket upstreams: the socket is
	// dialed whatever the host says, and without --preserve-host the app sees
	// "Host: localhost".
	unixHost = "localhost"
)

// newTransport builds the upstream Transport: an uncapped keep-alive pool
// (the default 2 idle conns per host would open and close connections under
// concurrency), no compression negotiation (the app's bytes pass through as
// they are), no environment proxy, and a response-header deadline.
func newTransport(cfg *Config) *http.Transport {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		MaxIdleConns:           0, // no total cap: there is one upstream host
		MaxIdleConnsPerHost:    cfg.MaxIdleConns,
		IdleConnTimeout:        cfg.IdleConnTimeout,
		DisableCompression:     true,
		ResponseHeaderTimeout:  cfg.UpstreamTimeout,
		MaxResponseHeaderBytes: 1 << 20,
		ForceAttemptHTTP2:      false,
	}
	switch cfg.Upstream.Scheme {
	case SchemeUnix:
		path := cfg.Upstream.Addr
		t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		}
	case SchemeH2C:
		// HTTP/2 with prior knowledge over plain TCP. net/http's own h2c
		// support shares this Transport's dialer, pool and
		// ResponseHeaderTimeout (x/net/http2.Transport with AllowHTTP would
		// need all of that re-implemented).
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

// retryTransport re-sends a request whose connection was refused: the request
// cannot have reached the app, whatever its method, so it is safe to repeat.
// It backs off exponentially with jitter (25 ms doubling to 400 ms) until
// window has passed since the first failure or the client goes away.
type retryTransport struct {
	base     http.RoundTripper
	window   time.Duration
	retries  interface{ Inc() }
	log      *slog.Logger
	upstream string
}

var errBodyConsumed = errors.New("forward: request body already sent; cannot replay")

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var rb *replayBody
	r := req
	if req.Body != nil && req.Body != http.NoBody {
		// A RoundTripper must not modify the caller's request, so attach the
		// replayable body to a shallow copy.
		rb = &replayBody{rc: req.Body}
		r = new(http.Request)
		*r = *req
		r.Body = rb
		// GetBody lets the Transport itself re-send on a stale keep-alive
		// connection when nothing was written, as it does for bodiless requests.
		r.GetBody = rb.get
	}
	resp, err := t.base.RoundTrip(r)
	if err == nil || !isRefused(err) || (rb != nil && rb.read.Load()) {
		return resp, err
	}
	// Nothing listens any more, so pooled keep-alive connections belong to an
	// app instance that is gone: drop them before other requests pick them
	// up and fail mid-write (which, for non-idempotent requests, cannot be
	// retried safely).
	t.CloseIdleConnections()
	ctx := req.Context()
	deadline := time.Now().Add(t.window)
	delay := retryBaseDelay
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for attempt := 1; ; attempt++ {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return nil, err
		}
		d := min(jitter(delay), remaining)
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-timer.C:
		}
		t.retries.Inc()
		t.log.Debug("retrying refused upstream connection", "upstream", t.upstream, "attempt", attempt, "err", err)
		resp, err = t.base.RoundTrip(r)
		if err == nil || !isRefused(err) || (rb != nil && rb.read.Load()) {
			return resp, err
		}
		delay = min(2*delay, retryMaxDelay)
	}
}

// CloseIdleConnections lets Handler.CloseIdle reach the base Transport.
func (t *retryTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// replayBody wraps a request body so that failed attempts which never read
// it can be repeated: Close before the first Read is ignored (the Transport
// closes the body when a dial fails, and ReverseProxy's body then refuses
// further reads); once reading started it is passed through so the Transport
// can abort a half-sent body.
type replayBody struct {
	rc   io.ReadCloser
	read atomic.Bool
}

func (b *replayBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.rc.Read(p)
}

func (b *replayBody) Close() error {
	if !b.read.Load() {
		return nil
	}
	return b.rc.Close()
}

func (b *replayBody) get() (io.ReadCloser, error) {
	if b.read.Load() {
		return nil, errBodyConsumed
	}
	return b, nil
}

// jitter returns d/2 plus a random part of up to d/2 ("equal jitter"), so a
// burst of refused requests does not come back in lockstep.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
