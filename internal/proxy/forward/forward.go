package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/proxy/h1guard"
	"golang.org/x/net/http/httpguts"
)

// Config configures a Handler. The proxy role fills it from flags; zero values
// mean "off" or the documented default.
type Config struct {
	// Upstream is where requests go (required).
	Upstream Upstream
	// PreserveHost keeps the client's Host header; otherwise the upstream
	// address (or "localhost" for unix sockets) is sent.
	PreserveHost bool
	// TrustedProxies are peers whose X-Forwarded-*/Forwarded headers are
	// appended to rather than replaced.
	TrustedProxies []netip.Prefix
	// MaxBody limits request bodies in bytes (0 = unlimited); larger ones get
	// 413 and the upstream never receives more than MaxBody bytes.
	MaxBody int64
	// MaxInflight bounds concurrent upstream requests (0 = unlimited).
	// Upgrade handshakes count; established upgraded (WebSocket)
	// connections do not.
	MaxInflight int
	// MaxQueue is how many requests may wait for a slot beyond MaxInflight;
	// when full they get 503 with Retry-After.
	MaxQueue int
	// QueueTimeout is the longest a request waits for a slot before 503
	// (0 = until the client gives up).
	QueueTimeout time.Duration
	// DialTimeout bounds connecting to the upstream (0 = DefaultDialTimeout).
	DialTimeout time.Duration
	// UpstreamTimeout bounds the wait for the upstream's response headers
	// after the request was sent (0 = no limit); exceeded -> 504.
	UpstreamTimeout time.Duration
	// RetryWindow is how long requests refused at connect time are retried
	// with backoff before 502 (0 = no retries).
	RetryWindow time.Duration
	// IdleConnTimeout closes pooled upstream connections idle this long
	// (0 = DefaultIdleConnTimeout). Keep it below the app's own keep-alive
	// timeout to avoid reusing connections the app is closing.
	IdleConnTimeout time.Duration
	// MaxIdleConns is the size of the upstream keep-alive pool
	// (0 = DefaultMaxIdleConns, or MaxInflight if larger).
	MaxIdleConns int
	// HSTS is the Strict-Transport-Security value added to responses to TLS
	// requests ("" = none). It replaces any value the app sends.
	HSTS string
	// ClientCertHeader, if set, carries the verified client certificate's
	// identity upstream (see certIdentity for the format); a client-sent
	// header of that name is always removed.
	ClientCertHeader string
	// AccessLog logs one JSON line per request at Info.
	AccessLog bool
	// DirectHTTP1 forwards simple requests to http:// and unix: upstreams
	// on the handler's own goroutine over pooled keep-alive connections
	// instead of through http.Transport: no body or a Content-Length body
	// up to 64 KiB, no upgrade, no request trailers. Other requests, and
	// h2c upstreams, always use ReverseProxy. The proxy role turns it on by
	// default (--upstream-direct); it roughly halves the per-request CPU.
	DirectHTTP1 bool
}

// Deps are the Handler's collaborators.
type Deps struct {
	// Logger receives errors and access logs (nil = discard).
	Logger *slog.Logger
	// Registry receives the metrics (nil = not registered).
	Registry prometheus.Registerer
}

// errorLogBurst is how many "upstream request failed" lines are logged per
// second at most; the next logged line says how many were suppressed.
const errorLogBurst = 10

// Handler is the reverse-proxy http.Handler. It is safe for concurrent use.
type Handler struct {
	cfg        Config
	log        *slog.Logger
	m          *metrics
	transport  *http.Transport
	proxy      *httputil.ReverseProxy
	pool       *connPool // direct path; nil when off
	bufs       *bufferPool
	targetHost string
	certHeader string // canonical form of cfg.ClientCertHeader
	hsts       []string

	sem    chan struct{} // nil when MaxInflight == 0
	queued atomic.Int64

	writers sync.Pool // *respWriter
	errLog  logLimiter

	// Upgraded (hijacked) connections, for Drain.
	upMu     sync.Mutex
	upNext   uint64
	upConns  map[uint64]context.CancelFunc
	upIdle   []chan struct{} // closed when upConns becomes empty
	draining atomic.Bool
}

