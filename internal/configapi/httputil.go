package configapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// apiError separates what the client sees (Code, Msg) from what is logged
// (Err).
type apiError struct {
	Code   int
	Msg    string
	Err    error
	Reason string // outrigger_config_rejects_total label, "" = not a reject
}

func (e *apiError) Error() string { return e.Msg }

func errorf(code int, reason, msg string) *apiError {
	return &apiError{Code: code, Msg: msg, Reason: reason}
}

// reqInfo travels in the request context so the access log can name the
// token and learn that the client left before an answer.
type reqInfo struct {
	token      string
	clientGone bool
	longPoll   bool // a GET with ?wait= (set by the handler, saves re-parsing the query)
	start      time.Time
	// detached: the watch was parked (park.go), which counts and logs
	// the request when it ends.
	detached bool
}

type reqInfoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

// statusWriter records the status for the access log and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog logs one line per request (never the query string, which is
// not meant to carry secrets but might) and counts requests.
func accessLog(log *slog.Logger, m *metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &reqInfo{start: start}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri)))
		if ri.detached {
			return
		}
		switch {
		case sw.status == 0 && ri.clientGone:
			sw.status = 499 // nginx's "client closed request", for the log only
		case sw.status == 0:
			sw.status = http.StatusOK
		}
		m.request(r.Method, sw.status).Inc()
		lvl := slog.LevelInfo
		switch {
		case probePaths[r.URL.Path] && sw.status < 400:
			lvl = slog.LevelDebug // probes and scrapes every few seconds
		case r.Method == http.MethodGet && sw.status < 400 && ri.longPoll:
			// Long-poll watches: thousands of sidecars answer every push and
			// every wait timeout; an Info line each would flood the log and
			// serialise the fan-out on the log writer.
			lvl = slog.LevelDebug
		case sw.status >= 500:
			lvl = slog.LevelError
		}
		if !log.Enabled(r.Context(), lvl) {
			return // no attributes built for a line nobody reads
		}
		attrs := []any{
			"method", r.Method,
			"path", r.URL.Path,
			"status", sw.status,
			"duration_ms", float64(time.Since(start).Microseconds()) / 1000,
			"remote", r.RemoteAddr,
		}
		if ri.token != "" {
			attrs = append(attrs, "token", ri.token)
		}
		log.Log(r.Context(), lvl, "config api request", attrs...)
	})
}

// probePaths are logged at debug level when they succeed.
var probePaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "/status": true}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
		return
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// cleanHeaderText bounds and de-controls free text taken from a header or
// body (author, sidecar error) before it is stored and echoed.
func cleanHeaderText(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "")
	}
	return s
}
