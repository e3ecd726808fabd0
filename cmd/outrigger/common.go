package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/outrigger-sidecar/outrigger/internal/admin"
	"github.com/outrigger-sidecar/outrigger/internal/cli"
	"github.com/outrigger-sidecar/outrigger/internal/memlimit"
	"github.com/outrigger-sidecar/outrigger/internal/memtrim"
)

// commonFlags are the flags every long-running command has.
type commonFlags struct {
	Admin          string
	Pprof          bool
	LogLevel       string
	LogFormat      string
	StartupTimeout time.Duration
	ForceTimeout   time.Duration
}

func (c *commonFlags) register(fs *flag.FlagSet, adminDefault string) {
	fs.StringVar(&c.Admin, "admin", adminDefault, "admin listener for /healthz, /readyz, /metrics, /status (\"\" = off); keep it on loopback")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve /debug/pprof/ on the admin listener (profiling; off by default)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format on stderr: json (one event a line) or text")
	fs.DurationVar(&c.StartupTimeout, "startup-timeout", 30*time.Second, "start-up (open stores, load certificates, bind listeners) must finish within this time")
	fs.DurationVar(&c.ForceTimeout, "force-exit-timeout", 0, "after SIGTERM, exit with an error if shutdown has not finished within this time (0 = the role's drain budget + 10s)")
}

func (c *commonFlags) validate() error {
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "warning", "error":
	default:
		return fmt.Errorf("--log-level %q: must be debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		return fmt.Errorf("--log-format %q: must be json or text", c.LogFormat)
	}
	if c.StartupTimeout <= 0 {
		return fmt.Errorf("--startup-timeout %v: must be positive", c.StartupTimeout)
	}
	if c.ForceTimeout < 0 {
		return fmt.Errorf("--force-exit-timeout %v: must not be negative", c.ForceTimeout)
	}
	return nil
}

func (c *commonFlags) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(c.LogLevel) {
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// runRole is the body of every single-role command: parse the role's flags
// and the common ones (command line, then OUTRIGGER_* env), build the role
// under the start-up deadline, and serve it until the context ends.
// --help prints usage and returns nil.
func runRole(ctx context.Context, e *env, args []string, name, usageText, adminDefault string,
	register func(*flag.FlagSet), build func(common *commonFlags, reg *prometheus.Registry) (role, error)) error {
	var common commonFlags
	fs := newFlagSet(name, e.stderr)
	register(fs)
	common.register(fs, adminDefault)
	fs.Usage = cli.Usage(fs, usageText)
	if err := parseFlags(fs, args, e); err != nil {
		if err == errHelp {
			return nil
		}
		return err
	}
	if err := common.validate(); err != nil {
		return usage(err)
	}
	reg := newRegistry()
	r, err := build(&common, reg)
	if err != nil {
		return err
	}
	return serve(ctx, common.logger(e.stderr), common, reg, []role{r})
}

// newFlagSet makes a FlagSet whose errors come back to us instead of exiting.
func newFlagSet(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return fs
}

// parseFlags parses args and env into fs. It returns errHelp when --help was
// asked for (the caller returns nil: help is not an error).
func parseFlags(fs *flag.FlagSet, args []string, e *env) error {
	err := cli.Parse(fs, args, e.getenv)
	if errors.Is(err, flag.ErrHelp) {
		return errHelp
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q (flags are --name value)", fs.Arg(0))
	}
	return usage(err)
}

var errHelp = errors.New("help shown")

// newRegistry returns a Prometheus registry with the Go runtime and process
// collectors, which every role's /metrics shows.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// startup runs a constructor under the start-up deadline so that a hang
// (an unreachable etcd, a stuck file system) becomes a clear error.
func startup[T any](ctx context.Context, timeout time.Duration, what string, build func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := build()
		done <- result{v, err}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.v, r.err
	case <-timer.C:
		var zero T
		return zero, fmt.Errorf("%s: start-up did not finish within %v (--startup-timeout)", what, timeout)
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("%s: interrupted during start-up", what)
	}
}

