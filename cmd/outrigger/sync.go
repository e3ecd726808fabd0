package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	syncrole "github.com/outrigger-sidecar/outrigger/internal/sync"
)

const syncUsage = `usage: outrigger sync [flags]

Keeps the app's config file (--dest) in step with a source and applies each new
version as one transaction: validate (--format, --check) → write atomically →
reload the app (--signal with --pid-file/--process, --reload-url, --reload-cmd)
→ verify (--health) → commit, or roll back (--rollback). A bad config never
reaches the app; an unreachable source never empties the file. SIGHUP re-reads
the source at once.

Sources:
  http(s)://HOST:7700/v1/configs/NAME   the Outrigger config API (long-poll watch)
  etcd://HOST:2379[,HOST:2379]/KEY      an etcd key (watch, resumes after disconnects)
  file:///PATH                           a file or a mounted Kubernetes ConfigMap

Example:
  outrigger sync --source http://config:7700/v1/configs/app --dest /shared/app.json \
    --format json --pid-file /shared/app.pid --signal HUP \
    --health http://127.0.0.1:8080/healthz --rollback`

func cmdSync(ctx context.Context, e *env, args []string) error {
	var cfg syncrole.Config
	return runRole(ctx, e, args, "outrigger sync", syncUsage, "127.0.0.1:9902", cfg.RegisterFlags,
		func(common *commonFlags, reg *prometheus.Registry) (role, error) {
			if cfg.Once || cfg.DryRun {
				common.Admin = "" // one-shot modes need no admin listener
			}
			return syncRole(ctx, &cfg, *common, e, reg)
		})
}

// syncRole validates cfg and builds the syncer under the start-up deadline.
func syncRole(ctx context.Context, cfg *syncrole.Config, common commonFlags, e *env, reg *prometheus.Registry) (role, error) {
	if err := cfg.Validate(); err != nil {
		return role{}, usage(err)
	}
	logger := common.logger(e.stderr).With("role", "sync")
	s, err := startup(ctx, common.StartupTimeout, "sync", func() (*syncrole.Syncer, error) {
		return syncrole.New(*cfg, syncrole.Deps{Logger: logger, Registry: reg})
	})
	if err != nil {
		return role{}, err
	}
	return role{
		name:   "sync",
		run:    s.Run,
		reload: s.Resync,
		ready:  s.Ready,
		status: s.Status,
		drain:  cfg.HealthTimeout,
	}, nil
}
