// Package legacyapp is the stand-in legacy application behind
// examples/legacy-app (see that command's documentation for its flags and
// endpoints). It is a package so that the outrigger binary can embed it as a
// hidden subcommand for `outrigger demo`; it is not an API for anything else.
package legacyapp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	listen  string
	config  string
	pidFile string
	unix    string
}

// appConfig is the app's settings file. Healthy is a pointer so that a file
// without the field means healthy.
type appConfig struct {
	Greeting string `json:"greeting"`
	Healthy  *bool  `json:"healthy"`
	Color    string `json:"color"`
}

// loaded is one successfully read config, swapped atomically on reload so
// that requests always see a complete config.
type loaded struct {
	cfg     appConfig
	raw     []byte
	sha256  string
	version int // 1 at start, +1 per successful reload
	at      time.Time
}

// healthy reports the config's "healthy" field, true when absent.
func (l *loaded) healthy() bool { return l.cfg.Healthy == nil || *l.cfg.Healthy }

// app holds the current config.
type app struct {
	cur atomic.Pointer[loaded]
	log *slog.Logger
}

// Run parses args (the command's flags, without the program name), serves
// until ctx ends, then shuts down gracefully. It returns an error for bad
// flags, a config that cannot be read at start, or a listener that cannot
// be bound. Log lines (JSON) and usage go to stderr. SIGHUP re-reads the
// config; the caller handles SIGTERM/SIGINT by cancelling ctx.
func Run(ctx context.Context, args []string, stderr io.Writer) error {
	var opt options
	fs := flag.NewFlagSet("legacy-app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opt.listen, "listen", "127.0.0.1:8080", `TCP address to serve on; loopback only (127.0.0.1, ::1, localhost); "" to serve only on --unix`)
	fs.StringVar(&opt.config, "config", "", "JSON config file (required); re-read on SIGHUP")
	fs.StringVar(&opt.pidFile, "pid-file", "", "write the process id to this file at start, remove it at exit")
	fs.StringVar(&opt.unix, "unix", "", "also serve on this unix socket path")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h printed the usage
		}
		return err
	}
	if opt.config == "" {
		return errors.New("--config is required")
	}
	if opt.listen == "" && opt.unix == "" {
		return errors.New(`--listen "" needs --unix: nothing to serve on`)
	}
	if opt.listen != "" {
		if err := checkLoopback(opt.listen); err != nil {
			return err
		}
	}

	a := &app{log: slog.New(slog.NewJSONHandler(stderr, nil))}
	first, err := readConfig(opt.config, 1)
	if err != nil {
		return err // a legacy app that cannot read its config at start exits 1
	}
	a.cur.Store(first)
	a.log.Info("config loaded", "greeting", first.cfg.Greeting, "version", first.version, "sha256", first.sha256)

	// Listen before announcing anything, so that a port conflict is a
	// start-up error.
	var listeners []net.Listener
	defer func() {
		for _, ln := range listeners {
			_ = ln.Close()
		}
	}()
	if opt.listen != "" {
		ln, err := net.Listen("tcp", opt.listen)
		if err != nil {
			return fmt.Errorf("--listen %q: %w", opt.listen, err)
		}
		listeners = append(listeners, ln)
	}
	if opt.unix != "" {
		// A socket left by a killed predecessor would make Listen fail.
		if fi, err := os.Lstat(opt.unix); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(opt.unix)
		}
		ln, err := net.Listen("unix", opt.unix)
		if err != nil {
			return fmt.Errorf("--unix %q: %w", opt.unix, err)
		}
		listeners = append(listeners, ln)
	}

	// Install the SIGHUP handler before writing the pid file: whoever reads
	// the pid file may signal at once, and an unhandled SIGHUP kills.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if opt.pidFile != "" {
		if err := os.WriteFile(opt.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return fmt.Errorf("--pid-file %q: %w", opt.pidFile, err)
		}
		defer os.Remove(opt.pidFile)
	}

	srv := &http.Server{
		Handler:           a.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, len(listeners))
	for _, ln := range listeners {
		a.log.Info("listening", "addr", ln.Addr().String(), "network", ln.Addr().Network())
		go func() { errc <- srv.Serve(ln) }()
	}

	for {
		select {
		case <-hup:
			a.reload(opt.config)
		case err := <-errc:
			return fmt.Errorf("serve: %w", err)
		case <-ctx.Done():
			a.log.Info("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			a.log.Info("stopped")
			return nil
		}
	}
}

// reload re-reads the config file. A file that cannot be read or parsed is
// logged and ignored: the app keeps serving with the config it has.
func (a *app) reload(path string) {
	old := a.cur.Load()
	next, err := readConfig(path, old.version+1)
	if err != nil {
		a.log.Error("reload failed, keeping the current config", "err", err, "version", old.version)
		return
	}
	a.cur.Store(next)
	a.log.Info("config loaded", "greeting", next.cfg.Greeting, "version", next.version, "sha256", next.sha256)
}

// readConfig reads and parses the config file. It must hold a JSON object.
func readConfig(path string, version int) (*loaded, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %q: %w", path, err)
	}
	var cfg appConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("config %q: %w", path, err)
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("config %q: want a JSON object", path)
	}
	sum := sha256.Sum256(raw)
	return &loaded{cfg: cfg, raw: raw, sha256: hex.EncodeToString(sum[:]), version: version, at: time.Now()}, nil
}

// checkLoopback refuses any address that is not on the loopback interface:
// this app speaks plaintext and must only be reachable inside its pod.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--listen %q: refusing a non-loopback address: this app only listens on 127.0.0.1, ::1 or localhost (put outrigger proxy in front of it)", addr)
}