// role is one long-running part of the process (proxy, sync, config API).
type role struct {
	name   string
	run    func(ctx context.Context) error
	reload func()       // on SIGHUP; may be nil
	ready  func() error // for /readyz; may be nil
	status func() any   // for /status; may be nil
	drain  time.Duration
}

// serve runs the roles until ctx ends (SIGTERM/SIGINT) or one fails, with the
// admin server alive until every role has finished draining, SIGHUP fanned
// out to the roles, and a force-exit guard: a second signal, or shutdown
// outlasting its budget, returns at once with an error.
func serve(ctx context.Context, logger *slog.Logger, common commonFlags, reg *prometheus.Registry, roles []role) error {
	memlimit.Apply(logger)

	adminCtx, stopAdmin := context.WithCancel(context.Background())
	defer stopAdmin()
	var adminDone chan error
	if common.Admin != "" {
		var checks []admin.Check
		statuses := map[string]func() any{}
		for _, r := range roles {
			if r.ready != nil {
				checks = append(checks, admin.Check{Name: r.name, Ready: r.ready})
			}
			if r.status != nil {
				statuses[r.name] = r.status
			}
		}
		srv, err := admin.New(admin.Config{Addr: common.Admin, Pprof: common.Pprof}, admin.Deps{
			Logger:   logger,
			Gatherer: reg,
			Checks:   checks,
			Status: func() any {
				out := map[string]any{"version": buildVersion()}
				for name, f := range statuses {
					out[name] = f()
				}
				return out
			},
		})
		if err != nil {
			return err
		}
		adminDone = make(chan error, 1)
		go func() { adminDone <- srv.Run(adminCtx) }()
	}

	// Start-up is over: package inits (the JSON Schema meta-schemas alone
	// allocate 1.7 MB), flag parsing, certificate and store loading left
	// garbage that a steady-state GC would keep heap pages for. Collect it
	// and give those pages back to the kernel now, once: the idle RSS a
	// sidecar is judged by drops by a few MiB, and the heap grows again
	// only as far as the roles need.
	debug.FreeOSMemory()
	// And whenever traffic stops after a burst, the same again (memtrim:
	// 1,000 idle TLS connections opened after a load test held 51 MiB
	// without it, 41 MiB with it).
	go memtrim.Run(adminCtx, memtrim.Config{OnTrim: func(n uint64) {
		logger.Debug("quiet: returned free memory to the kernel", "releasable_bytes", n)
	}})

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				logger.Info("SIGHUP received: reloading")
				for _, r := range roles {
					if r.reload != nil {
						r.reload()
					}
				}
			case <-adminCtx.Done():
				return
			}
		}
	}()

	g, gctx := errgroup.WithContext(ctx)
	// A role that finishes by itself (the proxy after handing its sockets
	// to a new process over --handover-socket) takes the others down with
	// it, so a new process is not running beside half of an old one.
	rctx, stopRoles := context.WithCancel(gctx)
	defer stopRoles()
	var budget time.Duration
	for _, r := range roles {
		budget = max(budget, r.drain)
		g.Go(func() error {
			if err := r.run(rctx); err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			if rctx.Err() == nil && len(roles) > 1 {
				logger.Info("role finished; stopping the others", "role", r.name)
				stopRoles()
			}
			return nil
		})
	}
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()

	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		logger.Info("shutdown requested: draining", "budget", budget.String())
		force := common.ForceTimeout
		if force == 0 {
			force = budget + 10*time.Second
		}
		second := make(chan os.Signal, 1)
		signal.Notify(second, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(second)
		timer := time.NewTimer(force)
		defer timer.Stop()
		select {
		case err = <-done:
		case s := <-second:
			err = fmt.Errorf("second %v: forced exit before the drain finished", s)
		case <-timer.C:
			err = fmt.Errorf("shutdown did not finish within %v: forced exit", force)
		}
	}
	stopAdmin()
	if adminDone != nil {
		<-adminDone
	}
	if err == nil {
		logger.Info("stopped cleanly")
	}
	return err
}
