package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/configapi"
)

const configServeUsage = `usage: outrigger config serve [flags]

Runs the configuration API (docs/api.md): operators push versions of named
configs, sidecars long-poll for them and report what they applied. Storage is
an embedded bbolt file under --data by default, or etcd (--etcd) so several
replicas share one store. Without --tokens it only listens on loopback.

Example:
  outrigger config serve --listen 127.0.0.1:7700 --data /var/lib/outrigger`

func cmdConfig(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usage(fmt.Errorf("config: missing subcommand (serve, push, get, history, rollback, status, list, watch, schema)"))
	}
	if args[0] != "serve" {
		return configapi.RunClient(ctx, args, e.stdout, e.stderr, e.getenv)
	}
	var cfg configapi.Config
	return runRole(ctx, e, args[1:], "outrigger config serve", configServeUsage, "", cfg.RegisterFlags,
		func(common *commonFlags, reg *prometheus.Registry) (role, error) {
			return configRole(ctx, &cfg, *common, e, reg)
		})
}

// configRole validates cfg and builds the config API under the start-up deadline.
func configRole(ctx context.Context, cfg *configapi.Config, common commonFlags, e *env, reg *prometheus.Registry) (role, error) {
	if err := cfg.Validate(); err != nil {
		return role{}, usage(err)
	}
	logger := common.logger(e.stderr).With("role", "config")
	s, err := startup(ctx, common.StartupTimeout, "config serve", func() (*configapi.Server, error) {
		return configapi.New(*cfg, configapi.Deps{Logger: logger, Registry: reg, Gatherer: reg})
	})
	if err != nil {
		return role{}, err
	}
	logger.Info("config API listening", "addr", s.Addr().String())
	return role{name: "config", run: s.Run, reload: s.ReloadCert, drain: cfg.DrainTimeout}, nil
}
