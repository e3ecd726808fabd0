package configapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/admin"
	"github.com/outrigger-sidecar/outrigger/internal/store"
)

// Deps are the server's collaborators.
type Deps struct {
	// Logger receives JSON access and event logs; nil discards them.
	Logger *slog.Logger
	// Registry registers the outrigger_config_* metrics; nil = not exported.
	Registry prometheus.Registerer
	// Gatherer serves /metrics; nil = the Registry if it is also a
	// Gatherer, else prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
}

// api holds the HTTP handlers over one store.
type api struct {
	st     store.Store
	hub    *hub
	tokens *Tokens // nil = no authentication
	cfg    Config
	log    *slog.Logger
	m      *metrics
}

// maxStatusBody bounds a sidecar status report.
const maxStatusBody = 64 << 10

// NewHandler builds the config API over st: routes, authentication, access
// log and a running watch hub. stop wakes every watcher (they answer 304)
// and stops the hub; it does not close st, which the caller owns. Only the
// HTTP-related fields of cfg are used (Tokens, MaxSize, MaxWait).
func NewHandler(st store.Store, cfg Config, deps Deps) (h http.Handler, stop func(), err error) {
	return newHandler(st, cfg, deps, nil)
}

// newHandler is NewHandler with extra readiness checks (the server's
// certificate).
func newHandler(st store.Store, cfg Config, deps Deps, checks []admin.Check) (h http.Handler, stop func(), err error) {
	_, h, stop, err = newAPIHandler(st, cfg, deps, checks)
	return h, stop, err
}

// newAPIHandler is newHandler that also returns the handlers' state.
func newAPIHandler(st store.Store, cfg Config, deps Deps, checks []admin.Check) (_ *api, h http.Handler, stop func(), err error) {
	if st == nil {
		return nil, nil, nil, errors.New("configapi: nil store")
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, nil, nil, err
	}
	a := &api{st: st, cfg: cfg, log: log, m: m}
	if cfg.Tokens != "" {
		if a.tokens, err = LoadTokens(cfg.Tokens); err != nil {
			return nil, nil, nil, err
		}
		log.Info("config api: authentication enabled", "tokens", a.tokens.Len(), "file", cfg.Tokens)
	} else {
		log.Warn("config api: no --tokens: authentication disabled (loopback only)")
	}
	a.hub = newHub(st, log, m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.hub.run(ctx)
	}()
	stop = func() {
		a.hub.shutdown()
		cancel()
		<-done
		a.hub.parkWG.Wait() // parked watchers answered 304 and closed
	}

	mux := http.NewServeMux()
	mux.Handle("GET /v1/configs", a.wrap(a.list))
	mux.Handle("GET /v1/configs/{$}", a.wrap(a.list))
	mux.Handle("PUT /v1/configs/{name}", a.wrap(a.push))
	mux.Handle("GET /v1/configs/{name}", a.wrap(a.get))
	mux.Handle("GET /v1/configs/{name}/history", a.wrap(a.history))
	mux.Handle("POST /v1/configs/{name}/rollback", a.wrap(a.rollback))
	mux.Handle("GET /v1/configs/{name}/status", a.wrap(a.statusGet))
	mux.Handle("PUT /v1/configs/{name}/status/{sidecar}", a.wrap(a.statusPut))
	mux.Handle("PUT /v1/schemas/{name}", a.wrap(a.schemaPut))
	mux.Handle("GET /v1/schemas/{name}", a.wrap(a.schemaGet))
	admin.Mount(mux, a.adminDeps(deps, checks))
	if err := mountUI(mux); err != nil { // the read-only dashboard, ui.go
		stop()
		return nil, nil, nil, err
	}
	mux.Handle("/", a.wrap(func(http.ResponseWriter, *http.Request) *apiError {
		return errorf(http.StatusNotFound, "", "no such endpoint (see docs/api.md)")
	}))
	return a, accessLog(log, m, canonicalPaths(a, mux)), stop, nil
}

