package forward

import (
	"bufio"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// respWriter records what the handler sent, for metrics and the access log.
// It is pooled; ReverseProxy reaches Flush and Hijack through it (directly or
// via http.ResponseController and Unwrap).
type respWriter struct {
	w             http.ResponseWriter
	status        int
	bytes         int64
	wroteHeader   bool
	hijacked      bool
	clientGone    bool
	h             *Handler   // set with holdsSlot
	holdsSlot     bool       // an upgrade request's in-flight slot, released on hijack
	timing        bool       // record upstreamStart and headerAt (for the access log)
	upstreamStart time.Time  // when the request was handed to the upstream
	headerAt      time.Time  // when the final response header was written
	fwd           fwdHeaders // the direct path's forwarding values
}

// reset prepares rw for a request. The clock is read for upstreamStart and
// headerAt only with timing (the access log needs them; reading the clock is
// a measurable cost per request on some virtual machines).
func (rw *respWriter) reset(w http.ResponseWriter, timing bool) {
	*rw = respWriter{w: w, timing: timing}
}

// Header implements http.ResponseWriter.
func (rw *respWriter) Header() http.Header { return rw.w.Header() }

// WriteHeader implements http.ResponseWriter; 1xx informational responses
// pass through without counting as the final status.
func (rw *respWriter) WriteHeader(code int) {
	if rw.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		rw.w.WriteHeader(code)
		return
	}
	rw.wroteHeader = true
	rw.status = code
	if rw.timing {
		rw.headerAt = time.Now()
	}
	rw.w.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (rw *respWriter) Write(p []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	n, err := rw.w.Write(p)
	rw.bytes += int64(n)
	return n, err
}

// FlushError flushes buffered response data to the client.
func (rw *respWriter) FlushError() error {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	if f, ok := rw.w.(interface{ FlushError() error }); ok {
		return f.FlushError()
	}
	return http.NewResponseController(rw.w).Flush()
}

// Flush implements http.Flusher.
func (rw *respWriter) Flush() { _ = rw.FlushError() }

// Hijack implements http.Hijacker for protocol upgrades (HTTP/1.x only).
func (rw *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(rw.w).Hijack()
	if err == nil {
		if rw.holdsSlot {
			// The protocol switched: the connection may live for hours and
			// must not keep an in-flight slot.
			rw.holdsSlot = false
			rw.h.release()
		}
		rw.hijacked = true
		rw.wroteHeader = true
		rw.status = http.StatusSwitchingProtocols
		if rw.timing {
			rw.headerAt = time.Now()
		}
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (rw *respWriter) Unwrap() http.ResponseWriter { return rw.w }

// accessLog writes one line per request with stable keys.
func (h *Handler) accessLog(rw *respWriter, r *http.Request, code int, start time.Time, dur time.Duration) {
	var upstream float64
	if !rw.upstreamStart.IsZero() && !rw.headerAt.IsZero() {
		upstream = rw.headerAt.Sub(rw.upstreamStart).Seconds()
	}
	tlsVersion := ""
	if r.TLS != nil {
		tlsVersion = tls.VersionName(r.TLS.Version)
	}
	ci := h.inspectClient(r)
	client := ci.realClient
	if client == "" {
		client = r.RemoteAddr
	}
	h.log.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.Time("start", start),
		slog.String("client", client),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.Int("status", code),
		slog.Int64("bytes", rw.bytes),
		slog.Float64("duration_seconds", dur.Seconds()),
		slog.Float64("upstream_seconds", upstream),
		slog.String("proto", r.Proto),
		slog.String("tls_version", tlsVersion),
	)
}
