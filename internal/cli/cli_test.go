package cli

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type testConfig struct {
	Listen  string
	Retry   time.Duration
	HSTS    bool
	Max     int
	Names   listFlag
	Verbose bool
}

func newFlags(c *testConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	fs.StringVar(&c.Listen, "listen", ":8443", "address")
	fs.DurationVar(&c.Retry, "upstream-retry-window", 5*time.Second, "window")
	fs.BoolVar(&c.HSTS, "hsts", false, "hsts")
	fs.IntVar(&c.Max, "max-inflight", 0, "max")
	fs.Var(&c.Names, "hostname", "names")
	return fs
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"listen":                "OUTRIGGER_LISTEN",
		"upstream-retry-window": "OUTRIGGER_UPSTREAM_RETRY_WINDOW",
		"a.b":                   "OUTRIGGER_A_B",
	} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    testConfig
		wantErr string
	}{
		{name: "defaults", want: testConfig{Listen: ":8443", Retry: 5 * time.Second}},
		{name: "env fills", env: map[string]string{"OUTRIGGER_LISTEN": ":9443", "OUTRIGGER_HSTS": "true", "OUTRIGGER_UPSTREAM_RETRY_WINDOW": "2s"},
			want: testConfig{Listen: ":9443", HSTS: true, Retry: 2 * time.Second}},
		{name: "flag wins over env", args: []string{"--listen", ":1"}, env: map[string]string{"OUTRIGGER_LISTEN": ":2"},
			want: testConfig{Listen: ":1", Retry: 5 * time.Second}},
		{name: "bad env value names variable", env: map[string]string{"OUTRIGGER_MAX_INFLIGHT": "lots"},
			wantErr: "OUTRIGGER_MAX_INFLIGHT"},
		{name: "bad flag", args: []string{"--max-inflight", "x"}, wantErr: "invalid value"},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c testConfig
			fs := newFlags(&c)
			err := Parse(fs, tt.args, envOf(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Listen != tt.want.Listen || c.Retry != tt.want.Retry || c.HSTS != tt.want.HSTS || c.Max != tt.want.Max {
				t.Fatalf("got %+v, want %+v", c, tt.want)
			}
		})
	}
}

func TestApplyYAML(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		env     map[string]string
		check   func(t *testing.T, c testConfig)
		wantErr string
	}{
		{name: "values", doc: "listen: \":7443\"\nhsts: true\nupstream-retry-window: 3s\nmax-inflight: 9\n",
			check: func(t *testing.T, c testConfig) {
				if c.Listen != ":7443" || !c.HSTS || c.Retry != 3*time.Second || c.Max != 9 {
					t.Fatalf("got %+v", c)
				}
			}},
		{name: "list", doc: "hostname: [a.example, b.example]\n", check: func(t *testing.T, c testConfig) {
			if len(c.Names) != 2 || c.Names[1] != "b.example" {
				t.Fatalf("names = %v", c.Names)
			}
		}},
		{name: "env expansion", doc: "listen: ${ADDR}\n", env: map[string]string{"ADDR": ":6443"}, check: func(t *testing.T, c testConfig) {
			if c.Listen != ":6443" {
				t.Fatalf("listen = %q", c.Listen)
			}
		}},
		{name: "empty document", doc: "", check: func(t *testing.T, c testConfig) {}},
		{name: "misspelt key names line and suggestion", doc: "listen: x\nupstream-retry-windw: 1s\n", wantErr: `f.yaml:2: unknown key "upstream-retry-windw" (did you mean "upstream-retry-window"?)`},
		{name: "bad value names line", doc: "\n\nmax-inflight: many\n", wantErr: "f.yaml:3: max-inflight"},
		{name: "nested mapping", doc: "listen: {a: b}\n", wantErr: "expected a value"},
		{name: "not a mapping", doc: "- a\n- b\n", wantErr: "expected a mapping"},
		{name: "duplicate key", doc: "hsts: true\nhsts: false\n", wantErr: "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c testConfig
			fs := newFlags(&c)
			var node yaml.Node
			if err := yaml.Unmarshal([]byte(tt.doc), &node); err != nil {
				if tt.wantErr != "" && strings.Contains(err.Error(), tt.wantErr) {
					return
				}
				t.Fatal(err)
			}
			_, err := ApplyYAML(fs, "f.yaml", &node, envOf(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestUsageListsEnv(t *testing.T) {
	var c testConfig
	fs := newFlags(&c)
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	Usage(fs, "usage: t [flags]")()
	for _, want := range []string{"--upstream-retry-window duration", "env OUTRIGGER_UPSTREAM_RETRY_WINDOW", "default 5s"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, buf.String())
		}
	}
}

func FuzzApplyYAML(f *testing.F) {
	f.Add("listen: x\nhsts: true\n")
	f.Add("hostname: [a, b]\n")
	f.Add("max-inflight: ${X}\n")
	f.Fuzz(func(t *testing.T, doc string) {
		var c testConfig
		fs := newFlags(&c)
		var node yaml.Node
		if yaml.Unmarshal([]byte(doc), &node) != nil {
			return
		}
		_, _ = ApplyYAML(fs, "f.yaml", &node, envOf(nil))
	})
}
