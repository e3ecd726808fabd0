package proxy

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// redirectHandler answers every plain-HTTP request with 308 Permanent
// Redirect to the same host, path and query over HTTPS. 308 (not 301) keeps
// the method and body of POSTs. HSTS is not sent here: browsers ignore it
// over plain HTTP (RFC 6797 §8.1); it comes with the HTTPS response.
type redirectHandler struct {
	port  int // HTTPS port in targets; 443 is omitted
	count prometheus.Counter
}

func (h redirectHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, ok := redirectHost(r.Host)
	if !ok {
		http.Error(w, "400 bad request: missing or invalid Host header", http.StatusBadRequest)
		return
	}
	if h.port != 443 && h.port != 0 {
		host = net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(h.port))
	}
	path := r.URL.EscapedPath()
	if path == "" || path[0] != '/' {
		path = "/" + strings.TrimLeft(path, "*")
	}
	// A path starting with "//" would make the target scheme-relative
	// elsewhere; collapse the leading slashes.
	for strings.HasPrefix(path, "//") {
		path = path[1:]
	}
	target := "https://" + host + path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	h.count.Inc()
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusPermanentRedirect)
}

// redirectHost extracts the host (without port) from a Host header and
// rejects anything that is not a plain host name or IP literal, so the
// redirect target cannot be bent into another URL.
func redirectHost(hostHeader string) (string, bool) {
	h := hostHeader
	if h == "" {
		return "", false
	}
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
		if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
	}
	if h == "" {
		return "", false
	}
	if strings.HasPrefix(h, "[") {
		if !strings.HasSuffix(h, "]") || net.ParseIP(h[1:len(h)-1]) == nil {
			return "", false
		}
		return h, true
	}
	if len(h) > 253 {
		return "", false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return "", false
		}
	}
	return h, true
}
