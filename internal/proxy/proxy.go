package proxy

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/certs"
	"github.com/outrigger-sidecar/outrigger/internal/proxy/forward"
	"github.com/outrigger-sidecar/outrigger/internal/proxy/h1fast"
	"github.com/outrigger-sidecar/outrigger/internal/proxy/h1guard"
)

// Deps are the role's collaborators.
type Deps struct {
	// Logger receives JSON logs; nil discards them.
	Logger *slog.Logger
	// Registry receives the metrics; nil skips registration.
	Registry prometheus.Registerer
}

// upstreamFailThreshold is how many consecutive failed readiness dials make
// the proxy unready again after the upstream once answered, so an app
// restart of a second or two (covered by --upstream-retry-window) does not
// flap readiness.
const upstreamFailThreshold = 3

// h2MaxReadFrameSize is the largest HTTP/2 frame accepted: the protocol's
// initial value, which clients use anyway; a larger one would also let a
// peer exceed the limit that RFC 9113 conformance tests (h2spec 4.2) probe.
const h2MaxReadFrameSize = 16 << 10

// Proxy is the running HTTPS proxy role.
type Proxy struct {
	cfg   Config
	log   *slog.Logger
	m     *metrics
	store *certs.Store
	cas   *certs.CAPool // nil without --client-ca
	fwd   *forward.Handler

	srv     *http.Server
	fast    *h1fast.Server // nil without --http1-fast
	ln      net.Listener   // TLS listener
	addr    net.Addr
	redir   *http.Server // nil without --redirect-http
	redirLn net.Listener

	rawLn, rawRedirLn net.Listener    // the bound sockets, offered on --handover-socket
	inherited         *inherited      // what a predecessor handed over (nil: none)
	handover          *handoverServer // nil without --handover-socket
	handedOver        chan struct{}   // closed when a successor serves our sockets
	handedOverOnce    sync.Once
	fresh             freshConns // HTTP/1.x connections not yet served a request

	draining   atomic.Bool
	open       atomic.Int64
	upEver     atomic.Bool
	upFails    atomic.Int32
	upLastErr  atomic.Pointer[error]
	runStarted atomic.Bool
	runCtx     atomic.Pointer[context.Context] // Run's ctx: once done, not ready

	closeOnce    sync.Once
	shutdownOnce sync.Once
	shutdownErr  error
}

// New validates cfg, loads the certificates, builds the forwarding handler
// and binds the listeners, so a bad certificate or an address in use fails
// here, before Run. Errors name the flag.
func New(cfg Config, deps Deps) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("role", "proxy")
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("proxy: register metrics: %w", err)
	}
	p := &Proxy{cfg: cfg, log: logger, m: m, handedOver: make(chan struct{})}

	checkEvery := cfg.CertCheckInterval
	if checkEvery == 0 {
		checkEvery = -1 // the flag's 0 means never; certs' 0 means default
	}
	cdeps := certs.Deps{Logger: logger, Registry: deps.Registry}
	p.store, err = certs.New(certs.Config{
		CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, Hostnames: cfg.Hostnames, CheckInterval: checkEvery,
	}, cdeps)
	if err != nil {
		return nil, fmt.Errorf("--cert %q / --key %q: %w", cfg.CertFile, cfg.KeyFile, err)
	}
	if p.store.SelfSigned() {
		leaf := p.store.Current().Leaf
		logger.Warn("NO --cert GIVEN: SERVING A SELF-SIGNED CERTIFICATE GENERATED IN MEMORY; NOT FOR PRODUCTION",
			"sha256", certs.Fingerprint(leaf.Raw), "dns_names", leaf.DNSNames, "ips", fmt.Sprint(leaf.IPAddresses),
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if cfg.ClientCA != "" {
		p.cas, err = certs.NewCAPool(certs.CAConfig{File: cfg.ClientCA, CheckInterval: checkEvery}, cdeps)
		if err != nil {
			return nil, fmt.Errorf("--client-ca %q: %w", cfg.ClientCA, err)
		}
	}

	up, err := forward.ParseUpstream(cfg.Upstream)
	if err != nil {
		return nil, err
	}
	if !up.IsLoopback() {
		logger.Warn("upstream is not loopback: plaintext HTTP leaves the pod because --unsafe-upstream is set",
			"upstream", cfg.Upstream)
	}
	p.fwd, err = forward.New(forward.Config{
		Upstream:         up,
		PreserveHost:     cfg.PreserveHost,
		TrustedProxies:   cfg.TrustedProxies,
		MaxBody:          cfg.MaxBody,
		MaxInflight:      cfg.MaxInflight,
		MaxQueue:         cfg.MaxQueue,
		QueueTimeout:     cfg.QueueTimeout,
		DialTimeout:      cfg.DialTimeout,
		UpstreamTimeout:  cfg.UpstreamTimeout,
		RetryWindow:      cfg.RetryWindow,
		HSTS:             cfg.hstsValue(),
		ClientCertHeader: cfg.ClientCertHeader,
		AccessLog:        cfg.AccessLog,
		DirectHTTP1:      cfg.UpstreamDirect,
	}, forward.Deps{Logger: logger, Registry: deps.Registry})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}

	if err := p.listen(); err != nil {
		return nil, err
	}
	return p, nil
}

