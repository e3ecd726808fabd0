package configapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultServer is the config API the client talks to by default.
const DefaultServer = "http://127.0.0.1:7700"

const clientUsage = `usage: outrigger config <command> [flags] [args]

commands:
  push NAME FILE     store FILE as a new version (--type, --if-match, --author)
  get NAME           print the latest version (--version N, -o FILE)
  history NAME       list every version
  rollback NAME      make an older version current (--to N)
  status NAME        what each sidecar applied
  list               every config's latest version
  watch NAME         print each new version as it arrives (until interrupted)
  schema NAME [FILE] register FILE as NAME's JSON Schema, or print it

common flags (every command):
  --server URL       config API (default http://127.0.0.1:7700, env OUTRIGGER_SERVER)
  --token T          bearer token (env OUTRIGGER_TOKEN)
  --token-file F     read the token from F (env OUTRIGGER_TOKEN_FILE)
  --ca FILE          PEM CA bundle to trust for https (env OUTRIGGER_CA)
  --json             machine-readable output
Run "outrigger config <command> --help" for a command's flags.
`

// clientFlags are the flags every subcommand has.
type clientFlags struct {
	server, token, tokenFile, ca string
	json                         bool
	timeout                      time.Duration
}

func (f *clientFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	def := func(env, d string) string {
		if v := getenv(env); v != "" {
			return v
		}
		return d
	}
	fs.StringVar(&f.server, "server", def("OUTRIGGER_SERVER", DefaultServer), "config API `URL` (env OUTRIGGER_SERVER)")
	fs.StringVar(&f.token, "token", "", "bearer `token` (env OUTRIGGER_TOKEN; prefer --token-file, flags show in ps)")
	fs.StringVar(&f.tokenFile, "token-file", def("OUTRIGGER_TOKEN_FILE", ""), "read the bearer token from `file` (env OUTRIGGER_TOKEN_FILE)")
	fs.StringVar(&f.ca, "ca", def("OUTRIGGER_CA", ""), "PEM CA bundle `file` to trust for https (env OUTRIGGER_CA)")
	fs.BoolVar(&f.json, "json", false, "print JSON instead of tables")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "per-request `timeout` (not for watch's long polls)")
}

// client builds the Client the flags describe.
func (f *clientFlags) client(getenv func(string) string) (*Client, error) {
	token := f.token
	switch {
	case token != "":
	case f.tokenFile != "":
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	default:
		token = strings.TrimSpace(getenv("OUTRIGGER_TOKEN"))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %q: no PEM certificates found", f.ca)
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	c, err := NewClient(f.server, token, &http.Client{Transport: tr})
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	return c, nil
}

// RunClient runs `outrigger config <args…>`: args starts with the
// subcommand (push, get, history, rollback, status, list, watch, schema).
// Output goes to stdout; errors are printed to stderr with the server's
// message and returned as a *PrintedError (the caller picks the exit code
// and need not print it again). --help prints usage and returns nil.
func RunClient(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, clientUsage)
		return &PrintedError{Err: errors.New("config: missing command")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, clientUsage)
		return nil
	}
	run, ok := clientCommands[cmd]
	if !ok {
		fmt.Fprint(stderr, clientUsage)
		err := fmt.Errorf("config: unknown command %q", cmd)
		fmt.Fprintf(stderr, "outrigger %v\n", err)
		return &PrintedError{Err: err}
	}
	fs := flag.NewFlagSet("outrigger config "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs, getenv)
	cc := &cmdCtx{fs: fs, cf: &cf, stdout: stdout, stderr: stderr, getenv: getenv}
	err := run(ctx, cc, rest)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	var pe *PrintedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe):
		return err // the flag package or the usage text said it already
	}
	fmt.Fprintf(stderr, "outrigger config %s: %v\n", cmd, err)
	return &PrintedError{Err: err}
}

// PrintedError is what RunClient returns for a failed command: the error
// was already printed to stderr, so the caller only decides the exit code
// and need not print it again.
type PrintedError struct{ Err error }

