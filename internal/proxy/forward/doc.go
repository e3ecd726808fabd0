// Package forward is Outrigger's reverse-proxy HTTP handler: it takes a request
// the proxy role accepted (usually over TLS) and forwards it to the legacy app
// on loopback or a unix socket.
//
// What it does:
//   - forwards over a keep-alive pool sized for high concurrency to http://,
//     h2c:// (HTTP/2 with prior knowledge) or unix: upstreams, using
//     [httputil.ReverseProxy] with Rewrite, pooled copy buffers and no
//     compression negotiation; streaming and server-sent-event responses are
//     flushed as they arrive;
//   - passes WebSocket and other Upgrade requests through and tracks them, so
//     that [Handler.Drain] can wait for (or finally cut) them on shutdown;
//   - replaces client-sent X-Forwarded-*, Forwarded and X-Real-IP headers with
//     its own, appending only when the peer is a trusted proxy; strips
//     hop-by-hop headers, the httpoxy "Proxy" header and any spoofed client
//     certificate header, and sends the verified client certificate identity
//     when configured;
//   - retries requests that never reached the app (connection refused on
//     dial) with exponential backoff and jitter for a bounded window, so an
//     app restart does not turn into a burst of 502s;
//   - enforces a request body limit (413), a bound on concurrent upstream
//     requests with a bounded wait queue (503 + Retry-After), and a deadline
//     for the upstream's response headers (504);
//   - maps upstream failures to short text/plain 502/504 responses without
//     leaking internal error text, logs the reason, and counts it by kind;
//   - exports Prometheus metrics and an optional JSON access log line per
//     request;
//   - with Config.DirectHTTP1 (the proxy role's default, --upstream-direct)
//     forwards simple requests (no body or a Content-Length body up to
//     64 KiB, no upgrade) to http:// and unix: upstreams on the handler's own
//     goroutine over its own keep-alive pool, parsing the common response
//     shape without http.ReadResponse: 6 allocations per request instead of
//     56 and roughly half the CPU; everything else, and every request when it
//     is off, goes through ReverseProxy.
//
// What it does not do: listen, terminate TLS, load certificates, parse PROXY
// protocol headers, redirect HTTP to HTTPS or serve admin endpoints; those
// belong to the proxy role (package proxy), which wraps this handler. It also
// never sends plaintext to a non-loopback upstream on its own: the role decides
// whether such an upstream is allowed (see [Upstream.IsLoopback]).
package forward
