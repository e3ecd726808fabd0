package proxy

// Listener handover: a zero-loss restart of the proxy on one host.
//
// With --handover-socket PATH, a starting proxy first dials PATH. If an
// older proxy answers, it receives the old proxy's listening sockets (the
// file descriptors, over SCM_RIGHTS) instead of binding new ones, so both
// processes accept from the very same kernel socket and accept queue. Once
// the new proxy serves, it says so, and the old one runs its graceful
// shutdown (readiness false, --shutdown-delay, stop accepting, drain). A
// connection that is in the accept queue when the old proxy stops accepting
// stays in the queue and is accepted by the new proxy: unlike two sockets
// sharing a port with SO_REUSEPORT, where the kernel resets what was queued
// on the closed socket (unless net.ipv4.tcp_migrate_req=1), nothing is
// refused.
//
// The new proxy then listens on PATH itself, for the next restart. The
// socket file is created with mode 0600 and a peer must run as the same
// user (or root), checked with SO_PEERCRED.
//
// Wire protocol (one Unix stream connection, newline-terminated JSON):
//
//	new → old  {"op":"take","pid":N}
//	old → new  {"listen":"…","redirect":"…","pid":N}  + SCM_RIGHTS [listen fd, redirect fd?]
//	new → old  {"op":"serving"}                        (when the new proxy serves)
//
// If the new proxy goes away before "serving", the old one keeps serving.

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"time"
)

// takeOver asks a running proxy on --handover-socket for its listening
// sockets (see the file comment). Any failure is logged and the proxy binds its
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

// handoverTimeout bounds each step of the exchange with the predecessor.
const handoverTimeout = 5 * time.Second

type handoverRequest struct {
	Op  string `json:"op"`
	PID int    `json:"pid,omitempty"`
}

type handoverOffer struct {
	Listen   string `json:"listen"`
	Redirect string `json:"redirect,omitempty"`
	PID      int    `json:"pid"`
}

// inherited is what a predecessor handed over.
type inherited struct {
	listen, redirect net.Listener // nil where not handed over or not matching
	pid              int
	conn             *net.UnixConn // kept open until we serve; then "serving"
}

// errNoPredecessor means nobody answered on the handover socket.
var errNoPredecessor = errors.New("no running proxy on the handover socket")

// serving tells the predecessor that we serve, so it can drain and exit.
func (in *inherited) serving() {
	if in == nil || in.conn == nil {
		return
	}
	_ = in.conn.SetWriteDeadline(time.Now().Add(handoverTimeout))
	_ = writeJSONLine(in.conn, handoverRequest{Op: "serving", PID: os.Getpid()})
	_ = in.conn.Close()
	in.conn = nil
}

// release closes what was not used (New failed after the handover).
func (in *inherited) release() {
	if in == nil {
		return
	}
	if in.conn != nil {
		_ = in.conn.Close()
		in.conn = nil
	}
}

func writeJSONLine(c net.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = c.Write(append(b, '\n'))
	return err
}

func trimLine(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
