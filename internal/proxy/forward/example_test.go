package forward_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/proxy/forward"
)

// Example shows how the proxy role wires the handler: parse --upstream,
// refuse non-loopback upstreams unless allowed, serve, and on shutdown drain
// upgraded connections after http.Server.Shutdown.
func Example() {
	up, err := forward.ParseUpstream("http://127.0.0.1:8080")
	if err != nil {
		panic(err) // the role returns this as a flag error
	}
	if !up.IsLoopback() {
		panic("plaintext must not leave the pod without --unsafe-upstream")
	}
	h, err := forward.New(forward.Config{
		Upstream:        up,
		PreserveHost:    true,
		TrustedProxies:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		MaxBody:         64 << 20,
		MaxInflight:     512,
		MaxQueue:        1024,
		QueueTimeout:    5 * time.Second,
		UpstreamTimeout: 60 * time.Second,
		RetryWindow:     5 * time.Second,
		HSTS:            "max-age=63072000",
		AccessLog:       true,
	}, forward.Deps{
		Logger:   slog.New(slog.NewJSONHandler(os.Stderr, nil)),
		Registry: prometheus.NewRegistry(),
	})
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Addr: ":8443", Handler: h}
	_ = srv // srv.ListenAndServeTLS(...) in the role

	// Readiness: h.CheckUpstream(ctx). Shutdown, after readiness went false:
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	_ = h.Drain(ctx)
	h.CloseIdle()
}
