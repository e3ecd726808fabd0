// Command outrigger is a sidecar for legacy web applications: an HTTPS
// terminating proxy (outrigger proxy), a configuration sync agent (outrigger
// sync), a configuration API (outrigger config …) and a demo of the whole
// pattern (outrigger demo). This package only parses arguments, wires the
// roles together and decides exit codes; the logic lives in internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/outrigger-sidecar/outrigger/examples/legacy-app/legacyapp"
	"github.com/outrigger-sidecar/outrigger/internal/configapi"
	"github.com/outrigger-sidecar/outrigger/internal/logwriter"
)

// Exit codes. They are part of the documented contract (docs/operations.md).
const (
	exitOK      = 0 // clean run or clean shutdown
	exitFailure = 1 // runtime failure (listener died, store failed, forced shutdown…)
	exitUsage   = 2 // bad flags, environment or config file: nothing was started
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// Logs (one access-log line per proxied request) are batched and written
	// every 100 ms instead of one write(2) per line; Close flushes them.
	stderr := logwriter.New(os.Stderr, 100*time.Millisecond)
	err := run(ctx, os.Args[1:], os.Stdout, stderr, os.Getenv)
	stop()
	code := exitCode(err, stderr)
	_ = stderr.Close()
	os.Exit(code)
}

// exitCode prints err as one line and maps it to the process exit code.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var printed *configapi.PrintedError
	if !errors.As(err, &printed) { // the config client printed its own error
		// One line, even for joined errors: log collectors and humans both
		// read the last line of a failed container.
		fmt.Fprintf(stderr, "outrigger: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitFailure
}

// usageError marks errors in what the user gave us (flags, env, files):
// they exit with code 2 before anything listens.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// env is what a command may use of the outside world; tests pass their own.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

const mainUsage = `outrigger — a sidecar that gives legacy web apps HTTPS and live configuration.

Usage:
  outrigger proxy   [flags]   terminate HTTPS (and HTTP/2) and proxy to the app on loopback
  outrigger sync    [flags]   keep the app's config file in step with a source; reload, verify, roll back
  outrigger config serve [flags]          run the configuration API
  outrigger config push|get|history|rollback|status|list|watch|schema …   talk to it
  outrigger run --config FILE   run several roles in one process from one YAML file
  outrigger demo    [flags]   the whole pattern on this machine, for a first look
  outrigger version           print build information

Run 'outrigger COMMAND --help' for a command's flags. Every flag can also be set
with an environment variable OUTRIGGER_<FLAG_IN_UPPER_SNAKE>; flags win.
`

// run dispatches to a subcommand. It is main without the process: tests call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv}
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return usage(errors.New("no command given"))
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "proxy":
		return cmdProxy(ctx, e, rest)
	case "sync":
		return cmdSync(ctx, e, rest)
	case "config":
		return cmdConfig(ctx, e, rest)
	case "run":
		return cmdRun(ctx, e, rest)
	case "demo":
		return cmdDemo(ctx, e, rest)
	case "legacy-app":
		// The stand-in legacy app (examples/legacy-app), built in so that
		// `outrigger demo` and the end-to-end tests need nothing else.
		return legacyapp.Run(ctx, rest, stderr)
	case "version", "--version", "-version":
		return cmdVersion(e)
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, mainUsage)
		return nil
	default:
		fmt.Fprint(stderr, mainUsage)
		return usage(fmt.Errorf("unknown command %q", cmd))
	}
}
