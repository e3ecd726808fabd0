package sync

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/format"
	"github.com/outrigger-sidecar/outrigger/internal/reload"
)

// Defaults of the sync role's flags.
const (
	DefaultCheckTimeout      = 30 * time.Second
	DefaultHealthTimeout     = 30 * time.Second
	DefaultHealthInterval    = 250 * time.Millisecond
	DefaultHealthSuccesses   = 2
	DefaultReloadTimeout     = 30 * time.Second
	DefaultReloadRetries     = 3
	DefaultKeep              = 3
	DefaultMode              = "0644"
	DefaultResync            = time.Minute
	DefaultMinReloadInterval = time.Second
)

// Config configures `outrigger sync`. Flags bind into it with RegisterFlags;
// internal/cli layers OUTRIGGER_* variables and YAML on top.
type Config struct {
	// Source is where the config comes from (--source): http(s)://…/v1/configs/NAME,
	// etcd://host:port/key or file:///path.
	Source string
	// Dest is the file the application reads (--dest); with Bundle, a
	// symlink to a directory.
	Dest string
	// Format checks every version before it is written (--format); empty
	// infers it from Dest's extension, else raw.
	Format string
	// Check is a shell command that must exit 0 for a candidate (--check);
	// "{}" is replaced by the candidate file's path.
	Check string
	// CheckTimeout bounds Check (--check-timeout).
	CheckTimeout time.Duration
	// AllowEmpty accepts empty content (--allow-empty); by default an empty
	// config is rejected, because a source that lost its state must not
	// blank the application's config.
	AllowEmpty bool

	// Signal is sent to PidFile's process or to every process named Process
	// (--signal, default HUP when one of those is set).
	Signal, PidFile, Process string
	// ReloadURL is POSTed to after a write (--reload-url); 2xx = success.
	ReloadURL string
	// ReloadCmd runs via /bin/sh -c after a write (--reload-cmd).
	ReloadCmd string
	// ReloadTimeout bounds one HTTP or command reload (--reload-timeout).
	ReloadTimeout time.Duration
	// ReloadRetries is how many times a failed reload is retried with
	// backoff (--reload-retries).
	ReloadRetries int

	// Health is polled after a reload (--health); 2xx = healthy.
	Health string
	// HealthTimeout bounds the wait for a healthy answer (--health-timeout).
	HealthTimeout time.Duration
	// HealthInterval is the polling period (--health-interval).
	HealthInterval time.Duration
	// HealthSuccesses is how many consecutive 2xx answers count as healthy
	// (--health-successes): an application reloads asynchronously, so the
	// first answer may still come from the old config.
	HealthSuccesses int
	// Rollback restores the previous file when reload or health fails (--rollback).
	Rollback bool

	// Once applies the current version and exits (--once); DryRun only
	// fetches and validates it (--dry-run).
	Once, DryRun bool
	// Keep is how many previous versions stay beside Dest (--keep).
	Keep int
	// Mode is Dest's permission, octal (--mode).
	Mode string
	// Owner is Dest's owner, "uid:gid", "user:group", "user" or ":group" (--owner).
	Owner string

	// Resync re-reads the source periodically (--resync, 0 = off); it
	// catches watches that died silently.
	Resync time.Duration
	// MinReloadInterval spaces applies (--min-reload-interval): a burst of
	// versions coalesces into few applies that end on the newest.
	MinReloadInterval time.Duration
	// MaxStaleness makes the sidecar unready when the source has not been
	// reached for this long (--max-staleness, 0 = never).
	MaxStaleness time.Duration

	// Token, TokenFile authenticate to the config API (--token, --token-file).
	Token, TokenFile string
	// CA is a PEM roots file for https:// and etcds:// sources (--ca).
	CA string
	// ClientCert, ClientKey are an optional mTLS client certificate.
	ClientCert, ClientKey string
	// Bundle syncs several files as one version (--bundle).
	Bundle bool
	// SidecarID names this sidecar in status reports (--sidecar-id,
	// default the host name).
	SidecarID string
	// Wait is the long-poll duration per config API request (--wait).
	Wait time.Duration
}

