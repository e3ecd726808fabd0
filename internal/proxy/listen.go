package proxy

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"
)

// listenTCP binds addr, with SO_REUSEPORT if reuse is set.
func listenTCP(ctx context.Context, addr string, reuse bool) (net.Listener, error) {
	lc := net.ListenConfig{}
	if reuse {
		lc.Control = setReusePort
	}
	return lc.Listen(ctx, "tcp", addr)
}

// withProxyProtocol wraps ln so every connection must start with a PROXY v1
// or v2 header. With trusted prefixes, connections from other peers are
// closed at accept (and counted); without, any peer may send a header. The
// header is read lazily by the connection's first Read (in the TLS
// handshake goroutine), never in the accept loop, bounded by timeout.
func withProxyProtocol(ln net.Listener, trusted []netip.Prefix, timeout time.Duration, rejected prometheus.Counter, log *slog.Logger) net.Listener {
	return &proxyproto.Listener{
		Listener:          ln,
		ReadHeaderTimeout: timeout,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if len(trusted) == 0 {
				return proxyproto.REQUIRE, nil
			}
			if a, ok := addrOf(o.Upstream); ok && containsAddr(trusted, a) {
				return proxyproto.REQUIRE, nil
			}
			rejected.Inc()
			log.Debug("closed connection from a peer not in --trusted-proxies", "peer", o.Upstream.String())
			// ErrInvalidUpstream makes the listener close this connection and
			// keep accepting.
			return proxyproto.REJECT, proxyproto.ErrInvalidUpstream
		},
	}
}

func addrOf(a net.Addr) (netip.Addr, bool) {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return ap.Addr().Unmap(), ap.Addr().IsValid()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// errorLogWriter routes http.Server's ErrorLog into slog. TLS handshake
// failures (scanners, clients offering only old protocols, missing client
// certificates, bad PROXY headers) are counted and logged at Debug so they
// cannot flood the log, as are HTTP/2 client protocol errors; anything else
// is a Warn.
type errorLogWriter struct {
	log             *slog.Logger
	handshakeErrors prometheus.Counter
}

func (w errorLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	switch {
	case strings.Contains(msg, "TLS handshake error"):
		w.handshakeErrors.Inc()
		w.log.Debug("tls handshake failed", "err", msg)
	case strings.HasPrefix(msg, "http2: server"):
		// Client protocol errors and clients going away: not actionable.
		w.log.Debug("http2 connection error", "err", msg)
	default:
		w.log.Warn("http server error", "err", msg)
	}
	return len(p), nil
}
