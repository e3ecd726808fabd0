// Package configapi is the Outrigger configuration API role
// (`outrigger config serve`) and its client (`outrigger config push|get|…`).
//
// The server stores every push as an immutable, numbered version in a
// store.Store (embedded bbolt by default, etcd for several replicas), after
// checking the body against its declared format (internal/format) and, when
// one is registered, a JSON Schema. Sidecars long-poll
// `GET /v1/configs/{name}` with `If-None-Match` and `?wait=`; a single watch
// hub per process consumes the store's change stream and wakes every waiter
// of a name by closing one channel, so thousands of idle watchers cost a
// goroutine and a timer each and no store reads. Woken watchers answer
// from headers rendered once per version and, after flushing, leave their
// connection's next request (the re-arm) unread until the whole wave is
// answered (at most a second), so that a push reaches 10,000 watchers
// without the re-arms competing for the CPU. On a plain HTTP/1.1 keep-alive
// connection of a Server, a watcher that has to wait is parked outside
// net/http instead (park.go): its connection is hijacked and watched by one
// small goroutine, hub workers write the answers from bytes encoded once
// per version, and once the wave is answered the goroutine parks the
// watcher's re-arm itself (rearm.go) or hands the connection back to the
// http.Server through its listener (relisten.go) with whatever else came.
// TLS and HTTP/2 watchers wait in their handlers. docs/api.md is the wire
// contract.
//
// Access control is by bearer tokens read from a YAML file (--tokens) with
// roles read ⊂ write ⊂ admin and per-token config name patterns. Without a
// tokens file the server has no authentication and refuses to listen on
// anything but a loopback address. The tokens file is read once at start;
// it is not reloaded on SIGHUP (restart the server to change tokens).
//
// The same listener serves internal/admin's /healthz, /readyz (store
// reachable, watch hub subscribed, not shutting down), /metrics and
// /status without authentication: they reveal no config names or content.
//
// It also serves a read-only dashboard at /ui/ (embedded static files; the
// browser fetches the JSON API with the user's token and computes diffs).
//
// The package does not render or template configurations and does not push
// them to applications (that is the sync role). TLS certificates
// (--cert/--key) are watched and reloaded like the proxy's, and on SIGHUP.
package configapi