// RegisterFlags binds every field to fs with its default.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Source, "source", "", "where the config comes from: `URL` http(s)://HOST/v1/configs/NAME, etcd://HOST:PORT/KEY or file:///PATH (required)")
	fs.StringVar(&c.Dest, "dest", "", "`file` the application reads, replaced atomically (with --bundle: a symlink to a directory) (required)")
	fs.StringVar(&c.Format, "format", "", "check each version as json, yaml, toml, xml, ini or raw (default: from --dest's extension, else raw)")
	fs.StringVar(&c.Check, "check", "", "shell `command` that must exit 0 before a version is written; {} is the candidate file (e.g. \"nginx -t -c {}\")")
	fs.DurationVar(&c.CheckTimeout, "check-timeout", DefaultCheckTimeout, "time limit for --check")
	fs.BoolVar(&c.AllowEmpty, "allow-empty", false, "accept an empty config (by default rejected: a source that lost its data must not blank the app)")
	fs.StringVar(&c.Signal, "signal", "", "signal `name` or number sent to the app after a write (default HUP when --pid-file or --process is set)")
	fs.StringVar(&c.PidFile, "pid-file", "", "`file` holding the app's pid, for --signal")
	fs.StringVar(&c.Process, "process", "", "executable `name` of the app, for --signal; every matching process is signalled (needs a shared PID namespace)")
	fs.StringVar(&c.ReloadURL, "reload-url", "", "`URL` POSTed to after a write; 2xx = reloaded")
	fs.StringVar(&c.ReloadCmd, "reload-cmd", "", "shell `command` run after a write (e.g. \"nginx -s reload\")")
	fs.DurationVar(&c.ReloadTimeout, "reload-timeout", DefaultReloadTimeout, "time limit for one --reload-url request or --reload-cmd run")
	fs.IntVar(&c.ReloadRetries, "reload-retries", DefaultReloadRetries, "how many times a failed reload is retried, with backoff")
	fs.StringVar(&c.Health, "health", "", "`URL` polled after a reload; must answer 2xx within --health-timeout")
	fs.DurationVar(&c.HealthTimeout, "health-timeout", DefaultHealthTimeout, "how long the app may take to answer --health with 2xx")
	fs.DurationVar(&c.HealthInterval, "health-interval", DefaultHealthInterval, "polling period of --health")
	fs.IntVar(&c.HealthSuccesses, "health-successes", DefaultHealthSuccesses, "consecutive 2xx answers from --health that count as healthy")
	fs.BoolVar(&c.Rollback, "rollback", false, "restore the previous file and reload again when the reload or --health fails (needs --keep >= 1)")
	fs.BoolVar(&c.Once, "once", false, "apply the current version and exit (init containers)")
	fs.BoolVar(&c.DryRun, "dry-run", false, "fetch and validate the current version, write nothing, and exit")
	fs.IntVar(&c.Keep, "keep", DefaultKeep, "previous versions kept beside --dest (FILE.1 newest …)")
	fs.StringVar(&c.Mode, "mode", DefaultMode, "permission of --dest, `octal`")
	fs.StringVar(&c.Owner, "owner", "", "owner of --dest: `uid:gid`, user:group, user or :group (default: unchanged)")
	fs.DurationVar(&c.Resync, "resync", DefaultResync, "re-read the source this often even without a change notice (0 = never)")
	fs.DurationVar(&c.MinReloadInterval, "min-reload-interval", DefaultMinReloadInterval, "least time between two applies; versions arriving meanwhile coalesce (0 = no limit)")
	fs.DurationVar(&c.MaxStaleness, "max-staleness", 0, "report not ready when the source was last reached longer ago than this (0 = never; must exceed --resync)")
	fs.StringVar(&c.Token, "token", "", "bearer `token` for the config API")
	fs.StringVar(&c.TokenFile, "token-file", "", "`file` holding the config API token, re-read on every request")
	fs.StringVar(&c.CA, "ca", "", "PEM `file` of CA certificates for https:// and etcds:// sources (default: system roots)")
	fs.StringVar(&c.ClientCert, "client-cert", "", "PEM client certificate `file` for mTLS to the source (with --client-key)")
	fs.StringVar(&c.ClientKey, "client-key", "", "PEM client key `file` for mTLS to the source (with --client-cert)")
	fs.BoolVar(&c.Bundle, "bundle", false, "sync several files as one version: --dest becomes a symlink to a directory swapped atomically")
	fs.StringVar(&c.SidecarID, "sidecar-id", "", "`name` of this sidecar in status reports to the config API (default: the host name, which in Kubernetes is the pod name)")
	fs.DurationVar(&c.Wait, "wait", 0, "long-poll duration per config API request (0 = the source's default, 60s)")
}