// listen binds the HTTPS (and redirect) listeners and builds the servers.
func (p *Proxy) listen() error {
	cfg := &p.cfg
	if cfg.ReusePort && !reusePortSupported {
		p.log.Warn("SO_REUSEPORT is not supported on this platform; --reuse-port ignored")
	}
	p.takeOver()
	raw := p.inheritedListener(false)
	if raw == nil {
		var err error
		if raw, err = listenTCP(context.Background(), cfg.Listen, cfg.ReusePort); err != nil {
			p.inherited.release()
			return fmt.Errorf("--listen %q: %w", cfg.Listen, err)
		}
	}
	p.rawLn = raw
	p.addr = raw.Addr()
	var ln net.Listener = raw
	if cfg.ProxyProtocol {
		if len(cfg.TrustedProxies) == 0 {
			p.log.Warn("--proxy-protocol without --trusted-proxies: any peer that can connect may claim any client address")
		}
		ln = withProxyProtocol(ln, cfg.TrustedProxies, cfg.ReadHeaderTimeout, p.m.ppRejected, p.log)
	}
	tlsCfg := serverTLSConfig(cfg, p.store, p.cas)
	// h1guard does the TLS handshakes (off the accept loop) and scans every
	// HTTP/1.1 request's framing before net/http parses it, answering 400 to
	// request-smuggling shapes (CL+TE, duplicate CL, obs-fold, bad chunks…)
	// that net/http would silently normalise. h2 connections are handed over
	// untouched; handlers still see r.TLS.
	guard := h1guard.Options{
		OnReject:       func(reason string) { p.m.h1Rejected.WithLabelValues(reason).Inc() },
		MaxHeaderBytes: cfg.MaxHeaderBytes,
	}
	p.ln = h1guard.NewTLSListener(ln, tlsCfg, h1guard.TLSOptions{
		Options:          guard,
		HandshakeTimeout: cfg.ReadHeaderTimeout,
		OnReady:          p.fresh.add,
		OnHandshakeError: func(peer net.Addr, err error) {
			p.m.handshakeErrors.Inc()
			p.log.Debug("tls handshake failed", "peer", addrString(peer), "err", err.Error())
		},
	})

	errLog := log.New(errorLogWriter{log: p.log, handshakeErrors: p.m.handshakeErrors}, "", 0)
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.fresh.served(r)
			p.fwd.ServeHTTP(w, r)
		}),
		ConnContext:       p.fresh.connContext,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          errLog,
		// The guard's hook keeps its 400 from landing inside an earlier
		// pipelined response.
		ConnState: h1guard.ConnState(p.connState),
	}
	if cfg.HTTP1Fast {
		p.fast = &h1fast.Server{Handler: p.srv.Handler, HTTPServer: p.srv, OnPark: p.m.parkedConns.Add}
	}
	if err := p.configureHTTP2(); err != nil {
		_ = p.ln.Close()
		return err
	}

	if cfg.RedirectHTTP != "" {
		rl := p.inheritedListener(true)
		if rl == nil {
			var err error
			if rl, err = listenTCP(context.Background(), cfg.RedirectHTTP, cfg.ReusePort); err != nil {
				_ = p.ln.Close()
				p.inherited.release()
				return fmt.Errorf("--redirect-http %q: %w", cfg.RedirectHTTP, err)
			}
		}
		p.rawRedirLn = rl
		if cfg.ProxyProtocol {
			rl = withProxyProtocol(rl, cfg.TrustedProxies, cfg.ReadHeaderTimeout, p.m.ppRejected, p.log)
		}
		p.redirLn = h1guard.WrapListener(rl, guard)
		port := cfg.RedirectHTTPSPort
		if port == 0 {
			if ta, ok := p.addr.(*net.TCPAddr); ok {
				port = ta.Port
			}
		}
		p.redir = &http.Server{
			Handler:           redirectHandler{port: port, count: p.m.redirects},
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			ReadTimeout:       cfg.ReadHeaderTimeout + 5*time.Second,
			WriteTimeout:      cfg.ReadHeaderTimeout + 5*time.Second,
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
			ErrorLog:          errLog,
			ConnState:         h1guard.ConnState(nil),
		}
	}
	return nil
}