// New validates cfg and builds a Handler.
func New(cfg Config, deps Deps) (*Handler, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.IdleConnTimeout == 0 {
		cfg.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if cfg.MaxIdleConns == 0 {
		cfg.MaxIdleConns = max(DefaultMaxIdleConns, cfg.MaxInflight)
	}
	cfg.TrustedProxies = append([]netip.Prefix(nil), cfg.TrustedProxies...)
	for i, p := range cfg.TrustedProxies {
		cfg.TrustedProxies[i] = p.Masked()
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		cfg:        cfg,
		log:        log,
		m:          m,
		transport:  newTransport(&cfg),
		targetHost: cfg.Upstream.Addr,
		certHeader: http.CanonicalHeaderKey(cfg.ClientCertHeader),
		upConns:    make(map[uint64]context.CancelFunc),
		errLog:     logLimiter{burst: errorLogBurst},
	}
	if cfg.Upstream.Scheme == SchemeUnix {
		h.targetHost = unixHost
	}
	if cfg.HSTS != "" {
		h.hsts = []string{cfg.HSTS}
	}
	if cfg.MaxInflight > 0 {
		h.sem = make(chan struct{}, cfg.MaxInflight)
	}
	h.writers.New = func() any { return new(respWriter) }
	h.bufs = &bufferPool{}
	if cfg.DirectHTTP1 && cfg.Upstream.Scheme != SchemeH2C {
		h.pool = newConnPool(&cfg)
	}
	h.proxy = &httputil.ReverseProxy{
		Rewrite: h.rewrite,
		Transport: &retryTransport{
			base:     h.transport,
			window:   cfg.RetryWindow,
			retries:  m.retries,
			log:      log,
			upstream: cfg.Upstream.Raw,
		},
		BufferPool:   h.bufs,
		ErrorHandler: h.handleError,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	h.proxy.ModifyResponse = h.modifyResponse
	return h, nil
}

// check rejects configurations New cannot honour. The role validates its
// flags first; these errors are for programming mistakes.
func (c *Config) check() error {
	switch c.Upstream.Scheme {
	case SchemeHTTP, SchemeH2C, SchemeUnix:
	case "":
		return errors.New("forward: Config.Upstream is not set (use ParseUpstream)")
	default:
		return fmt.Errorf("forward: upstream %q: scheme must be http, h2c or unix", c.Upstream.Raw)
	}
	if c.Upstream.Addr == "" {
		return fmt.Errorf("forward: upstream %q: empty address", c.Upstream.Raw)
	}
	for _, d := range []struct {
		name string
		v    int64
	}{
		{"MaxBody", c.MaxBody}, {"MaxInflight", int64(c.MaxInflight)}, {"MaxQueue", int64(c.MaxQueue)},
		{"QueueTimeout", int64(c.QueueTimeout)}, {"DialTimeout", int64(c.DialTimeout)},
		{"UpstreamTimeout", int64(c.UpstreamTimeout)}, {"RetryWindow", int64(c.RetryWindow)},
		{"IdleConnTimeout", int64(c.IdleConnTimeout)}, {"MaxIdleConns", int64(c.MaxIdleConns)},
	} {
		if d.v < 0 {
			return fmt.Errorf("forward: Config.%s is negative (%d)", d.name, d.v)
		}
	}
	if c.ClientCertHeader != "" && !httpguts.ValidHeaderFieldName(c.ClientCertHeader) {
		return fmt.Errorf("forward: client cert header %q is not a valid header name", c.ClientCertHeader)
	}
	if c.HSTS != "" && !httpguts.ValidHeaderFieldValue(c.HSTS) {
		return fmt.Errorf("forward: HSTS value %q is not a valid header value", c.HSTS)
	}
	return nil
}

// ServeHTTP forwards r to the upstream.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := h.writers.Get().(*respWriter)
	rw.reset(w, h.cfg.AccessLog)
	defer h.finish(rw, r, start)

	if h.cfg.MaxBody > 0 && r.ContentLength > h.cfg.MaxBody {
		h.writeError(rw, r, http.StatusRequestEntityTooLarge)
		return
	}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		// Streamed bodies are cut at MaxBody (the upstream request is then
		// aborted and handleError answers 413), and failures reading the
		// client's body are told apart from upstream failures.
		r.Body = &clientBody{rc: r.Body, limit: h.cfg.MaxBody}
	}
	if isUpgrade(r) {
		h.serveUpgrade(rw, r)
		return
	}
	now := start
	if h.sem != nil {
		if !h.acquire(rw, r) {
			return
		}
		defer h.release()
		now = time.Now() // after the wait for a slot
	}
	if rw.timing {
		rw.upstreamStart = now
	}
	if h.directEligible(r) {
		h.serveDirect(rw, r, now)
		return
	}
	h.proxy.ServeHTTP(rw, r)
}

// rewrite is the ReverseProxy Rewrite hook: target, Host and forwarding headers.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	out := pr.Out
	out.URL.Scheme = "http"
	out.URL.Host = h.targetHost
	if !h.cfg.PreserveHost {
		out.Host = ""
	}
	h.setForwarded(pr.In, out.Header, h.inspectClient(pr.In))
}

// errBadStatus rejects status codes below 100, which http.ReadResponse
// accepts ("HTTP/1.1 000 X") but http.ResponseWriter panics on.
var errBadStatus = errors.New("forward: upstream sent an invalid status code")

