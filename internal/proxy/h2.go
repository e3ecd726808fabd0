//lint:file-ignore SA1019 x/net/http2.Server is the only HTTP/2 server with ServeConn on an arbitrary net.Conn, which the h2spec guard needs.

package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"

	"golang.org/x/net/http2"
)

// configureHTTP2 serves HTTP/2 (when --h2) through golang.org/x/net/http2's
// ServeConn on an h2Guard-wrapped connection. net/http's built-in HTTP/2
// cannot be used here because it only accepts a *tls.Conn, leaving no place
// for the guard that makes the server pass h2spec. Graceful shutdown still
// goes through http.Server.Shutdown (ConfigureServer registers the GOAWAY
// hook).
func (p *Proxy) configureHTTP2() error {
	if !p.cfg.H2 {
		// A non-nil empty map disables net/http's automatic HTTP/2.
		p.srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		return nil
	}
	h2s := &http2.Server{
		MaxConcurrentStreams: uint32(p.cfg.MaxConcurrentStreams),
		MaxReadFrameSize:     h2MaxReadFrameSize,
		IdleTimeout:          p.cfg.IdleTimeout,
	}
	if err := http2.ConfigureServer(p.srv, h2s); err != nil {
		return fmt.Errorf("proxy: configure HTTP/2: %w", err)
	}
	// Every connection here is TLS; never accept prior-knowledge cleartext
	// HTTP/2 (ConfigureServer registers a handler for it).
	delete(p.srv.TLSNextProto, "unencrypted_http2")
	p.srv.TLSNextProto["h2"] = func(hs *http.Server, c *tls.Conn, h http.Handler) {
		ctx := context.Background()
		if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
			ctx = bc.BaseContext()
		}
		h2s.ServeConn(newH2Guard(c, h2MaxReadFrameSize, p.log), &http2.ServeConnOpts{
			Context:    ctx,
			Handler:    h,
			BaseConfig: hs,
		})
	}
	return nil
}
