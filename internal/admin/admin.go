// Package admin serves the operational endpoints every Outrigger role
// exposes on its admin listener (loopback by default):
//
//	/healthz        200 "ok" while the process serves HTTP at all (liveness)
//	/readyz         200 "ready" when every Check passes, else 503 listing the
//	                failing checks; ?verbose lists every check
//	/metrics        Prometheus exposition of Deps.Gatherer
//	/status         a small HTML page (Status() and readiness) for people, or
//	                JSON with "Accept: application/json" or ?format=json
//	/debug/pprof/   Go profiling, only when Config.Pprof is set
//
// Only GET and HEAD are allowed (405 otherwise). Server owns a listener;
// Mount puts the same endpoints (without pprof) on another mux, as the
// config API does.
//
// The package registers no collectors: callers put the Go and process
// collectors (prometheus/collectors.NewGoCollector, NewProcessCollector) on
// the registry whose Gatherer they pass in, next to their own metrics. It
// does not decide what "ready" means either: roles pass Checks.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultAddr is the admin listener's default address (the --admin flag).
const DefaultAddr = "127.0.0.1:9901"

// checkTimeout bounds how long /readyz waits for a check. It stays under
// the kubelet's default probe timeout of one second.
const checkTimeout = 800 * time.Millisecond

// shutdownTimeout bounds how long Run waits for in-flight admin requests
// (a CPU profile, a slow scrape) once its context ends.
const shutdownTimeout = 2 * time.Second

// Check is one readiness condition. Ready returns nil when the condition
// holds and an error saying why not otherwise. It should answer quickly
// (read a flag or an atomic): /readyz reports a check that takes longer
// than 800ms as failing.
type Check struct {
	Name  string
	Ready func() error
}

// Config configures the admin listener.
type Config struct {
	// Addr is the TCP address to listen on; "" means DefaultAddr. Port 0
	// picks a free port (see Server.Addr).
	Addr string
	// Pprof mounts /debug/pprof/ when true. Profiles reveal internals: keep
	// the listener on loopback when enabling it.
	Pprof bool
}

// Deps are the admin server's collaborators. Every field may be nil: no
// logger logs nothing, no Gatherer serves an empty exposition, no Checks
// means always ready, no Status shows readiness only.
type Deps struct {
	Logger   *slog.Logger
	Gatherer prometheus.Gatherer
	Checks   []Check
	// Status returns a JSON-encodable snapshot shown by /status.
	Status func() any
}

// Server is the admin HTTP server on its own listener.
type Server struct {
	ln      net.Listener
	srv     *http.Server
	log     *slog.Logger
	pprof   bool
	runOnce sync.Once
}

// New binds the admin listener at once, so that a port conflict is a
// start-up error naming --admin, and builds the handlers.
func New(cfg Config, deps Deps) (*Server, error) {
	addr := cfg.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--admin %q: %w", addr, err)
	}
	mux := http.NewServeMux()
	Mount(mux, deps)
	if cfg.Pprof {
		mountPprof(mux)
	}
	mux.HandleFunc("/{$}", onlyGet(index(cfg.Pprof)))
	s := &Server{
		ln:    ln,
		log:   log,
		pprof: cfg.Pprof,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			// Long enough for /debug/pprof/profile?seconds=60.
			WriteTimeout:   90 * time.Second,
			IdleTimeout:    60 * time.Second,
			MaxHeaderBytes: 64 << 10,
			ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
	return s, nil
}

// Addr returns the address the listener is bound to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx ends, then shuts down: in-flight requests get up to
// two seconds, then connections are closed. It returns nil after a
// shutdown caused by ctx and the serve error otherwise. Run may be called
// once.
func (s *Server) Run(ctx context.Context) error {
	err := errors.New("admin: Run called twice")
	s.runOnce.Do(func() { err = s.run(ctx) })
	return err
}

func (s *Server) run(ctx context.Context) error {
	addr := s.ln.Addr().String()
	s.log.Info("admin listening", "addr", addr, "pprof", s.pprof)
	if s.pprof && !isLoopback(s.ln.Addr()) {
		s.log.Warn("admin: pprof enabled on a non-loopback address", "addr", addr)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin %s: serve: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.log.Warn("admin: shutdown incomplete, closing connections", "err", err)
		_ = s.srv.Close()
	}
	<-errc // Serve returned http.ErrServerClosed
	s.log.Info("admin stopped", "addr", addr)
	return nil
}

// Close releases the listener of a Server whose Run was never called (or
// stops one that is running).
func (s *Server) Close() error {
	err := s.srv.Close()
	if cerr := s.ln.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}

// Mount registers /healthz, /readyz, /metrics and /status on mux. The
// patterns carry no method so that the handlers themselves answer 405 to
// anything but GET and HEAD, even on a mux with a catch-all "/". It panics,
// as ServeMux does, if mux already has these patterns.
func Mount(mux *http.ServeMux, deps Deps) {
	g := deps.Gatherer
	if g == nil {
		g = prometheus.NewRegistry()
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	metrics := promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slogPrintln{log},
		ErrorHandling: promhttp.ContinueOnError,
	})
	mux.HandleFunc("/healthz", onlyGet(healthz))
	mux.HandleFunc("/readyz", onlyGet(readyz(deps.Checks)))
	mux.Handle("/metrics", onlyGet(metrics.ServeHTTP))
	mux.HandleFunc("/status", onlyGet(status(deps.Checks, deps.Status, log)))
}

// mountPprof registers the net/http/pprof handlers on mux.
func mountPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", onlyGet(pprof.Index))
	mux.HandleFunc("/debug/pprof/cmdline", onlyGet(pprof.Cmdline))
	mux.HandleFunc("/debug/pprof/profile", onlyGet(pprof.Profile))
	mux.HandleFunc("/debug/pprof/symbol", onlyGet(pprof.Symbol))
	mux.HandleFunc("/debug/pprof/trace", onlyGet(pprof.Trace))
}

// onlyGet answers 405 with an Allow header to methods other than GET and
// HEAD.
func onlyGet(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h(w, r)
	}
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	noCache(w)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// noCache keeps probes and status pages from being cached by anything.
func noCache(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

// slogPrintln adapts a slog.Logger to promhttp's Logger interface.
type slogPrintln struct{ log *slog.Logger }

func (l slogPrintln) Println(v ...any) {
	l.log.Warn("admin: metrics", "err", fmt.Sprint(v...))
}

// isLoopback reports whether addr is a loopback IP address.
func isLoopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