// connState keeps outrigger_open_connections. Hijacked (upgraded)
// connections leave the count here; package forward tracks them.
func (p *Proxy) connState(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		p.open.Add(1)
		p.m.openConns.Inc()
	case http.StateClosed, http.StateHijacked:
		p.fresh.gone(c)
		p.open.Add(-1)
		p.m.openConns.Dec()
	}
}

// Addr returns the bound HTTPS address (useful with port 0).
func (p *Proxy) Addr() net.Addr { return p.addr }

// RedirectAddr returns the bound plain-HTTP redirect address, or nil.
func (p *Proxy) RedirectAddr() net.Addr {
	if p.redirLn == nil {
		return nil
	}
	return p.redirLn.Addr()
}

// ReloadCerts asks the certificate and client-CA sources to re-read their
// files (SIGHUP). It does not block.
func (p *Proxy) ReloadCerts() {
	p.log.Info("certificate reload requested", "cert", p.cfg.CertFile, "client_ca", p.cfg.ClientCA)
	p.store.Reload()
	if p.cas != nil {
		p.cas.Reload()
	}
}

// Ready returns nil when the proxy should receive traffic: not draining, a
// valid certificate loaded, and the upstream answered a dial at least once
// and has not failed the last upstreamFailThreshold dials in a row.
func (p *Proxy) Ready() error {
	if c := p.runCtx.Load(); p.draining.Load() || (c != nil && (*c).Err() != nil) {
		return errors.New("proxy: draining (shutting down)")
	}
	if err := p.store.Ready(); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	if !p.upEver.Load() {
		if e := p.upLastErr.Load(); e != nil {
			return fmt.Errorf("proxy: upstream has not answered yet: %w", *e)
		}
		return fmt.Errorf("proxy: upstream %q has not answered yet", p.cfg.Upstream)
	}
	if p.upFails.Load() >= upstreamFailThreshold {
		if e := p.upLastErr.Load(); e != nil {
			return fmt.Errorf("proxy: upstream unreachable: %w", *e)
		}
		return errors.New("proxy: upstream unreachable")
	}
	return nil
}

// Close releases the listeners of a Proxy whose Run was never called (for
// example when another role failed to start). It is a no-op after Run.
func (p *Proxy) Close() error {
	if p.runStarted.Load() {
		return nil
	}
	var err error
	p.closeOnce.Do(func() {
		p.inherited.release()
		err = p.ln.Close()
		if p.redirLn != nil {
			err = errors.Join(err, p.redirLn.Close())
		}
	})
	return err
}

// Run serves until ctx ends, then shuts down gracefully (see the package
// doc). It returns nil after a clean drain, an error naming how many
// connections were cut if --drain-timeout expired, or the error of a
// listener that failed while serving.
func (p *Proxy) Run(ctx context.Context) error {
	if !p.runStarted.CompareAndSwap(false, true) {
		return errors.New("proxy: Run called twice")
	}
	p.runCtx.Store(&ctx)
	bg, stopBg := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stopBg(); wg.Wait() }()
	goBg := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(bg) }()
	}
	goBg(func(c context.Context) { _ = p.store.Run(c) })
	if p.cas != nil {
		goBg(func(c context.Context) { _ = p.cas.Run(c) })
	}
	goBg(p.checkUpstream)

	serveErr := make(chan error, 2)
	ln := p.ln
	if p.fast != nil {
		ln = p.fast.Listener(ln)
	}
	go func() { serveErr <- p.srv.Serve(ln) }()
	if p.redir != nil {
		go func() { serveErr <- p.redir.Serve(p.redirLn) }()
	}
	p.log.Info("proxy serving", "listen", p.addr.String(), "upstream", p.cfg.Upstream,
		"redirect_http", addrString(p.RedirectAddr()), "h2", p.cfg.H2, "client_ca", p.cfg.ClientCA != "",
		"proxy_protocol", p.cfg.ProxyProtocol, "inherited_sockets", p.inherited != nil, "http1_fast", p.fast != nil)
	p.inherited.serving()
	p.offerHandover()

	var failed error
	select {
	case <-ctx.Done():
	case <-p.handedOver:
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			failed = fmt.Errorf("proxy: serving on %s: %w", p.addr, err)
			p.log.Error("listener failed; shutting down", "err", failed)
		}
	}
	return errors.Join(failed, p.shutdown())
}

