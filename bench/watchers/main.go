// Command watchers measures how fast a configuration push reaches its
// consumers, against a real `outrigger config serve`.
//
//	watchers fanout --server http://127.0.0.1:7700 --name bench --n 10000 --pushes 20 --server-pid PID
//
// starts N long-poll watchers (GET /v1/configs/NAME?wait=60s with
// If-None-Match, as `outrigger sync` does), waits until the server reports
// all N waiting (its outrigger_config_watchers gauge), then pushes R
// versions one at a time and records, for every watcher, the time from the
// start of the PUT to the watcher receiving the new version. It prints one
// Markdown table row: p50, p99 and max over all N×R samples, missed
// deliveries, and the server's RSS with N watchers waiting.
//
//	watchers reload --server http://127.0.0.1:7700 --name app --app http://127.0.0.1:8080/ --pushes 100
//
// pushes R versions of a legacy-app config (a new greeting each time) and
// polls the app's / until it serves the new greeting: push → outrigger sync
// → file written → SIGHUP → app reloaded, end to end. It prints one row with
// p50, p99 and max.
//
// It only talks to loopback addresses. Several loopback source addresses
// (--sources 127.0.0.1,127.0.0.2) spread many connections over more
// ephemeral port ranges. It is a benchmark driver, not a test of
// correctness: it does not check content, only arrival.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "watchers:", err)
		os.Exit(1)
	}
}

const usage = `usage: watchers fanout|reload [flags]   (watchers MODE --help for flags)`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "fanout":
		c, err := parseFanout(args[1:], stderr)
		if err != nil {
			return err
		}
		res, err := fanout(ctx, c, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, res.row(c.label))
		return nil
	case "reload":
		c, err := parseReload(args[1:], stderr)
		if err != nil {
			return err
		}
		res, err := reload(ctx, c, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, res.row(c.label))
		return nil
	default:
		return fmt.Errorf("unknown mode %q; %s", args[0], usage)
	}
}

// loopbackURL parses raw and insists on http(s) to a loopback IP or
// "localhost".
func loopbackURL(flagName, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", flagName, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%s %q: scheme must be http or https", flagName, raw)
	}
	if !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("%s %q: host must be loopback (127.0.0.0/8, ::1 or localhost)", flagName, raw)
	}
	return u, nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// parseSources parses a comma-separated list of loopback IPs.
func parseSources(s string) ([]net.IP, error) {
	var ips []net.IP
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ip := net.ParseIP(f)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("--sources %q: %q is not a loopback IP", s, f)
		}
		ips = append(ips, ip)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("--sources %q: no addresses", s)
	}
	return ips, nil
}

// raiseNoFile lifts the soft open-file limit to the hard limit. Go does
// this at start-up on Linux too; doing it here keeps the program correct
// when embedded in a test binary started with a low soft limit.
func raiseNoFile() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	return r.Cur
}
