package proxy

import (
	"errors"
	"net"
	"os"
)

// takeOver asks a running proxy on --handover-socket for its listening
// sockets (see handover.go). Any failure is logged and the proxy binds its
// own sockets as usual (with SO_REUSEPORT both then share the port).
func (p *Proxy) takeOver() {
	path := p.cfg.HandoverSocket
	if path == "" {
		return
	}
	in, err := takeListeners(path, p.cfg.Listen, p.cfg.RedirectHTTP)
	switch {
	case errors.Is(err, errNoPredecessor):
		p.log.Info("no running proxy on --handover-socket; binding the listen sockets", "handover_socket", path)
		return
	case err != nil:
		p.log.Warn("listener handover failed; binding the listen sockets instead", "handover_socket", path, "err", err)
		return
	}
	if in.listen == nil {
		// Not our port: leave the running proxy alone (it keeps serving
		// when we hang up without saying "serving").
		p.log.Warn("the running proxy listens on a different --listen; not taking its sockets", "handover_socket", path, "pid", in.pid)
		if in.redirect != nil {
			_ = in.redirect.Close()
		}
		in.release()
		return
	}
	p.log.Info("took over the listening sockets of the running proxy", "handover_socket", path, "pid", in.pid,
		"listen", in.listen.Addr().String(), "redirect_http", in.redirect != nil)
	p.inherited = in
}

// inheritedListener returns the handed-over --listen (or, with redirect,
// --redirect-http) socket, or nil.
func (p *Proxy) inheritedListener(redirect bool) net.Listener {
	if p.inherited == nil {
		return nil
	}
	if redirect {
		return p.inherited.redirect
	}
	return p.inherited.listen
}

// offerHandover starts serving --handover-socket for the next proxy.
func (p *Proxy) offerHandover() {
	if p.cfg.HandoverSocket == "" {
		return
	}
	offer := handoverOffer{Listen: p.cfg.Listen, PID: os.Getpid()}
	lns := []net.Listener{p.rawLn}
	if p.rawRedirLn != nil {
		offer.Redirect = p.cfg.RedirectHTTP
		lns = append(lns, p.rawRedirLn)
	}
	hs, err := listenHandover(p.cfg.HandoverSocket, offer, lns, p.log, func(int) {
		p.handedOverOnce.Do(func() { close(p.handedOver) })
	})
	if err != nil {
		p.log.Warn("cannot offer the listening sockets on --handover-socket; a restart will bind its own", "handover_socket", p.cfg.HandoverSocket, "err", err)
		return
	}
	p.handover = hs
}
