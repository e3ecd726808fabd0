package configapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/admin"
	"github.com/outrigger-sidecar/outrigger/internal/certs"
	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// Server is `outrigger config serve`: the config API over its own store
// and listener.
type Server struct {
	cfg     Config
	log     *slog.Logger
	st      store.Store
	ln      net.Listener
	handler http.Handler
	api     *api
	stopHub func()
	srv     *http.Server
	certs   *certs.Store // nil without --cert

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg, opens the store (bbolt in --data, or etcd), loads the
// tokens and binds the listener, so that every start-up problem is an
// error here, before Run. It refuses a non-loopback --listen without
// --tokens.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config serve: %w", err)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	deps.Logger = log
	s := &Server{cfg: cfg, log: log}
	var tlsCfg *tls.Config
	var checks []admin.Check
	if cfg.Cert != "" {
		cs, err := certs.New(certs.Config{CertFile: cfg.Cert, KeyFile: cfg.Key}, certs.Deps{Logger: log, Registry: deps.Registry})
		if err != nil {
			return nil, fmt.Errorf("config serve: %w", err)
		}
		s.certs = cs
		tlsCfg = serverTLS(cs.GetCertificate)
		checks = append(checks, admin.Check{Name: "certificate", Ready: cs.Ready})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("config serve: %w", err)
	}
	s.st = st
	a, h, stop, err := newAPIHandler(st, cfg, deps, checks)
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("config serve: %w", err)
	}
	s.handler, s.stopHub, s.api = h, stop, a
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		stop()
		_ = st.Close()
		return nil, fmt.Errorf("config serve: --listen %q: %w", cfg.Listen, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	} else {
		// Plain HTTP: long polls park outside net/http while they wait
		// (park.go) and come back through this listener.
		rl := newRelistener(ln)
		a.hub.conns = rl
		a.hub.idle = serverIdleTimeout
		a.hub.hdrTimeout = serverReadHeaderTimeout
		ln = rl
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: serverReadHeaderTimeout,
		ReadTimeout:       60 * time.Second,
		// Long polls hold the response open for up to --max-wait.
		WriteTimeout:   cfg.MaxWait + 30*time.Second,
		IdleTimeout:    serverIdleTimeout,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// serverIdleTimeout is how long a keep-alive connection may sit idle, and
// serverReadHeaderTimeout how long a request head may take to arrive.
const (
	serverIdleTimeout       = 2 * time.Minute
	serverReadHeaderTimeout = 10 * time.Second
)

// openStore opens the store the flags select.
func openStore(ctx context.Context, cfg Config, log *slog.Logger) (store.Store, error) {
	if cfg.Etcd != "" {
		return openEtcd(ctx, cfg, log)
	}
	b, err := store.OpenBolt(cfg.Data, store.BoltOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// serverTLS is the listener's TLS configuration: TLS 1.2+ with only AEAD,
// forward-secret cipher suites for 1.2 (Go's defaults still offer CBC).
func serverTLS(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: get,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos: []string{"h2", "http/1.1"},
	}
}

// ReloadCert re-reads --cert/--key now (the cmd layer calls it on SIGHUP;
// file changes are picked up on their own). The tokens file is not
// reloaded. A no-op without TLS.
func (s *Server) ReloadCert() {
	if s.certs != nil {
		s.certs.Reload()
	}
}

// Addr is the bound listen address (useful with --listen 127.0.0.1:0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Handler is the server's HTTP handler, for in-process tests.
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves until ctx ends, then shuts down gracefully: long-pollers are
// woken and answer 304 at once, in-flight requests get --drain-timeout,
// and the store is closed.
func (s *Server) Run(ctx context.Context) error {
	scheme := "http"
	if s.cfg.Cert != "" {
		scheme = "https"
	}
	s.log.Info("config api listening", "addr", s.ln.Addr().String(), "scheme", scheme, "store", s.storeName())
	certCtx, stopCerts := context.WithCancel(ctx)
	defer stopCerts()
	if s.certs != nil {
		go func() { _ = s.certs.Run(certCtx) }() // reloads --cert/--key on change
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.stopHub() // wake watchers first so Shutdown does not wait for them
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	shutErr := s.srv.Shutdown(sctx)
	if errors.Is(shutErr, context.DeadlineExceeded) {
		s.log.Warn("config api: drain timeout; closing remaining connections", "drain_timeout", s.cfg.DrainTimeout.String())
		shutErr = s.srv.Close()
	}
	closeErr := s.Close()
	s.log.Info("config api stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("config serve: %w", serveErr)
	}
	if shutErr != nil {
		return fmt.Errorf("config serve: shutdown: %w", shutErr)
	}
	return closeErr
}

// Close releases the listener, the hub and the store without serving; Run
// calls it on its way out. Idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stopHub()
		_ = s.ln.Close()
		if err := s.st.Close(); err != nil {
			s.closeErr = fmt.Errorf("config serve: closing store: %w", err)
		}
	})
	return s.closeErr
}

func (s *Server) storeName() string {
	if s.cfg.Etcd != "" {
		return "etcd " + s.cfg.Etcd
	}
	return "bbolt " + s.cfg.Data
}