// modifyResponse is the ReverseProxy ModifyResponse hook: it rejects invalid
// status codes and sets HSTS.
func (h *Handler) modifyResponse(resp *http.Response) error {
	if resp.StatusCode < 100 {
		return fmt.Errorf("%w %d", errBadStatus, resp.StatusCode)
	}
	if resp.Request != nil {
		if cb, ok := resp.Request.Body.(*clientBody); ok {
			if err := cb.failed(); err != nil {
				// The client's body broke (or passed --max-body) before the
				// app answered: the app saw a truncated request, so its
				// answer is not passed on (handleError answers 400/413).
				return err
			}
		}
	}
	if h.hsts != nil && resp.Request != nil && resp.Request.TLS != nil {
		resp.Header["Strict-Transport-Security"] = h.hsts[:1:1]
	}
	return nil
}

// handleError is the ReverseProxy ErrorHandler: it decides what the client
// sees (never the internal error text) and what is logged and counted.
func (h *Handler) handleError(w http.ResponseWriter, r *http.Request, err error) {
	rw := w.(*respWriter)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		h.writeError(rw, r, http.StatusRequestEntityTooLarge)
		return
	case isBodyReadError(err) && !rw.hijacked && (r.Context().Err() == nil || errors.Is(err, h1guard.ErrRejected)):
		// The client sent less than it announced, or its upload broke off,
		// or the smuggling guard refused its chunked framing mid-body (the
		// guard's refusal also ends the connection's context, but the
		// client is still there to read the 400).
		h.log.Debug("client request body incomplete", "err", err.Error(), "method", r.Method, "path", r.URL.Path)
		h.writeError(rw, r, http.StatusBadRequest)
		return
	case r.Context().Err() != nil || rw.hijacked || isBodyReadError(err):
		// The client went away (or Drain cut an upgraded connection): not
		// the upstream's fault and nobody to answer.
		rw.clientGone = true
		return
	}
	kind := classify(err)
	h.m.upstreamErrors[kind].Inc()
	if ok, suppressed := h.errLog.allow(time.Now()); ok {
		h.log.LogAttrs(context.Background(), slog.LevelWarn, "upstream request failed",
			slog.String("err", err.Error()),
			slog.String("upstream", h.cfg.Upstream.Raw),
			slog.String("kind", kind.String()),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("suppressed", suppressed),
		)
	}
	h.writeError(rw, r, statusFor(kind))
}

// errorBodies are the only texts clients ever see from the proxy itself.
var errorBodies = map[int]string{
	http.StatusBadGateway:            "502 bad gateway: upstream unavailable\n",
	http.StatusGatewayTimeout:        "504 gateway timeout: upstream did not respond in time\n",
	http.StatusServiceUnavailable:    "503 service unavailable: too many requests, retry later\n",
	http.StatusRequestEntityTooLarge: "413 content too large: request body exceeds the limit\n",
	http.StatusBadRequest:            "400 bad request: request body incomplete\n",
}

func (h *Handler) writeError(rw *respWriter, r *http.Request, code int) {
	hdr := rw.Header()
	clear(hdr)
	body := errorBodies[code]
	hdr["Content-Type"] = []string{"text/plain; charset=utf-8"}
	hdr["X-Content-Type-Options"] = []string{"nosniff"}
	hdr["Cache-Control"] = []string{"no-store"}
	switch code {
	case http.StatusServiceUnavailable:
		hdr["Retry-After"] = []string{"1"}
	case http.StatusRequestEntityTooLarge, http.StatusBadRequest:
		// The rest of the body was not read; do not try to reuse the connection.
		hdr["Connection"] = []string{"close"}
	}
	if h.hsts != nil && r.TLS != nil {
		hdr["Strict-Transport-Security"] = h.hsts[:1:1]
	}
	rw.WriteHeader(code)
	_, _ = rw.Write([]byte(body))
}

// finish records metrics and the access log line, and recycles rw.
func (h *Handler) finish(rw *respWriter, r *http.Request, start time.Time) {
	end := time.Now()
	code := rw.status
	switch {
	case rw.clientGone && !rw.wroteHeader:
		code = 499
	case code == 0:
		code = http.StatusOK // net/http writes an implicit 200
	}
	dur := end.Sub(start)
	h.m.observeRequest(code, r.Method, dur.Seconds())
	if h.cfg.AccessLog {
		h.accessLog(rw, r, code, start, dur)
	}
	rw.reset(nil, false)
	h.writers.Put(rw)
}

// CheckUpstream reports whether the upstream accepts connections (a dial, no
// request), for readiness probes. A failed check also drops idle pooled
// connections, which belong to an app instance that is gone.
func (h *Handler) CheckUpstream(ctx context.Context) error {
	network, addr := "tcp", h.cfg.Upstream.Addr
	if h.cfg.Upstream.Scheme == SchemeUnix {
		network = "unix"
	}
	d := net.Dialer{Timeout: h.cfg.DialTimeout}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		// The app is down: its pooled connections are dead too.
		h.CloseIdle()
		return fmt.Errorf("forward: upstream %q unreachable: %w", h.cfg.Upstream.Raw, err)
	}
	_ = c.Close()
	return nil
}

// CloseIdle closes idle pooled upstream connections.
func (h *Handler) CloseIdle() {
	h.transport.CloseIdleConnections()
	if h.pool != nil {
		h.pool.closeIdle()
	}
}
