package sync

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func defaults(t *testing.T) Config {
	t.Helper()
	var c Config
	c.RegisterFlags(flag.NewFlagSet("sync", flag.ContinueOnError))
	c.Source = "file:///etc/app/app.json"
	c.Dest = "/shared/app.json"
	return c
}

func TestRegisterFlagsContract(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	c.RegisterFlags(fs)
	// The names DESIGN.md and the brief promise.
	for _, name := range []string{"source", "dest", "format", "check", "check-timeout", "signal", "pid-file",
		"process", "reload-url", "reload-cmd", "health", "health-timeout", "rollback", "once", "dry-run",
		"keep", "mode", "owner", "resync", "min-reload-interval", "max-staleness", "token", "token-file",
		"ca", "bundle", "sidecar-id", "wait"} {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("flag --%s missing", name)
			continue
		}
		if f.Usage == "" {
			t.Errorf("flag --%s has no usage", name)
		}
	}
	if c.Resync != time.Minute || c.Mode != "0644" || c.Keep != DefaultKeep || c.CheckTimeout != DefaultCheckTimeout {
		t.Errorf("defaults: %+v", c)
	}
	if c.SidecarID != "" {
		t.Errorf("sidecar-id default %q, want empty (New fills in the host name at run time, so help text and docs do not depend on the machine)", c.SidecarID)
	}
	if err := fs.Parse([]string{"--source", "file:///a", "--dest", "/b", "--signal", "USR1", "--process", "app", "--resync", "30s"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid flags: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // "" = valid
	}{
		{"defaults with source and dest", func(c *Config) {}, ""},
		{"full valid", func(c *Config) {
			c.Format, c.Check, c.PidFile, c.Health, c.Rollback = "json", "jq . {}", "/run/app.pid", "http://127.0.0.1:8080/healthz", true
			c.Owner, c.Mode, c.MaxStaleness = "1000:1000", "0640", 5*time.Minute
		}, ""},
		{"no source", func(c *Config) { c.Source = "" }, "--source is required"},
		{"source not a URL", func(c *Config) { c.Source = "/etc/app.json" }, "--source \"/etc/app.json\": want a URL"},
		{"no dest", func(c *Config) { c.Dest = "" }, "--dest is required"},
		{"dest is a directory", func(c *Config) { c.Dest = "/shared/" }, "--dest \"/shared/\": must name a file"},
		{"unknown format", func(c *Config) { c.Format = "hcl" }, "--format \"hcl\""},
		{"signal without target", func(c *Config) { c.Signal = "HUP" }, "--signal \"HUP\": needs --pid-file or --process"},
		{"bad signal", func(c *Config) { c.Signal, c.PidFile = "RELOAD", "/p" }, "--signal: signal \"RELOAD\""},
		{"pid file and process", func(c *Config) { c.PidFile, c.Process = "/p", "app" }, "mutually exclusive"},
		{"process is a path", func(c *Config) { c.Process = "/usr/bin/app" }, "--process \"/usr/bin/app\""},
		{"reload url scheme", func(c *Config) { c.ReloadURL = "ftp://x/reload" }, "--reload-url \"ftp://x/reload\": scheme must be http or https"},
		{"health without host", func(c *Config) { c.Health = "http:///healthz" }, "--health \"http:///healthz\": missing host"},
		{"health timeout zero", func(c *Config) { c.Health, c.HealthTimeout = "http://127.0.0.1/", 0 }, "--health-timeout"},
		{"health successes zero", func(c *Config) { c.Health, c.HealthSuccesses = "http://127.0.0.1/", 0 }, "--health-successes"},
		{"check timeout zero", func(c *Config) { c.Check, c.CheckTimeout = "true", 0 }, "--check-timeout"},
		{"rollback without trigger", func(c *Config) { c.Rollback = true }, "--rollback: needs --health or a reload method"},
		{"rollback without keep", func(c *Config) { c.Rollback, c.ReloadCmd, c.Keep = true, "true", 0 }, "--rollback: needs --keep >= 1"},
		{"negative keep", func(c *Config) { c.Keep = -1 }, "--keep -1"},
		{"bad mode", func(c *Config) { c.Mode = "rw-r--r--" }, "--mode \"rw-r--r--\""},
		{"setuid mode", func(c *Config) { c.Mode = "4755" }, "beyond 0777"},
		{"unreadable mode", func(c *Config) { c.Mode = "0044" }, "owner cannot read"},
		{"bad owner", func(c *Config) { c.Owner = ":" }, "--owner \":\""},
		{"negative owner", func(c *Config) { c.Owner = "-1:0" }, "must not be negative"},
		{"negative resync", func(c *Config) { c.Resync = -time.Second }, "--resync -1s"},
		{"staleness below resync", func(c *Config) { c.MaxStaleness = 30 * time.Second }, "--max-staleness 30s: must exceed --resync"},
		{"staleness without resync", func(c *Config) { c.MaxStaleness, c.Resync = time.Hour, 0 }, "--max-staleness 1h0m0s"},
		{"token and token file", func(c *Config) { c.Token, c.TokenFile = "t", "/f" }, "--token and --token-file"},
		{"client cert alone", func(c *Config) { c.ClientCert = "/c" }, "--client-cert and --client-key"},
		{"once and dry run", func(c *Config) { c.Once, c.DryRun = true, true }, "--once and --dry-run"},
		{"negative reload retries", func(c *Config) { c.ReloadRetries = -1 }, "--reload-retries -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := defaults(t)
			tc.modify(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"invalid config", func(c *Config) { c.Dest = "" }, "--dest is required"},
		{"dest directory missing", func(c *Config) { c.Dest = "/nonexistent-dir/app.json" }, "must exist"},
		{"unknown user", func(c *Config) { c.Owner = "no-such-user-xyz" }, "user \"no-such-user-xyz\""},
		{"bad source scheme", func(c *Config) { c.Source = "gopher://x/y" }, "gopher"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := defaults(t)
			c.Dest = t.TempDir() + "/app.json"
			tc.modify(&c)
			if _, err := New(c, Deps{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in   string
		want fs.FileMode
		ok   bool
	}{
		{"0644", 0o644, true}, {"644", 0o644, true}, {"0400", 0o400, true}, {"0777", 0o777, true},
		{"", 0, false}, {"0888", 0, false}, {"1644", 0, false}, {"-644", 0, false}, {"0o644", 0, false}, {"0000", 0, false},
	}
	for _, tc := range tests {
		t.Run(strconv.Quote(tc.in), func(t *testing.T) {
			got, err := ParseMode(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("ParseMode(%q) = %o, %v", tc.in, got, err)
			}
		})
	}
}

func TestParseOwner(t *testing.T) {
	tests := []struct {
		in       string
		uid, gid int
		ok       bool
	}{
		{"", -1, -1, true},
		{"1000:2000", 1000, 2000, true},
		{"1000", 1000, -1, true},
		{":2000", -1, 2000, true},
		{"root:root", 0, 0, true},
		{"root", 0, -1, true},
		{"root:", 0, 0, true},
		{":", -1, -1, false},
		{"a:b:c", -1, -1, false},
		{"no-such-user-xyz", -1, -1, false},
		{"1000:no-such-group-xyz", -1, -1, false},
		{"-5", -1, -1, false},
	}
	for _, tc := range tests {
		t.Run(strconv.Quote(tc.in), func(t *testing.T) {
			uid, gid, err := ParseOwner(tc.in)
			if (err == nil) != tc.ok || (tc.ok && (uid != tc.uid || gid != tc.gid)) {
				t.Fatalf("ParseOwner(%q) = %d, %d, %v", tc.in, uid, gid, err)
			}
		})
	}
}

func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"0644", "777", "", "4755", "0x1", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		if err == nil && (m&^0o777 != 0 || m&0o400 == 0) {
			t.Fatalf("ParseMode(%q) = %o accepted", s, m)
		}
	})
}

func FuzzSplitOwner(f *testing.F) {
	for _, s := range []string{"1000:1000", "app:app", ":g", "u:", ":", "a:b:c", "-1", "x\x00y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, g, err := splitOwner(s)
		if err != nil {
			return
		}
		for _, part := range []string{u, g} {
			if strings.ContainsAny(part, ":/\x00") || strings.HasPrefix(part, "-") {
				t.Fatalf("splitOwner(%q) accepted part %q", s, part)
			}
		}
	})
}

func TestSidecarIDDefaultsToHostName(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.json")
	if err := os.WriteFile(src, []byte(`{"a":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--source", "file://" + src, "--dest", filepath.Join(dir, "dest.json")}); err != nil {
		t.Fatal(err)
	}
	s, err := New(c, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if host, _ := os.Hostname(); s.cfg.SidecarID != host {
		t.Fatalf("sidecar id %q, want the host name %q", s.cfg.SidecarID, host)
	}
}