// Error returns the underlying error's message.
func (e *PrintedError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error (an *APIError for server refusals).
func (e *PrintedError) Unwrap() error { return e.Err }

// cmdCtx is what a subcommand gets.
type cmdCtx struct {
	fs             *flag.FlagSet
	cf             *clientFlags
	stdout, stderr io.Writer
	getenv         func(string) string
}

// parse parses flags anywhere among the positional arguments ("push app
// app.json --type json" works) and checks the positional count.
func (cc *cmdCtx) parse(args []string, usage string, minPos, maxPos int) ([]string, error) {
	cc.fs.Usage = func() {
		fmt.Fprintf(cc.fs.Output(), "usage: %s %s\n", cc.fs.Name(), usage)
		cc.fs.PrintDefaults()
	}
	var pos []string
	for {
		if err := cc.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &PrintedError{Err: err} // flag printed it with the usage
		}
		rest := cc.fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < minPos || len(pos) > maxPos {
		cc.fs.Usage()
		return nil, &PrintedError{Err: fmt.Errorf("usage: %s %s", cc.fs.Name(), usage)}
	}
	if minPos > 0 {
		if err := ValidName(pos[0]); err != nil {
			return nil, fmt.Errorf("config %w", err)
		}
	}
	return pos, nil
}

func (cc *cmdCtx) client() (*Client, error) { return cc.cf.client(cc.getenv) }

// begin does what most subcommands start with: parse the flags and
// minArgs..maxArgs positional arguments, build the client, and derive the
// request context (--timeout); the caller defers cancel.
func (cc *cmdCtx) begin(ctx context.Context, args []string, usage string, minArgs, maxArgs int) (pos []string, c *Client, rctx context.Context, cancel context.CancelFunc, err error) {
	if pos, err = cc.parse(args, usage, minArgs, maxArgs); err != nil {
		return nil, nil, nil, nil, err
	}
	if c, err = cc.client(); err != nil {
		return nil, nil, nil, nil, err
	}
	rctx, cancel = cc.reqCtx(ctx)
	return pos, c, rctx, cancel, nil
}

func (cc *cmdCtx) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if cc.cf.timeout > 0 {
		return context.WithTimeout(ctx, cc.cf.timeout)
	}
	return context.WithCancel(ctx)
}

func (cc *cmdCtx) printJSON(v any) error {
	enc := json.NewEncoder(cc.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// clientCommands maps subcommand names to their implementations.
var clientCommands = map[string]func(context.Context, *cmdCtx, []string) error{
	"push":     cmdPush,
	"get":      cmdGet,
	"history":  cmdHistory,
	"rollback": cmdRollback,
	"status":   cmdStatus,
	"list":     cmdList,
	"watch":    cmdWatch,
	"schema":   cmdSchema,
}

// typeByExt maps a file extension to the content type push sends when
// --type is not given. .conf and .cfg are deliberately not INI: nginx,
// Apache and many other .conf files are not INI; push them with --type ini
// when they are.
var typeByExt = map[string]string{
	".json": "application/json",
	".yaml": "application/yaml",
	".yml":  "application/yaml",
	".toml": "application/toml",
	".xml":  "application/xml",
	".ini":  "text/x-ini",
	".tar":  "application/x-tar",
}

// typeByName maps --type short names to content types.
var typeByName = map[string]string{
	"json": "application/json",
	"yaml": "application/yaml",
	"yml":  "application/yaml",
	"toml": "application/toml",
	"xml":  "application/xml",
	"ini":  "text/x-ini",
	"raw":  "application/octet-stream",
	"text": "text/plain",
	"tar":  "application/x-tar",
}

// pushContentType resolves --type (a short name or a media type) or the
// file's extension; unknown extensions are text/plain (stored unchecked).
func pushContentType(flagType, file string) string {
	if flagType != "" {
		if ct, ok := typeByName[strings.ToLower(flagType)]; ok {
			return ct
		}
		return flagType
	}
	if ct, ok := typeByExt[strings.ToLower(filepath.Ext(file))]; ok {
		return ct
	}
	return "text/plain"
}
