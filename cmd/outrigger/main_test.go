package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite generated docs (docs/flags.md)")

func runCmd(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := run(ctx, args, &out, &errOut, func(k string) string { return env[k] })
	code = exitCode(err, &errOut)
	return out.String(), errOut.String(), code
}

// TestBadInputExitsBeforeListening: every bad flag value exits 2 with one
// clear line naming the flag, and nothing listens.
func TestBadInputExitsBeforeListening(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "no command", args: nil, want: "no command"},
		{name: "unknown command", args: []string{"proxi"}, want: `unknown command "proxi"`},
		{name: "unknown flag", args: []string{"proxy", "--upstrem", "http://127.0.0.1:1"}, want: "upstrem"},
		{name: "bad upstream scheme", args: []string{"proxy", "--upstream", "ftp://127.0.0.1:21"}, want: "--upstream"},
		{name: "non-loopback upstream", args: []string{"proxy", "--upstream", "http://192.0.2.10:80"}, want: "--upstream"},
		{name: "port out of range", args: []string{"proxy", "--listen", "127.0.0.1:70000"}, want: "--listen"},
		{name: "unreadable cert", args: []string{"proxy", "--cert", filepath.Join(dir, "missing.pem"), "--key", filepath.Join(dir, "missing.key")}, want: "--cert"},
		{name: "garbage cert", args: []string{"proxy", "--listen", "127.0.0.1:0", "--admin", "", "--cert", garbage, "--key", garbage}, want: "cert"},
		{name: "bad env value", env: map[string]string{"OUTRIGGER_UPSTREAM_RETRY_WINDOW": "soon"}, args: []string{"proxy"}, want: "OUTRIGGER_UPSTREAM_RETRY_WINDOW"},
		{name: "bad log level", args: []string{"proxy", "--log-level", "loud"}, want: "--log-level"},
		{name: "stray argument", args: []string{"proxy", "extra"}, want: `unexpected argument "extra"`},
		{name: "sync without source", args: []string{"sync", "--dest", filepath.Join(dir, "x.json")}, want: "--source"},
		{name: "sync bad format", args: []string{"sync", "--source", "file://" + garbage, "--dest", filepath.Join(dir, "x"), "--format", "jsn"}, want: "--format"},
		{name: "config without subcommand", args: []string{"config"}, want: "subcommand"},
		{name: "config serve non-loopback without tokens", args: []string{"config", "serve", "--listen", "0.0.0.0:0", "--data", dir}, want: "token"},
		{name: "run without config", args: []string{"run"}, want: "--config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runCmd(t, tt.env, tt.args...)
			if code == 0 {
				t.Fatalf("exit 0, want non-zero; stderr:\n%s", stderr)
			}
			last := lastLine(stderr)
			if !strings.HasPrefix(last, "outrigger: ") || !strings.Contains(last, tt.want) {
				t.Fatalf("last stderr line %q, want an 'outrigger: ' line containing %q\n(full stderr:\n%s)", last, tt.want, stderr)
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestHelpExitsZeroAndDocumentsEnv(t *testing.T) {
	for _, args := range [][]string{{"proxy", "--help"}, {"sync", "--help"}, {"config", "serve", "--help"}, {"run", "--help"}, {"demo", "--help"}, {"help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, stderr, code := runCmd(t, nil, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if args[0] != "help" && !strings.Contains(stderr, "env OUTRIGGER_") {
				t.Fatalf("help lacks env variables:\n%s", stderr)
			}
			if args[0] == "help" && !strings.Contains(out, "outrigger proxy") {
				t.Fatalf("help: %s", out)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, _, code := runCmd(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "outrigger ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestParseRunFile(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantErr string
		check   func(t *testing.T, rf *runFile)
	}{
		{name: "proxy and sync", doc: "admin: 127.0.0.1:0\nproxy:\n  listen: \":9443\"\n  hsts: true\nsync:\n  source: http://127.0.0.1:7700/v1/configs/app\n  dest: /tmp/x.json\n",
			check: func(t *testing.T, rf *runFile) {
				if rf.proxy == nil || rf.proxy.Listen != ":9443" || rf.sync == nil || rf.sync.Dest != "/tmp/x.json" || rf.config != nil {
					t.Fatalf("parsed %+v", rf)
				}
				if rf.common.Admin != "127.0.0.1:0" {
					t.Fatalf("admin %q", rf.common.Admin)
				}
			}},
		{name: "env expansion", doc: "proxy:\n  upstream: ${UP}\n", check: func(t *testing.T, rf *runFile) {
			if rf.proxy.Upstream != "http://127.0.0.1:9999" {
				t.Fatalf("upstream %q", rf.proxy.Upstream)
			}
		}},
		{name: "misspelt key names its line", doc: "proxy:\n  listen: \":1\"\n  upstreem: x\n", wantErr: `f.yaml:3: unknown key "upstreem" (did you mean "upstream"?)`},
		{name: "unknown section", doc: "proxi:\n  listen: x\n", wantErr: `f.yaml:1: unknown key "proxi"`},
		{name: "no role", doc: "admin: 127.0.0.1:0\n", wantErr: "no role"},
		{name: "empty", doc: "", wantErr: "empty"},
		{name: "bad value", doc: "proxy:\n  max-inflight: lots\n", wantErr: "f.yaml:2: max-inflight"},
		{name: "not yaml", doc: "proxy: [\n", wantErr: "f.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rf, err := parseRunFile("f.yaml", []byte(tt.doc), new(bytes.Buffer), func(k string) string {
				return map[string]string{"UP": "http://127.0.0.1:9999"}[k]
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, rf)
		})
	}
}

// TestExampleRunFileParses keeps examples/outrigger.yaml in step with the flags.
func TestExampleRunFileParses(t *testing.T) {
	rf, err := loadRunFile("../../examples/outrigger.yaml", new(bytes.Buffer), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if rf.proxy == nil || rf.sync == nil {
		t.Fatal("example should configure proxy and sync")
	}
	if err := rf.proxy.Validate(); err != nil {
		t.Fatalf("example proxy section: %v", err)
	}
	if err := rf.sync.Validate(); err != nil {
		t.Fatalf("example sync section: %v", err)
	}
}

func TestStartupDeadline(t *testing.T) {
	_, err := startup(context.Background(), 50*time.Millisecond, "slow thing", func() (int, error) {
		time.Sleep(2 * time.Second)
		return 1, nil
	})
	if err == nil || !strings.Contains(err.Error(), "--startup-timeout") {
		t.Fatalf("err = %v", err)
	}
	v, err := startup(context.Background(), time.Second, "fast", func() (int, error) { return 7, nil })
	if err != nil || v != 7 {
		t.Fatalf("v=%d err=%v", v, err)
	}
	_, err = startup(context.Background(), time.Second, "failing", func() (int, error) { return 0, errors.New("boom") })
	if err == nil || err.Error() != "boom" {
		t.Fatalf("err = %v", err)
	}
}

func TestFreePortFallsBack(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	if got := freePort(taken); got == taken || got == 0 {
		t.Fatalf("freePort(%d) = %d, want another free port", taken, got)
	}
}

// TestFlagsReferenceUpToDate keeps docs/flags.md equal to the commands'
// --help output. Regenerate with: go test ./cmd/outrigger -run FlagsReference -update
func TestFlagsReferenceUpToDate(t *testing.T) {
	var b strings.Builder
	b.WriteString("# Flags reference\n\nGenerated from `--help` by `go test ./cmd/outrigger -run FlagsReference -update`; do not edit.\n")
	b.WriteString("Every flag is also read from the environment variable shown (flags win), and in `outrigger run` files\nfrom the key of the same name.\n")
	for _, args := range [][]string{{"proxy"}, {"sync"}, {"config", "serve"}, {"config", "--help"}, {"run"}, {"demo"}} {
		full := append(append([]string{}, args...), "--help")
		if args[len(args)-1] == "--help" {
			full = args
		}
		stdout, stderr, code := runCmd(t, nil, full...)
		if code != 0 {
			t.Fatalf("%v: exit %d", full, code)
		}
		title := strings.Join(args, " ")
		title = strings.TrimSuffix(title, " --help")
		if title == "config" {
			title = "config (client)"
		}
		b.WriteString("\n## outrigger " + title + "\n\n```\n" + strings.TrimSpace(stdout+stderr) + "\n```\n")
	}
	const path = "../../docs/flags.md"
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(have) != b.String() {
		t.Fatalf("docs/flags.md is out of date with the --help texts: run go test ./cmd/outrigger -run FlagsReference -update")
	}
}
