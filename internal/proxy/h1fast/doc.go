// Package h1fast serves the common HTTP/1.1 request on its own, leaving
// everything else to net/http.
//
// net/http's server spends a large share of a small proxied request's CPU on
// per-request machinery the proxy does not need: a goroutine that reads in
// the background to notice a departing client, a fresh context, a clone of
// the response header, and half a dozen deadline updates. Server handles
// the plain case with less: bodiless GET and HEAD requests over HTTP/1.1
// whose whole head is already buffered and contains nothing that needs
// judgement (no Content-Length, Transfer-Encoding, Expect, Upgrade, TE,
// Trailer, or Connection other than keep-alive; exactly one valid Host;
// visible-ASCII target; no obs-fold, bare CR or LF, or invalid field).
// The request itself is parsed by http.ReadRequest, the handler is the
// same, and the response follows net/http's rules (status line, header
// order and sanitising, Date, Content-Length or chunking, Content-Type
// sniffing, HEAD, 1xx, trailers, keep-alive and close), which the tests
// check byte for byte against net/http.
//
// At the first request that is not plain, the connection is handed to
// net/http with the bytes already buffered (h1guard.Conn.Unread) and stays
// there. Timeouts, the ConnState hook (connection counting, the smuggling
// guard) and graceful shutdown behave as with net/http, with two
// differences, both to spare per-request work: a client that goes away
// during a request is noticed after WatchDelay (net/http notices at once),
// so that requests answered quicker than that need no background read; and
// a request's context is its connection's, which ends when the client goes
// away or the connection closes but not when the handler returns, so a
// handler must not leave work behind that waits for that (the proxy's
// forwarding handler stops everything it starts before returning).
//
// The ConnState hook hears of a connection (StateNew) with its first request
// or when it closes, not at accept: a connection handed to net/http before
// its first request is then new to net/http, and counted once.
//
// A keep-alive connection idle for ParkAfter (100 ms) parks on Linux: its
// goroutine exits, its read buffer and response state go back to their
// pools, and one epoll instance watches its socket until the client sends
// more or goes away, or its idle deadline passes (park.go). An idle TLS
// connection then costs about 9 KB instead of 25.
//
// The package does not serve HTTP/2 (those connections go to net/http
// untouched), request bodies, or protocol upgrades.
package h1fast