// shutdown runs the fixed shutdown sequence once.
func (p *Proxy) shutdown() error {
	p.shutdownOnce.Do(func() { p.shutdownErr = p.doShutdown() })
	return p.shutdownErr
}

func (p *Proxy) doShutdown() error {
	start := time.Now()
	p.draining.Store(true)
	p.handover.close() // a proxy started from now on binds its own sockets
	p.log.Info("shutdown 1/4: readiness is now false; still serving", "shutdown_delay", p.cfg.ShutdownDelay.String())
	if p.cfg.ShutdownDelay > 0 {
		time.Sleep(p.cfg.ShutdownDelay)
	}

	p.log.Info("shutdown 2/4: stopped accepting; draining in-flight requests",
		"drain_timeout", p.cfg.DrainTimeout.String(), "open_connections", p.open.Load(), "upgraded", p.fwd.Upgraded())
	drainCtx, cancel := context.WithTimeout(context.Background(), p.cfg.DrainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var redirErr error
	if p.redir != nil {
		wg.Add(1)
		go func() { defer wg.Done(); redirErr = p.redir.Shutdown(drainCtx) }()
	}
	// Stop taking new connections first, but finish the TLS handshakes of
	// those already accepted and serve them; then Shutdown drains.
	if d, ok := p.ln.(interface{ Drain(context.Context) error }); ok {
		_ = d.Drain(drainCtx)
	}
	// Keep-alive off: idle connections are closed now, busy ones after
	// their response. Connections accepted just before get their first
	// request served (bounded by --read-header-timeout) before Shutdown,
	// which would drop a request it reads from then on.
	p.srv.SetKeepAlivesEnabled(false)
	if p.fast != nil {
		p.fast.SetKeepAlivesEnabled(false)
	}
	freshCtx, cancelFresh := context.WithTimeout(drainCtx, p.cfg.ReadHeaderTimeout)
	p.fresh.wait(freshCtx)
	cancelFresh()
	var fastErr error
	if p.fast != nil {
		wg.Add(1)
		go func() { defer wg.Done(); fastErr = p.fast.Shutdown(drainCtx) }()
	}
	srvErr := p.srv.Shutdown(drainCtx)
	wg.Wait()
	srvErr = errors.Join(srvErr, fastErr)

	p.log.Info("shutdown 3/4: draining upgraded connections", "upgraded", p.fwd.Upgraded())
	fwdErr := p.fwd.Drain(drainCtx)

	var errs []error
	if srvErr != nil || redirErr != nil {
		n := p.open.Load()
		_ = p.srv.Close()
		if p.fast != nil {
			_ = p.fast.Close()
		}
		if p.redir != nil {
			_ = p.redir.Close()
		}
		errs = append(errs, fmt.Errorf("proxy: --drain-timeout %s exceeded: closed %d connections with requests still in flight", p.cfg.DrainTimeout, n))
	}
	if fwdErr != nil {
		errs = append(errs, fmt.Errorf("proxy: --drain-timeout %s exceeded: %w", p.cfg.DrainTimeout, fwdErr))
	}
	p.fwd.CloseIdle()
	err := errors.Join(errs...)
	if err != nil {
		p.log.Warn("shutdown 4/4: closed, some connections were cut", "err", err, "took", time.Since(start).String())
	} else {
		p.log.Info("shutdown 4/4: closed cleanly", "took", time.Since(start).String())
	}
	return err
}

// checkUpstream dials the upstream every --upstream-check-interval (starting
// at once) for readiness and the outrigger_upstream_up gauge.
func (p *Proxy) checkUpstream(ctx context.Context) {
	t := time.NewTicker(p.cfg.UpstreamCheckInterval)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, p.cfg.UpstreamCheckInterval)
		err := p.fwd.CheckUpstream(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		p.recordUpstream(err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Proxy) recordUpstream(err error) {
	if err == nil {
		if !p.upEver.Swap(true) {
			p.log.Info("upstream answered", "upstream", p.cfg.Upstream)
		} else if p.upFails.Load() >= upstreamFailThreshold {
			p.log.Info("upstream reachable again", "upstream", p.cfg.Upstream)
		}
		p.upFails.Store(0)
		p.m.upstreamUp.Set(1)
		return
	}
	p.upLastErr.Store(&err)
	p.m.upstreamUp.Set(0)
	if n := p.upFails.Add(1); n == upstreamFailThreshold && p.upEver.Load() {
		p.log.Warn("upstream unreachable; reporting not ready", "upstream", p.cfg.Upstream, "err", err,
			"failed_checks", strconv.Itoa(int(n)))
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