// Validate checks the configuration without touching the network; errors
// name the flag at fault.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Source == "" {
		add("--source is required")
	} else if !strings.Contains(c.Source, "://") {
		add("--source %q: want a URL: http(s)://HOST/v1/configs/NAME, etcd://HOST:PORT/KEY or file:///PATH", c.Source)
	}
	if c.Dest == "" {
		add("--dest is required")
	} else if strings.HasSuffix(c.Dest, "/") || filepath.Base(c.Dest) == "." || filepath.Base(c.Dest) == ".." {
		add("--dest %q: must name a file, not a directory", c.Dest)
	}
	if c.Format != "" {
		if _, err := format.Parse(c.Format); err != nil {
			add("--format %q: %w", c.Format, err)
		}
	}
	if c.Check != "" && c.CheckTimeout <= 0 {
		add("--check-timeout %v: must be positive", c.CheckTimeout)
	}
	if c.Signal != "" {
		if _, err := reload.ParseSignal(c.Signal); err != nil {
			add("--signal: %w", err)
		}
		if c.PidFile == "" && c.Process == "" {
			add("--signal %q: needs --pid-file or --process to find the app", c.Signal)
		}
	}
	if c.PidFile != "" && c.Process != "" {
		add("--pid-file and --process are mutually exclusive: give one way to find the app")
	}
	if c.Process != "" && strings.ContainsRune(c.Process, '/') {
		add("--process %q: want the executable's name, not a path", c.Process)
	}
	if c.ReloadURL != "" {
		if err := checkHTTPURL(c.ReloadURL); err != nil {
			add("--reload-url %q: %w", c.ReloadURL, err)
		}
	}
	if (c.ReloadURL != "" || c.ReloadCmd != "") && c.ReloadTimeout <= 0 {
		add("--reload-timeout %v: must be positive", c.ReloadTimeout)
	}
	if c.ReloadRetries < 0 {
		add("--reload-retries %d: must not be negative", c.ReloadRetries)
	}
	if c.Health != "" {
		if err := checkHTTPURL(c.Health); err != nil {
			add("--health %q: %w", c.Health, err)
		}
		if c.HealthTimeout <= 0 {
			add("--health-timeout %v: must be positive", c.HealthTimeout)
		}
		if c.HealthInterval <= 0 {
			add("--health-interval %v: must be positive", c.HealthInterval)
		}
		if c.HealthSuccesses < 1 {
			add("--health-successes %d: must be at least 1", c.HealthSuccesses)
		}
	}
	if c.Rollback {
		if c.Health == "" && !c.hasReload() {
			add("--rollback: needs --health or a reload method (--signal/--pid-file/--process, --reload-url, --reload-cmd) whose failure triggers it")
		}
		if c.Keep < 1 && !c.Bundle {
			add("--rollback: needs --keep >= 1 to have a previous version to restore")
		}
	}
	if c.Keep < 0 {
		add("--keep %d: must not be negative", c.Keep)
	}
	if _, err := ParseMode(c.Mode); err != nil {
		add("--mode %q: %w", c.Mode, err)
	}
	if _, _, err := splitOwner(c.Owner); err != nil {
		add("--owner %q: %w", c.Owner, err)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--resync", c.Resync}, {"--min-reload-interval", c.MinReloadInterval}, {"--max-staleness", c.MaxStaleness}, {"--wait", c.Wait}} {
		if d.v < 0 {
			add("%s %v: must not be negative", d.flag, d.v)
		}
	}
	if c.MaxStaleness > 0 && (c.Resync == 0 || c.MaxStaleness <= c.Resync) {
		add("--max-staleness %v: must exceed --resync (%v), the longest a healthy source may stay silent", c.MaxStaleness, c.Resync)
	}
	if c.Token != "" && c.TokenFile != "" {
		add("--token and --token-file are mutually exclusive")
	}
	if (c.ClientCert == "") != (c.ClientKey == "") {
		add("--client-cert and --client-key must be given together")
	}
	if c.Once && c.DryRun {
		add("--once and --dry-run are mutually exclusive")
	}
	return errors.Join(errs...)
}

