// Command legacy-app is a stand-in for the kind of application Outrigger
// sits next to: it serves plain HTTP on 127.0.0.1 only, reads its settings
// from a JSON file at start, and re-reads them when it receives SIGHUP.
// Tests and `outrigger demo` run it as a real child process. The code lives
// in package legacyapp, so that the outrigger binary can embed it.
//
// Usage:
//
//	legacy-app --config app.json [--listen 127.0.0.1:8080] [--unix /run/app.sock] [--pid-file app.pid]
//
// The config file is JSON; unknown fields are ignored:
//
//	{"greeting": "hello", "healthy": true, "color": "blue"}
//
// Setting "healthy": false makes /healthz answer 503, which lets tests push a
// config that breaks the app and watch `outrigger sync` roll it back.
//
// Endpoints: / (greeting and which config load produced it), /healthz, /config (the raw
// config), /echo (the request as JSON), /slow?d=2s, /stream?n=5&interval=200ms,
// /sse?n=5&interval=200ms, /ws (WebSocket echo), /upload (byte count and
// SHA-256 of the body), /bytes?size=1024 (exactly that many bytes).
//
// It is small on purpose: read it to see what a reverse proxy and a config
// sync must carry faithfully for an application like this one.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/outrigger-sidecar/outrigger/examples/legacy-app/legacyapp"
)

func main() {
	// SIGTERM (docker stop, kubelet) and SIGINT (Ctrl-C) shut down gracefully.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := legacyapp.Run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "legacy-app:", err)
		os.Exit(1)
	}
}
