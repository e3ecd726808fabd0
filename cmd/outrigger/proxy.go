package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/proxy"
)

const proxyUsage = `usage: outrigger proxy [flags]

Terminates HTTPS (TLS 1.2+, HTTP/2) on --listen and proxies to the legacy app on
--upstream over loopback. With no --cert/--key it serves a self-signed
certificate generated in memory (and says so loudly). SIGHUP reloads the
certificate files; SIGTERM drains: /readyz turns false, new connections stop
after --shutdown-delay, in-flight requests finish within --drain-timeout.

Example:
  outrigger proxy --listen :8443 --upstream http://127.0.0.1:8080 \
    --cert /etc/tls/tls.crt --key /etc/tls/tls.key --redirect-http :8080 --hsts`

func cmdProxy(ctx context.Context, e *env, args []string) error {
	var cfg proxy.Config
	return runRole(ctx, e, args, "outrigger proxy", proxyUsage, "127.0.0.1:9901", cfg.RegisterFlags,
		func(common *commonFlags, reg *prometheus.Registry) (role, error) {
			return proxyRole(ctx, &cfg, *common, e, reg)
		})
}

// proxyRole validates cfg and builds the proxy under the start-up deadline.
func proxyRole(ctx context.Context, cfg *proxy.Config, common commonFlags, e *env, reg *prometheus.Registry) (role, error) {
	if err := cfg.Validate(); err != nil {
		return role{}, usage(err)
	}
	logger := common.logger(e.stderr) // the proxy adds role=proxy itself
	p, err := startup(ctx, common.StartupTimeout, "proxy", func() (*proxy.Proxy, error) {
		return proxy.New(*cfg, proxy.Deps{Logger: logger, Registry: reg})
	})
	if err != nil {
		return role{}, err
	}
	return role{
		name:   "proxy",
		run:    p.Run,
		reload: p.ReloadCerts,
		ready:  p.Ready,
		drain:  cfg.ShutdownDelay + cfg.DrainTimeout,
	}, nil
}
