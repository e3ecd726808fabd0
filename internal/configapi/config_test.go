package configapi

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestRegisterFlags(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	if c != DefaultConfig() {
		t.Fatalf("defaults after RegisterFlags = %+v, want %+v", c, DefaultConfig())
	}
	for _, name := range []string{"listen", "data", "etcd", "etcd-prefix", "tokens", "cert", "key", "max-size", "max-wait", "drain-timeout", "etcd-ca", "etcd-cert", "etcd-key"} {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("flag --%s not registered", name)
			continue
		}
		if strings.TrimSpace(f.Usage) == "" {
			t.Errorf("flag --%s has no usage", name)
		}
	}
	err := fs.Parse([]string{"--listen", "127.0.0.1:0", "--max-size", "2MiB", "--max-wait", "10s", "--etcd", "http://127.0.0.1:2379,http://127.0.0.1:2380"})
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxSize != 2<<20 || c.MaxWait != 10*time.Second || c.Listen != "127.0.0.1:0" || len(etcdEndpoints(c.Etcd)) != 2 {
		t.Fatalf("parsed = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := fs.Lookup("max-size").Value.String(); got != "2MiB" {
		t.Errorf("max-size String() = %q", got)
	}
	if err := fs.Parse([]string{"--max-size", "huge"}); err == nil {
		t.Error("--max-size huge accepted")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"public with tokens", func(c *Config) { c.Listen, c.Tokens = "0.0.0.0:7700", "t.yaml" }, ""},
		{"public without tokens", func(c *Config) { c.Listen = "0.0.0.0:7700" }, `--listen "0.0.0.0:7700"`},
		{"ipv6 any without tokens", func(c *Config) { c.Listen = "[::]:7700" }, "not a loopback"},
		{"no port", func(c *Config) { c.Listen = "127.0.0.1" }, "--listen"},
		{"empty data", func(c *Config) { c.Data = " " }, "--data"},
		{"empty data with etcd", func(c *Config) { c.Data, c.Etcd = "", "http://127.0.0.1:2379" }, ""},
		{"etcd without scheme", func(c *Config) { c.Etcd = "127.0.0.1:2379" }, "--etcd"},
		{"etcd only commas", func(c *Config) { c.Etcd = " , " }, "no endpoints"},
		{"key without cert", func(c *Config) { c.Key = "k.pem" }, "--cert"},
		{"etcd cert without key", func(c *Config) { c.EtcdCert = "c.pem" }, "--etcd-cert"},
		{"negative max size", func(c *Config) { c.MaxSize = -1 }, "--max-size"},
		{"zero max wait", func(c *Config) { c.MaxWait = 0 }, "--max-wait"},
		{"negative drain", func(c *Config) { c.DrainTimeout = -time.Second }, "--drain-timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want error mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzStatusBody(f *testing.F) {
	for _, s := range []string{`{"version":1,"outcome":"applied"}`, `{"version":"7","outcome":"failed","error":"x"}`, `{"version":null}`, `{"version":1e99}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var sb statusBody
		if err := decodeJSONBody(body, &sb); err != nil {
			return
		}
		n, err := parseStatusVersion(sb.Version)
		if err == nil && n < 0 {
			t.Fatalf("negative version %d from %s", n, body)
		}
		if s := cleanHeaderText(sb.Error, maxStatusError); len(s) > maxStatusError || strings.ContainsAny(s, "\r\n\x00") {
			t.Fatalf("cleanHeaderText left %q", s)
		}
	})
}
