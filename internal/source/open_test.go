package source

import (
	"strings"
	"testing"
	"time"
)

func TestOpenURLs(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		opts    Options
		wantErr string // substring; "" = success
		wantStr string // String() on success
	}{
		{name: "http", url: "http://127.0.0.1:7700/v1/configs/app", wantStr: "http://127.0.0.1:7700/v1/configs/app"},
		{name: "https with prefix", url: "https://cfg.example.com/outrigger/v1/configs/app.conf", wantStr: "https://cfg.example.com/outrigger/v1/configs/app.conf"},
		{name: "http userinfo hidden", url: "http://user:secret@127.0.0.1/v1/configs/app", wantStr: "http://127.0.0.1/v1/configs/app"},
		{name: "http upper scheme", url: "HTTP://127.0.0.1/v1/configs/app", wantStr: "http://127.0.0.1/v1/configs/app"},
		{name: "http no name", url: "http://127.0.0.1:7700/v1/configs/", wantErr: "missing config name"},
		{name: "http wrong path", url: "http://127.0.0.1:7700/configs/app", wantErr: "path must end in /v1/configs/NAME"},
		{name: "http nested name", url: "http://127.0.0.1/v1/configs/a/b", wantErr: "config name"},
		{name: "http dot name", url: "http://127.0.0.1/v1/configs/..", wantErr: "config name"},
		{name: "http escaped slash", url: "http://127.0.0.1/v1/configs/a%2Fb", wantErr: "config name"},
		{name: "http no host", url: "http:///v1/configs/app", wantErr: "missing host"},
		{name: "http bad port", url: "http://127.0.0.1:99999/v1/configs/app", wantErr: "port"},
		{name: "http query", url: "http://127.0.0.1/v1/configs/app?token=secret", wantErr: "query"},
		{name: "http fragment", url: "http://127.0.0.1/v1/configs/app#x", wantErr: "fragment"},
		{name: "secret not in error", url: "http://u:hunter2@127.0.0.1/nope", wantErr: "http://127.0.0.1/nope"},
		{name: "etcd", url: "etcd://127.0.0.1:2379/app", wantStr: "etcd://127.0.0.1:2379/app"},
		{name: "etcd default port", url: "etcd://etcd-0/app/config", wantStr: "etcd://etcd-0:2379/app/config"},
		{name: "etcd cluster", url: "etcd://a:1,b:2,[::1]:3//app", wantStr: "etcd://a:1,b:2,[::1]:3//app"},
		{name: "etcd user hidden", url: "etcd://root:pw@127.0.0.1:2379/k", wantStr: "etcd://127.0.0.1:2379/k"},
		{name: "etcds", url: "etcds://127.0.0.1:2379/k", wantStr: "etcds://127.0.0.1:2379/k"},
		{name: "etcd no key", url: "etcd://127.0.0.1:2379/", wantErr: "missing key"},
		{name: "etcd no slash", url: "etcd://127.0.0.1:2379", wantErr: "missing key"},
		{name: "etcd no host", url: "etcd:///k", wantErr: "missing host"},
		{name: "etcd empty host in list", url: "etcd://a:1,,b:2/k", wantErr: "empty host"},
		{name: "etcd bad port", url: "etcd://a:0/k", wantErr: "port"},
		{name: "etcd bad host", url: "etcd://a b:1/k", wantErr: "host name"},
		{name: "etcd bare ipv6", url: "etcd://::1/k", wantErr: "brackets"},
		{name: "etcd query", url: "etcd://a:1/k?x=1", wantErr: "query"},
		{name: "etcd tls opts on plain", url: "etcd://a:1/k", opts: Options{CAFile: "/nonexistent"}, wantErr: "etcds://"},
		{name: "file", url: "file:///etc/app.conf", wantStr: "file:///etc/app.conf"},
		{name: "file localhost", url: "file://localhost/etc/app.conf", wantStr: "file:///etc/app.conf"},
		{name: "file cleaned", url: "file:///etc/./x/../app.conf", wantStr: "file:///etc/app.conf"},
		{name: "file host", url: "file://server/etc/app.conf", wantErr: "three slashes"},
		{name: "file relative", url: "file:app.conf", wantErr: "not a URL"},
		{name: "file root", url: "file:///", wantErr: "below /"},
		{name: "file query", url: "file:///etc/app.conf?x", wantErr: "no user, query"},
		{name: "bad scheme", url: "ftp://x/v1/configs/app", wantErr: `scheme "ftp" must be`},
		{name: "not a url", url: "/etc/app.conf", wantErr: "not a URL"},
		{name: "empty", url: "", wantErr: "not a URL"},
		{name: "negative wait", url: "http://127.0.0.1/v1/configs/app", opts: Options{Wait: -time.Second}, wantErr: "negative"},
		{name: "token and file", url: "http://127.0.0.1/v1/configs/app", opts: Options{Token: "a", TokenFile: "b"}, wantErr: "mutually exclusive"},
		{name: "cert without key", url: "https://127.0.0.1/v1/configs/app", opts: Options{ClientCert: "c"}, wantErr: "together"},
		{name: "missing ca file", url: "https://127.0.0.1/v1/configs/app", opts: Options{CAFile: "/nonexistent/ca.pem"}, wantErr: "--ca-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := Open(tt.url, tt.opts)
			if tt.wantErr != "" {
				if err == nil {
					src.Close()
					t.Fatalf("Open(%q) succeeded, want error containing %q", tt.url, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open(%q) error %q, want it to contain %q", tt.url, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "secret") {
					t.Fatalf("error leaks a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.url, err)
			}
			defer src.Close()
			if got := src.String(); got != tt.wantStr {
				t.Fatalf("String() = %q, want %q", got, tt.wantStr)
			}
		})
	}
}

func TestOpenEtcdKey(t *testing.T) {
	tests := []struct {
		name, url, key string
		endpoints      []string
	}{
		{"plain", "etcd://h:1/app", "app", []string{"http://h:1"}},
		{"leading slash", "etcd://h:1//app/config", "/app/config", []string{"http://h:1"}},
		{"escaped", "etcd://h/a%20b", "a b", []string{"http://h:2379"}},
		{"tls cluster", "etcds://a,[::1]:5/k", "k", []string{"https://a:2379", "https://[::1]:5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg, err := parseEtcdURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if tg.key != tt.key {
				t.Errorf("key = %q, want %q", tg.key, tt.key)
			}
			if strings.Join(tg.endpoints, " ") != strings.Join(tt.endpoints, " ") {
				t.Errorf("endpoints = %v, want %v", tg.endpoints, tt.endpoints)
			}
		})
	}
}

// FuzzOpen checks that Open never panics, never dials (an etcd or http
// source is only constructed) and never leaks userinfo through String.
func FuzzOpen(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:7700/v1/configs/app", "https://u:p@h/x/v1/configs/a.b",
		"etcd://a:1,b:2/k", "etcds://u:p@[::1]:2379//k", "etcd://a/%zz", "file:///etc/x",
		"file://h/x", "ftp://x", "", "://", "http://[::1/v1/configs/a", "etcd://@/k",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		src, err := Open(raw, Options{})
		if err != nil {
			return
		}
		defer src.Close()
		s := src.String()
		if strings.Contains(s, "@") && !strings.Contains(raw, "@") {
			t.Fatalf("String() %q invented an @", s)
		}
		if strings.ContainsAny(s, "?#") {
			t.Fatalf("String() %q has a query or fragment", s)
		}
	})
}