// canonicalPaths refuses paths that ServeMux would otherwise answer with a
// redirect to their cleaned form ("/v1/configs/app/status/.." → a 307 to
// "/v1/configs/app", which a client following redirects would turn into a
// push). A path must already be clean.
func canonicalPaths(a *api, next http.Handler) http.Handler {
	bad := a.wrap(func(_ http.ResponseWriter, r *http.Request) *apiError {
		return errorf(http.StatusBadRequest, reasonBadRequest, fmt.Sprintf("path %q: not canonical (no empty, \".\" or \"..\" segments)", r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "" || p[0] != '/' || (p != "/" && path.Clean(p) != strings.TrimSuffix(p, "/")) || strings.Contains(p, "//") {
			bad.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// wrap turns a handler returning *apiError into an http.Handler that
// writes {"error": msg}, logs the internal error and counts the reject.
func (a *api) wrap(h func(http.ResponseWriter, *http.Request) *apiError) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := h(w, r)
		if e == nil {
			return
		}
		if e.Reason != "" {
			a.m.rejects.WithLabelValues(e.Reason).Inc()
		}
		if e.Code >= 500 {
			a.log.Error("config api: request failed", "method", r.Method, "path", r.URL.Path, "err", e.Err, "msg", e.Msg)
		} else if e.Err != nil {
			a.log.Debug("config api: request refused", "path", r.URL.Path, "err", e.Err)
		}
		if e.Code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="outrigger"`)
		}
		writeJSON(w, e.Code, map[string]string{"error": e.Msg})
	})
}

// authorize authenticates the request (401), checks the config name (400)
// and then the identity's role and name patterns (403). name "" skips the
// name checks (listing).
func (a *api) authorize(r *http.Request, want Role, name string) (*Identity, *apiError) {
	return a.authorizeHeader(r.Header.Get("Authorization"), infoFrom(r.Context()), want, name)
}

// authorizeHeader is authorize for a request's Authorization header
// value, recording the token's name in ri.
func (a *api) authorizeHeader(authorization string, ri *reqInfo, want Role, name string) (*Identity, *apiError) {
	id := &Identity{Role: RoleAdmin}
	if a.tokens != nil {
		tok, ok := bearerToken(authorization)
		if !ok {
			return nil, errorf(http.StatusUnauthorized, reasonUnauthorized, "missing bearer token (Authorization: Bearer <token>)")
		}
		if id = a.tokens.Lookup(tok); id == nil {
			return nil, errorf(http.StatusUnauthorized, reasonUnauthorized, "unknown token")
		}
		ri.token = id.Name
	}
	if name != "" {
		if err := ValidName(name); err != nil {
			return nil, &apiError{Code: http.StatusBadRequest, Reason: reasonBadRequest, Msg: "config " + err.Error()}
		}
	}
	if id.Role < want {
		return nil, errorf(http.StatusForbidden, reasonForbidden, fmt.Sprintf("token %q has role %s; this needs %s", id.Name, id.Role, want))
	}
	if name != "" && !id.CanSee(name) {
		return nil, errorf(http.StatusForbidden, reasonForbidden, fmt.Sprintf("token %q may not access config %q", id.Name, name))
	}
	return id, nil
}

// readBody reads at most cfg.MaxSize bytes (413 beyond).
func (a *api) readBody(w http.ResponseWriter, r *http.Request, limit int64, what string) ([]byte, *apiError) {
	tooLarge := errorf(http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Sprintf("%s larger than %d bytes (--max-size)", what, limit))
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, &apiError{Code: http.StatusBadRequest, Reason: reasonBadRequest, Msg: "reading " + what + " failed", Err: err}
	}
	return body, nil
}

func storeError(name string, err error) *apiError {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &apiError{Code: http.StatusNotFound, Msg: fmt.Sprintf("config %q: not found", name), Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{Code: http.StatusServiceUnavailable, Msg: fmt.Sprintf("config %q: store timed out", name), Err: err}
	}
	return &apiError{Code: http.StatusInternalServerError, Msg: fmt.Sprintf("config %q: store error", name), Err: err}
}

// parseVersionParam parses a positive version number from a query value.
func parseVersionParam(param, s string) (int64, *apiError) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, errorf(http.StatusBadRequest, reasonBadRequest, fmt.Sprintf("?%s=%q: want a version number ≥ 1", param, s))
	}
	return n, nil
}

// parseWait parses ?wait= as a Go duration ("60s") or whole seconds ("60"),
// capped at cfg.MaxWait.
func (a *api) parseWait(s string) (time.Duration, *apiError) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseInt(s, 10, 64)
		if nerr != nil || n > int64(a.cfg.MaxWait/time.Second)+1 {
			if nerr == nil {
				return a.cfg.MaxWait, nil
			}
			return 0, errorf(http.StatusBadRequest, reasonBadRequest, fmt.Sprintf("?wait=%q: want a duration such as 60s", s))
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 {
		return 0, errorf(http.StatusBadRequest, reasonBadRequest, fmt.Sprintf("?wait=%q: must not be negative", s))
	}
	return min(d, a.cfg.MaxWait), nil
}

// adminDeps wires /healthz, /readyz (store reachable, watch hub
// subscribed), /metrics and /status.
func (a *api) adminDeps(deps Deps, extra []admin.Check) admin.Deps {
	gatherer := deps.Gatherer
	if gatherer == nil {
		if g, ok := deps.Registry.(prometheus.Gatherer); ok {
			gatherer = g
		} else {
			gatherer = prometheus.DefaultGatherer
		}
	}
	return admin.Deps{
		Logger:   a.log,
		Gatherer: gatherer,
		Checks: append([]admin.Check{
			{Name: "store", Ready: a.storeReachable},
			{Name: "watch-hub", Ready: func() error {
				select {
				case <-a.hub.closing:
					return errors.New("shutting down")
				default:
				}
				if !a.hub.up.Load() {
					return errors.New("not subscribed to store changes")
				}
				return nil
			}},
		}, extra...),
		Status: func() any {
			a.hub.mu.Lock()
			watched := len(a.hub.entries)
			a.hub.mu.Unlock()
			return map[string]any{
				"role":          "config-api",
				"auth":          a.tokens != nil,
				"watched_names": watched,
				"max_size":      a.cfg.MaxSize,
				"max_wait":      a.cfg.MaxWait.String(),
			}
		},
	}
}

// storeReachable is the readiness check of the store: a cheap read of a
// name that normally does not exist.
func (a *api) storeReachable() error {
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if _, err := a.st.Get(ctx, "outrigger-readyz-probe", 0); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("store unreachable: %w", err)
	}
	return nil
}

// decodeJSONBody decodes a small JSON body into v.
func decodeJSONBody(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
