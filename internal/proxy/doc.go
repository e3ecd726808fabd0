// Package proxy is the `outrigger proxy` role: it terminates HTTPS in front
// of a legacy app and forwards requests to it over loopback or a unix socket
// (through package forward).
//
// What it does: binds the HTTPS listener (SO_REUSEPORT, optional PROXY
// protocol v1/v2), builds a hardened TLS configuration (TLS 1.2+ with only
// ECDHE+AEAD suites for 1.2, ALPN h2/http/1.1, session tickets) whose
// certificate and client-CA pool reload without a restart (package certs),
// enforces header limits and timeouts at the http.Server, optionally serves
// a plain-HTTP listener that redirects to HTTPS with 308, checks that the
// upstream is reachable for readiness, and shuts down in a fixed order:
// not ready → --shutdown-delay (still serving) → stop accepting → drain
// requests and upgraded connections until --drain-timeout → cut the rest.
//
// HTTP/2 is served by golang.org/x/net/http2 behind a small frame-level
// guard (h2guard.go) that fixes the two RFC 9113 deviations of Go's server
// which h2spec reports; with it the proxy passes all 145 h2spec tests.
//
// HTTP/1.1 is served by package h1fast in front of net/http (--http1-fast,
// on by default): plain GET/HEAD requests are served with less per-request
// work, everything else is handed to net/http; --http1-fast=false leaves all
// of HTTP/1.1 to net/http.
//
// What it does not do: the forwarding itself (headers, retries, limits on
// bodies and concurrency live in package forward), admin endpoints (package
// admin calls Ready), signal handling (cmd calls ReloadCerts on SIGHUP and
// cancels Run's context on SIGTERM), or reading env vars and YAML (package
// cli sets flags generically).
//
// PROXY protocol: with --proxy-protocol every connection to the HTTPS and
// redirect listeners must start with a v1 or v2 header (a connection
// without one fails); if --trusted-proxies is set, connections from any
// other peer are closed at accept. The client address from the header
// becomes the request's RemoteAddr, so X-Forwarded-For carries the real
// client.
package proxy
