// Package h1guard refuses HTTP/1.1 request-smuggling probes before net/http
// parses them.
//
// net/http normalises ambiguous framing instead of refusing it: a request
// with both Content-Length and Transfer-Encoding loses its Content-Length,
// and an obs-fold continuation line is folded into the previous field. That
// is RFC-permitted, but the handler sees no trace of it, so this package
// scans the raw bytes. A guarded net.Conn passes every byte through
// unchanged (no copy, no allocation per request) while a state machine
// follows the request framing: request-line, header block, then the body
// (Content-Length bytes skipped; chunked framing parsed through the last
// chunk and trailers), so keep-alive and pipelined requests are tracked.
//
// Refused (reason strings are stable metric labels, see the Reason*
// constants): both Transfer-Encoding and Content-Length (te_and_cl); two
// Content-Length fields, even with equal values (duplicate_cl); a
// Content-Length that is not a decimal number (bad_cl); a field line
// starting with SP or HTAB (obs_fold); a Transfer-Encoding other than one
// field whose value is exactly "chunked", case-insensitive, with optional
// surrounding whitespace, or any Transfer-Encoding in an HTTP/1.0 request
// (RFC 9112 §6.1: faulty framing; net/http would ignore it) (bad_te); whitespace inside a field name, e.g.
// "Transfer-Encoding : chunked" (bad_header; net/http refuses it too); a CR
// not followed by LF (bare_cr) and an LF not preceded by CR (bare_lf) in the
// request-line, headers or trailers: RFC 9112 §2.2 lets a recipient accept
// bare LF and net/http does, but strictness is cheaper to reason about than
// proving both parsers agree; malformed chunked framing: empty, non-hex or
// more than 16 hex digits chunk-size, a bare CR or LF in a chunk-size line
// or its extensions, data not followed by CRLF (bad_chunk). Empty lines
// before a request-line are skipped, as RFC 9112 §2.2 recommends (net/http
// skips one after a POST and refuses the others itself).
//
// On a violation the guard hands net/http only the bytes before it, then
// writes "HTTP/1.1 400 Bad Request" with "Connection: close" and a short
// text/plain body to the connection, calls Options.OnReject(reason), and
// returns io.EOF from Read, so the handler never sees the request. Like
// net/http's own error path it then half-closes and discards input for up to
// 500ms (64 KiB), so the kernel does not reset the connection before the
// client has read the 400; later Writes fail. The 400
// is written only when net/http is waiting for a request: with the ConnState
// hook installed, a background read during an earlier pipelined request
// waits instead, so responses never interleave. A violation inside the
// chunked body of a request a handler is already reading fails that body
// read with ErrRejected (net/http then closes the connection); if the
// handler has not written any of its response yet, the guard sends the 400
// itself and refuses the handler's later writes, otherwise the handler's
// response is the last one.
//
// Not scanned: after the header block of a CONNECT or "PRI * HTTP/2.0" (the
// HTTP/2 preface) the connection is passed through untouched, because what
// follows may not be HTTP/1. A request with an Upgrade field is treated the
// same way only without the ConnState hook; with the hook, scanning goes on
// and stops when net/http reports the connection hijacked (the handler took
// the upgrade), so a refused upgrade never switches the guard off and a
// client cannot disable it just by sending Upgrade. A header block larger
// than MaxHeaderBytes+4096 (net/http's limit) stops scanning so net/http
// answers 431. After a Hijack (ConnState hook) bytes pass through. The package does not parse anything
// else (methods, targets, field values other than the two framing fields):
// net/http does.
//
// # Wiring
//
// Plain HTTP/1.1 listener:
//
//	srv.ConnState = h1guard.ConnState(srv.ConnState)
//	srv.Serve(h1guard.WrapListener(ln, h1guard.Options{OnReject: inc, MaxHeaderBytes: srv.MaxHeaderBytes}))
//
// TLS: net/http checks c.(*tls.Conn) to do the handshake and ALPN dispatch,
// which a wrapper breaks; but for HTTP/1 it fills Request.TLS from any conn
// with a ConnectionState() tls.ConnectionState method. So NewTLSListener
// replaces tls.NewListener: it handshakes in a goroutine per connection,
// returns the *tls.Conn unchanged for ALPN "h2" (net/http then calls
// TLSNextProto["h2"] as before) and a guarded *TLSConn otherwise:
//
//	srv.ConnState = h1guard.ConnState(srv.ConnState)
//	ln = h1guard.NewTLSListener(rawOrProxyProtoLn, tlsCfg, h1guard.TLSOptions{
//		Options:          h1guard.Options{OnReject: inc, MaxHeaderBytes: srv.MaxHeaderBytes},
//		HandshakeTimeout: cfg.ReadHeaderTimeout,
//		OnHandshakeError: countAndLogAtDebug,
//	})
//	srv.Serve(ln)
package h1guard
