package deploy_test

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/cli"
	"github.com/outrigger-sidecar/outrigger/internal/configapi"
	"github.com/outrigger-sidecar/outrigger/internal/proxy"
	outsync "github.com/outrigger-sidecar/outrigger/internal/sync"
)

// commonFlags re-declares the flags cmd/outrigger/common.go gives every
// long-running command (package main cannot be imported).
// TestCommonFlagsMatchCmd fails when the two drift.
type commonFlags struct {
	Admin          string
	Pprof          bool
	LogLevel       string
	LogFormat      string
	StartupTimeout time.Duration
	ForceTimeout   time.Duration
}

func (c *commonFlags) register(fs *flag.FlagSet, adminDefault string) {
	fs.StringVar(&c.Admin, "admin", adminDefault, "")
	fs.BoolVar(&c.Pprof, "pprof", false, "")
	fs.StringVar(&c.LogLevel, "log-level", "info", "")
	fs.StringVar(&c.LogFormat, "log-format", "json", "")
	fs.DurationVar(&c.StartupTimeout, "startup-timeout", 30*time.Second, "")
	fs.DurationVar(&c.ForceTimeout, "force-exit-timeout", 0, "")
}

// validate mirrors commonFlags.validate in cmd/outrigger.
func (c *commonFlags) validate() error {
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "warning", "error":
	default:
		return fmt.Errorf("--log-level %q: must be debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
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

// Each role's default --admin, as cmd/outrigger passes it to register.
var adminDefaults = map[string]string{
	"proxy":        "127.0.0.1:9901",
	"sync":         "127.0.0.1:9902",
	"config serve": "",
}

// parsedArgs is a container's command line as the binary would parse it.
type parsedArgs struct {
	role   string // proxy, sync, config serve, legacy-app; "" = not a role (e.g. a config client command)
	common commonFlags
	proxy  *proxy.Config
	sync   *outsync.Config
	api    *configapi.Config
	app    *legacyAppFlags
	fs     *flag.FlagSet
}

// legacyAppFlags are the flags of the hidden `outrigger legacy-app`
// subcommand (the stand-in app): it has no Config type of its own to import.
// TestLegacyAppFlagsMatch keeps it in step with examples/legacy-app/legacyapp.
type legacyAppFlags struct {
	Listen, Config, PidFile, Unix string
}

// parseArgs parses a container's args and OUTRIGGER_* environment with the
// same FlagSets cmd/outrigger builds: the role's RegisterFlags, the common
// flags, then cli.Parse (flags first, then env).
func parseArgs(args []string, env map[string]string) (*parsedArgs, error) {
	if len(args) == 0 {
		return nil, errors.New("no args: the image's CMD (proxy) would run; give the role explicitly")
	}
	p := &parsedArgs{role: args[0]}
	rest := args[1:]
	fs := flag.NewFlagSet("outrigger "+p.role, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	switch p.role {
	case "proxy":
		p.proxy = &proxy.Config{}
		p.proxy.RegisterFlags(fs)
	case "sync":
		p.sync = &outsync.Config{}
		p.sync.RegisterFlags(fs)
	case "config":
		if len(rest) == 0 || rest[0] != "serve" {
			p.role = "" // a client command (push, list, …), parsed by configapi.RunClient at run time
			return p, nil
		}
		p.role, rest = "config serve", rest[1:]
		p.api = &configapi.Config{}
		p.api.RegisterFlags(fs)
	case "legacy-app":
		p.app = &legacyAppFlags{}
		fs.StringVar(&p.app.Listen, "listen", "127.0.0.1:8080", "")
		fs.StringVar(&p.app.Config, "config", "", "")
		fs.StringVar(&p.app.PidFile, "pid-file", "", "")
		fs.StringVar(&p.app.Unix, "unix", "", "")
	default:
		return nil, fmt.Errorf("args %q: unknown command %q", args, args[0])
	}
	if p.app == nil {
		p.common.register(fs, adminDefaults[p.role])
	}
	p.fs = fs
	for name := range env {
		if strings.HasPrefix(name, cli.EnvPrefix) && !hasEnvFlag(fs, name) {
			return nil, fmt.Errorf("env %s: no flag of %q reads it (misspelt?)", name, p.role)
		}
	}
	getenv := func(k string) string { return env[k] }
	if err := cli.Parse(fs, rest, getenv); err != nil {
		return nil, fmt.Errorf("args %q: %w", args, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("args %q: unexpected argument %q (flags are --name value)", args, fs.Arg(0))
	}
	return p, nil
}

func hasEnvFlag(fs *flag.FlagSet, env string) bool {
	found := false
	fs.VisitAll(func(f *flag.Flag) {
		if cli.EnvName(f.Name) == env {
			found = true
		}
	})
	return found
}

// validate runs the role's Validate as cmd/outrigger does before starting.
// Validate checks that --cert, --key and --client-ca are readable; those
// paths exist only inside the container, so they are re-rooted under dir
// (as empty files) for the check. Nothing else is rewritten.
func (p *parsedArgs) validate(dir string) error {
	if p.app != nil || p.role == "" {
		return nil
	}
	if err := p.common.validate(); err != nil {
		return err
	}
	switch {
	case p.proxy != nil:
		c := *p.proxy
		for _, f := range []*string{&c.CertFile, &c.KeyFile, &c.ClientCA} {
			if *f != "" {
				*f = touch(dir, *f)
			}
		}
		return c.Validate()
	case p.sync != nil:
		return p.sync.Validate()
	case p.api != nil:
		return p.api.Validate()
	}
	return nil
}

// touch creates an empty file for path under dir and returns its name.
// Cleaning "/"+path first keeps ".." from climbing out of dir, whatever the
// path (the fuzz target feeds arbitrary ones).
func touch(dir, path string) string {
	local := filepath.Join(dir, filepath.Clean("/"+filepath.FromSlash(path)))
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err == nil {
		if f, err := os.OpenFile(local, os.O_WRONLY|os.O_CREATE, 0o600); err == nil {
			f.Close()
		}
	}
	return local
}

// TestCommonFlagsMatchCmd keeps commonFlags above in step with
// cmd/outrigger/common.go and the roles' admin defaults.
func TestCommonFlagsMatchCmd(t *testing.T) {
	src, err := os.ReadFile("../cmd/outrigger/common.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`fs\.(\w+)Var\(&c\.\w+, "([a-z0-9-]+)"`)
	var inCmd []string
	for _, m := range re.FindAllSubmatch(src, -1) {
		inCmd = append(inCmd, string(m[2])+":"+string(m[1]))
	}
	var mine []string
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var c commonFlags
	c.register(fs, "")
	fs.VisitAll(func(f *flag.Flag) {
		typ := strings.TrimPrefix(fmt.Sprintf("%T", f.Value), "*flag.")
		typ = strings.TrimSuffix(typ, "Value")
		mine = append(mine, f.Name+":"+strings.ToUpper(typ[:1])+typ[1:])
	})
	sort.Strings(inCmd)
	sort.Strings(mine)
	if strings.Join(inCmd, " ") != strings.Join(mine, " ") {
		t.Errorf("common flags drifted:\n cmd/outrigger/common.go: %v\n deploy test:              %v", inCmd, mine)
	}

	for role, file := range map[string]string{"proxy": "proxy.go", "sync": "sync.go", "config serve": "config.go"} {
		src, err := os.ReadFile("../cmd/outrigger/" + file)
		if err != nil {
			t.Fatal(err)
		}
		// runRole(ctx, e, args, "outrigger proxy", proxyUsage, "127.0.0.1:9901", …)
		m := regexp.MustCompile(`runRole\(ctx, e, args(?:\[1:\])?, "[^"]*", \w+, "([^"]*)"`).FindSubmatch(src)
		if m == nil {
			t.Errorf("cmd/outrigger/%s: no runRole(…, \"<admin default>\", …) call found", file)
			continue
		}
		if got := string(m[1]); got != adminDefaults[role] {
			t.Errorf("%s: cmd registers --admin default %q, the deploy test assumes %q", role, got, adminDefaults[role])
		}
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"proxy defaults", []string{"proxy"}, nil, ""},
		{"proxy flags and env", []string{"proxy", "--listen=:8443", "--admin", ":9901"}, map[string]string{"OUTRIGGER_LOG_LEVEL": "debug"}, ""},
		{"unknown flag", []string{"proxy", "--listn=:8443"}, nil, "flag provided but not defined"},
		{"flag of another role", []string{"proxy", "--dest=/x"}, nil, "flag provided but not defined"},
		{"bad duration", []string{"proxy", "--drain-timeout=soon"}, nil, "invalid value"},
		{"bad env value", []string{"proxy"}, map[string]string{"OUTRIGGER_DRAIN_TIMEOUT": "soon"}, "OUTRIGGER_DRAIN_TIMEOUT"},
		{"misspelt env", []string{"sync"}, map[string]string{"OUTRIGGER_SOURCES": "x"}, "no flag"},
		{"positional argument", []string{"sync", "--once", "extra"}, nil, "unexpected argument"},
		{"unknown role", []string{"proxyy"}, nil, "unknown command"},
		{"no args", nil, nil, "no args"},
		{"config client", []string{"config", "push", "app", "f.json"}, nil, ""},
		{"config serve", []string{"config", "serve", "--listen=127.0.0.1:7700"}, nil, ""},
		{"legacy app", []string{"legacy-app", "--listen=127.0.0.1:8080", "--config=/shared/app.json"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseArgs(tt.args, tt.env)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("parseArgs(%q): %v", tt.args, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("parseArgs(%q): got %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestValidateArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"proxy with files", []string{"proxy", "--cert=/etc/tls/tls.crt", "--key=/etc/tls/tls.key"}, ""},
		{"proxy cert without key", []string{"proxy", "--cert=/etc/tls/tls.crt"}, "--key"},
		{"proxy plaintext off-pod", []string{"proxy", "--upstream=http://10.0.0.1:8080"}, "--upstream"},
		{"sync without source", []string{"sync", "--dest=/shared/app.json"}, "--source"},
		{"config serve open to the network", []string{"config", "serve", "--listen=:7700"}, "--tokens"},
		{"bad log level", []string{"sync", "--source=file:///x", "--dest=/y", "--log-level=loud"}, "--log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseArgs(tt.args, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = p.validate(t.TempDir())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validate(%q): %v", tt.args, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validate(%q): got %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestTouchStaysInDir(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"/etc/tls/tls.crt", "../../../../x", "a/../../b", "/", ""} {
		got := touch(dir, p)
		if rel, err := filepath.Rel(dir, got); err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("touch(%q) = %q, outside %q", p, got, dir)
		}
	}
}

func TestLegacyAppFlagsMatch(t *testing.T) {
	src, err := os.ReadFile("../examples/legacy-app/legacyapp/app.go")
	if err != nil {
		t.Fatal(err)
	}
	var inApp []string
	for _, m := range regexp.MustCompile(`fs\.\w+Var\(&opt\.\w+, "([a-z0-9-]+)"`).FindAllSubmatch(src, -1) {
		inApp = append(inApp, string(m[1]))
	}
	p, err := parseArgs([]string{"legacy-app"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	p.fs.VisitAll(func(f *flag.Flag) { mine = append(mine, f.Name) })
	sort.Strings(inApp)
	sort.Strings(mine)
	if strings.Join(inApp, " ") != strings.Join(mine, " ") {
		t.Errorf("legacy-app flags drifted:\n legacyapp: %v\n deploy test: %v", inApp, mine)
	}
}
