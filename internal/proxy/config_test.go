package proxy

import (
	"flag"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/certs/certstest"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	ca := certstest.NewCA(t, "ca")
	certFile, keyFile := certstest.WritePair(t, dir, ca.Issue(t, certstest.LeafOpts{}))
	caFile := filepath.Join(dir, "ca.pem")
	certstest.WriteAtomic(t, caFile, ca.PEM)
	missing := filepath.Join(dir, "missing.pem")

	valid := func() Config {
		c := DefaultConfig()
		c.CertFile, c.KeyFile = certFile, keyFile
		return c
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // substring; "" = valid
	}{
		{name: "defaults are valid", mutate: func(*Config) {}},
		{name: "self-signed is valid", mutate: func(c *Config) { c.CertFile, c.KeyFile = "", "" }},
		{name: "unix upstream", mutate: func(c *Config) { c.Upstream = "unix:/run/app.sock" }},
		{name: "mTLS optional with header", mutate: func(c *Config) {
			c.ClientCA, c.ClientAuth, c.ClientCertHeader = caFile, "optional", "X-Client-Cert"
		}},
		{name: "unknown upstream scheme", mutate: func(c *Config) { c.Upstream = "ftp://x" }, wantErr: `--upstream "ftp://x": scheme must be http, h2c or unix`},
		{name: "empty upstream", mutate: func(c *Config) { c.Upstream = "" }, wantErr: "--upstream"},
		{name: "non-loopback upstream", mutate: func(c *Config) { c.Upstream = "http://10.0.0.5:8080" }, wantErr: `--upstream "http://10.0.0.5:8080": not a loopback`},
		{name: "non-loopback upstream allowed", mutate: func(c *Config) { c.Upstream, c.UnsafeUpstream = "http://10.0.0.5:8080", true }},
		{name: "listen port out of range", mutate: func(c *Config) { c.Listen = ":70000" }, wantErr: `--listen ":70000": port "70000" out of range`},
		{name: "listen negative port", mutate: func(c *Config) { c.Listen = ":-1" }, wantErr: "--listen"},
		{name: "listen without port", mutate: func(c *Config) { c.Listen = "localhost" }, wantErr: `--listen "localhost": want HOST:PORT`},
		{name: "listen named port", mutate: func(c *Config) { c.Listen = ":https" }, wantErr: "--listen"},
		{name: "cert without key", mutate: func(c *Config) { c.KeyFile = "" }, wantErr: "--key"},
		{name: "key without cert", mutate: func(c *Config) { c.CertFile = "" }, wantErr: "--cert"},
		{name: "unreadable cert", mutate: func(c *Config) { c.CertFile = missing }, wantErr: `--cert "` + missing},
		{name: "cert is a directory", mutate: func(c *Config) { c.CertFile = dir }, wantErr: "is a directory"},
		{name: "unreadable client CA", mutate: func(c *Config) { c.ClientCA = missing }, wantErr: "--client-ca"},
		{name: "bad client auth", mutate: func(c *Config) { c.ClientCA, c.ClientAuth = caFile, "maybe" }, wantErr: `--client-auth "maybe": must be require or optional`},
		{name: "client auth without CA", mutate: func(c *Config) { c.ClientAuth = "require" }, wantErr: "--client-auth \"require\": requires --client-ca"},
		{name: "bad client cert header", mutate: func(c *Config) { c.ClientCA, c.ClientCertHeader = caFile, "X Bad" }, wantErr: "--client-cert-header"},
		{name: "client cert header without CA", mutate: func(c *Config) { c.ClientCertHeader = "X-Client" }, wantErr: "requires --client-ca"},
		{name: "bad hostname", mutate: func(c *Config) { c.Hostnames = []string{"a b"} }, wantErr: "--hostname"},
		{name: "bad redirect address", mutate: func(c *Config) { c.RedirectHTTP = "nope" }, wantErr: "--redirect-http"},
		{name: "redirect on the HTTPS port", mutate: func(c *Config) { c.RedirectHTTP = "127.0.0.1:8443" }, wantErr: "same port as --listen"},
		{name: "redirect https port out of range", mutate: func(c *Config) { c.RedirectHTTPSPort = 65536 }, wantErr: "--redirect-https-port"},
		{name: "negative hsts max-age", mutate: func(c *Config) { c.HSTSMaxAge = -time.Second }, wantErr: "--hsts-max-age"},
		{name: "proxy protocol without header timeout", mutate: func(c *Config) { c.ProxyProtocol, c.ReadHeaderTimeout = true, 0 }, wantErr: "--read-header-timeout"},
		{name: "negative max body", mutate: func(c *Config) { c.MaxBody = -1 }, wantErr: "--max-body"},
		{name: "tiny max header bytes", mutate: func(c *Config) { c.MaxHeaderBytes = 10 }, wantErr: "--max-header-bytes"},
		{name: "negative max inflight", mutate: func(c *Config) { c.MaxInflight = -1 }, wantErr: "--max-inflight"},
		{name: "queue without inflight", mutate: func(c *Config) { c.MaxQueue = 5 }, wantErr: "--max-queue"},
		{name: "zero concurrent streams", mutate: func(c *Config) { c.MaxConcurrentStreams = 0 }, wantErr: "--max-concurrent-streams"},
		{name: "negative drain timeout", mutate: func(c *Config) { c.DrainTimeout = -time.Second }, wantErr: "--drain-timeout"},
		{name: "negative shutdown delay", mutate: func(c *Config) { c.ShutdownDelay = -time.Second }, wantErr: "--shutdown-delay"},
		{name: "negative idle timeout", mutate: func(c *Config) { c.IdleTimeout = -time.Second }, wantErr: "--idle-timeout"},
		{name: "zero upstream check interval", mutate: func(c *Config) { c.UpstreamCheckInterval = 0 }, wantErr: "--upstream-check-interval"},
		{name: "handover socket path too long", mutate: func(c *Config) { c.HandoverSocket = "/tmp/" + strings.Repeat("s", 120) }, wantErr: "limited to 107"},
		{name: "handover socket with NUL", mutate: func(c *Config) { c.HandoverSocket = "/tmp/a\x00b" }, wantErr: "NUL"},
		{name: "handover socket in missing dir", mutate: func(c *Config) { c.HandoverSocket = "/nonexistent-dir/h.sock" }, wantErr: "--handover-socket"},
		{name: "handover socket under a file", mutate: func(c *Config) { c.HandoverSocket = "/etc/hostname/h.sock" }, wantErr: "--handover-socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewErrorsNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	ca := certstest.NewCA(t, "ca")
	a, b := ca.Issue(t, certstest.LeafOpts{}), ca.Issue(t, certstest.LeafOpts{})
	certFile, keyFile := certstest.WritePair(t, dir, a)
	otherKey := filepath.Join(dir, "other.key")
	certstest.WriteAtomic(t, otherKey, b.KeyPEM)
	garbage := filepath.Join(dir, "garbage.pem")
	certstest.WriteAtomic(t, garbage, []byte("garbage"))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	up := newUpstream(t)
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{name: "cert/key mismatch", mutate: func(c *Config) { c.KeyFile = otherKey }, wantErr: "--cert"},
		{name: "garbage cert", mutate: func(c *Config) { c.CertFile = garbage }, wantErr: "--cert"},
		{name: "garbage client CA", mutate: func(c *Config) { c.ClientCA = garbage }, wantErr: `--client-ca "` + garbage},
		{name: "listen address in use", mutate: func(c *Config) { c.Listen, c.ReusePort = busy.Addr().String(), false }, wantErr: "--listen"},
		{name: "redirect address in use", mutate: func(c *Config) { c.RedirectHTTP, c.ReusePort = busy.Addr().String(), false }, wantErr: "--redirect-http"},
		{name: "invalid flag value", mutate: func(c *Config) { c.Upstream = "ftp://x" }, wantErr: "--upstream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig(up, certFile, keyFile)
			tt.mutate(&cfg)
			p, err := New(cfg, Deps{})
			if err == nil {
				p.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRegisterFlags(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs)
	if !reflect.DeepEqual(c, DefaultConfig()) {
		t.Fatalf("defaults bound:\n%+v\nwant\n%+v", c, DefaultConfig())
	}
	// Every flag has a usage line.
	fs.VisitAll(func(f *flag.Flag) {
		if len(f.Usage) < 10 {
			t.Errorf("--%s has no helpful usage", f.Name)
		}
	})
	err := fs.Parse([]string{
		"--listen", "127.0.0.1:9443", "--hostname", "a.example,b.example", "--hostname", "10.0.0.1",
		"--max-body", "10M", "--max-header-bytes", "32K", "--trusted-proxies", "10.0.0.0/8, 192.168.1.1",
		"--trusted-proxies", "::1", "--h2=false", "--drain-timeout", "45s", "--client-auth", "optional",
		"--upstream-direct=false",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Listen = "127.0.0.1:9443"
	want.Hostnames = []string{"a.example", "b.example", "10.0.0.1"}
	want.MaxBody = 10 << 20
	want.MaxHeaderBytes = 32 << 10
	want.TrustedProxies = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.1/32"), netip.MustParsePrefix("::1/128"),
	}
	want.H2 = false
	want.DrainTimeout = 45 * time.Second
	want.ClientAuth = "optional"
	want.UpstreamDirect = false
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("parsed:\n%+v\nwant\n%+v", c, want)
	}
	if got := fs.Lookup("max-body").Value.String(); got != "10M" {
		t.Fatalf("max-body String = %q", got)
	}
	for _, bad := range [][]string{{"--max-body", "-5"}, {"--trusted-proxies", "10.0.0.0/33"}, {"--max-header-bytes", "3G"}} {
		fs2 := flag.NewFlagSet("proxy", flag.ContinueOnError)
		fs2.SetOutput(io.Discard)
		var c2 Config
		c2.RegisterFlags(fs2)
		if err := fs2.Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "512B", want: 512},
		{in: "64K", want: 64 << 10},
		{in: "64k", want: 64 << 10},
		{in: "64KB", want: 64 << 10},
		{in: "64KiB", want: 64 << 10},
		{in: "10M", want: 10 << 20},
		{in: "1G", want: 1 << 30},
		{in: "2T", want: 2 << 40},
		{in: "8388607T", want: 8388607 << 40},
		{in: "8388608T", wantErr: true}, // overflows int64
		{in: "", wantErr: true},
		{in: "K", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "+1", wantErr: true},
		{in: "1.5M", wantErr: true},
		{in: "1 M", wantErr: true},
		{in: "1X", wantErr: true},
		{in: "99999999999999999999", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseByteSize(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseByteSize(%q) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseCIDRList(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "empty", in: "", want: nil},
		{name: "mixed", in: "10.0.0.0/8, 192.168.1.7 ,fd00::/8", want: []string{"10.0.0.0/8", "192.168.1.7/32", "fd00::/8"}},
		{name: "host bits masked", in: "10.1.2.3/8", want: []string{"10.0.0.0/8"}},
		{name: "mapped address unmapped", in: "::ffff:10.0.0.1", want: []string{"10.0.0.1/32"}},
		{name: "mapped prefix unmapped", in: "::ffff:10.0.0.0/104", want: []string{"10.0.0.0/8"}},
		{name: "empty entries skipped", in: ",10.0.0.1,,", want: []string{"10.0.0.1/32"}},
		{name: "bad prefix length", in: "10.0.0.0/33", wantErr: true},
		{name: "hostname", in: "example.com", wantErr: true},
		{name: "zone", in: "fe80::1%eth0", wantErr: true},
		{name: "garbage after valid", in: "10.0.0.0/8,x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCIDRList(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("accepted: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var gs []string
			for _, p := range got {
				gs = append(gs, p.String())
			}
			if !reflect.DeepEqual(gs, tt.want) {
				t.Fatalf("got %v, want %v", gs, tt.want)
			}
		})
	}
}

func TestRedirectHost(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"example.com", "example.com", true},
		{"example.com:80", "example.com", true},
		{"[::1]:80", "[::1]", true},
		{"[::1]", "[::1]", true},
		{"10.0.0.1", "10.0.0.1", true},
		{"", "", false},
		{"a/b", "", false},
		{"a@b", "", false},
		{"[::1", "", false},
		{"ex ample", "", false},
		{strings.Repeat("a", 254), "", false},
	}
	for _, tt := range tests {
		got, ok := redirectHost(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("redirectHost(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"0", "64K", "10MiB", "1G", "-1", "8388608T", "1.5M"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseByteSize(%q) = %d", s, n)
		}
		// Formatting and parsing again is the identity.
		back, err := ParseByteSize(FormatByteSize(n))
		if err != nil || back != n {
			t.Fatalf("round trip of %d via %q = %d, %v", n, FormatByteSize(n), back, err)
		}
	})
}

func FuzzParseCIDRList(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "::1, 192.168.0.1", "fe80::1%eth0", ",,", "::ffff:1.2.3.4/120"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseCIDRList(s)
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() {
				t.Fatalf("ParseCIDRList(%q) returned %v", s, p)
			}
			// The output parses back to itself.
			again, err := ParseCIDRList(p.String())
			if err != nil || len(again) != 1 || again[0] != p {
				t.Fatalf("%v does not round-trip: %v, %v", p, again, err)
			}
		}
	})
}

func FuzzRedirectHost(f *testing.F) {
	for _, s := range []string{"example.com:80", "[::1]:8080", "a@b", "[", "//x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := redirectHost(s)
		if !ok {
			return
		}
		if strings.ContainsAny(h, "/@?#\\ \r\n") || h == "" {
			t.Fatalf("redirectHost(%q) = %q", s, h)
		}
	})
}