func (c *Config) hasReload() bool {
	return c.Signal != "" || c.PidFile != "" || c.Process != "" || c.ReloadURL != "" || c.ReloadCmd != ""
}

func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme must be http or https")
	}
	if u.Host == "" {
		return fmt.Errorf("missing host")
	}
	return nil
}

// ParseMode parses an octal permission such as "0644" or "640".
func ParseMode(s string) (fs.FileMode, error) {
	if s == "" {
		return 0, errors.New("empty, want octal like 0644")
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return 0, fmt.Errorf("want octal like 0644: %w", errors.Unwrap(err))
	}
	if n > 0o777 {
		return 0, fmt.Errorf("%o has bits beyond 0777 (setuid, sticky…), which a config file must not have", n)
	}
	if n&0o400 == 0 {
		return 0, errors.New("the owner cannot read the file")
	}
	return fs.FileMode(n), nil
}

// splitOwner splits "user:group" (either part optional, but not both when
// the colon is present) and checks the parts' syntax.
func splitOwner(s string) (usr, grp string, err error) {
	if s == "" {
		return "", "", nil
	}
	usr, grp, colon := strings.Cut(s, ":")
	if colon && usr == "" && grp == "" {
		return "", "", errors.New("want uid:gid, user:group, user or :group")
	}
	for _, part := range []string{usr, grp} {
		if strings.ContainsAny(part, ": \t\n/\x00") || len(part) > 256 {
			return "", "", fmt.Errorf("%q is not a valid user or group name", part)
		}
		if part != "" && part[0] == '-' {
			return "", "", fmt.Errorf("%q: ids must not be negative", part)
		}
	}
	return usr, grp, nil
}

// ParseOwner resolves --owner to numeric ids (-1 = unchanged). Numeric parts
// are used as they are; names are looked up in the user database.
func ParseOwner(s string) (uid, gid int, err error) {
	usr, grp, err := splitOwner(s)
	if err != nil {
		return -1, -1, err
	}
	uid, gid = -1, -1
	if usr != "" {
		if uid, err = strconv.Atoi(usr); err != nil {
			u, lerr := user.Lookup(usr)
			if lerr != nil {
				return -1, -1, fmt.Errorf("user %q: %w", usr, lerr)
			}
			uid, _ = strconv.Atoi(u.Uid)
			if grp == "" && strings.HasSuffix(s, ":") {
				gid, _ = strconv.Atoi(u.Gid) // "user:" = the user's primary group
			}
		}
	}
	if grp != "" {
		if gid, err = strconv.Atoi(grp); err != nil {
			g, lerr := user.LookupGroup(grp)
			if lerr != nil {
				return -1, -1, fmt.Errorf("group %q: %w", grp, lerr)
			}
			gid, _ = strconv.Atoi(g.Gid)
		}
	}
	return uid, gid, nil
}

// inferFormat picks the format for a file name: the explicit --format, else
// by extension, else raw.
func inferFormat(explicit, name string) (format.Format, error) {
	if explicit != "" {
		return format.Parse(explicit)
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return format.Parse("json")
	case ".yaml", ".yml":
		return format.Parse("yaml")
	case ".toml":
		return format.Parse("toml")
	case ".xml":
		return format.Parse("xml")
	case ".ini":
		return format.Parse("ini")
	}
	return format.Parse("raw")
}
