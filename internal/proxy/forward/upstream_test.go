package forward

import (
	"strings"
	"testing"
)

func TestParseUpstream(t *testing.T) {
	good := []struct {
		name, in     string
		scheme, addr string
		loopback     bool
	}{
		{"http ipv4", "http://127.0.0.1:8080", "http", "127.0.0.1:8080", true},
		{"http trailing slash", "http://127.0.0.1:8080/", "http", "127.0.0.1:8080", true},
		{"http default port", "http://127.0.0.1", "http", "127.0.0.1:80", true},
		{"http localhost", "http://localhost:3000", "http", "localhost:3000", true},
		{"http LOCALHOST.", "http://LOCALHOST.:3000", "http", "LOCALHOST.:3000", true},
		{"http ipv6 loopback", "http://[::1]:8080", "http", "[::1]:8080", true},
		{"http ipv6 no port", "http://[::1]", "http", "[::1]:80", true},
		{"http 127/8", "http://127.1.2.3:9", "http", "127.1.2.3:9", true},
		{"http mapped loopback", "http://[::ffff:127.0.0.1]:80", "http", "[::ffff:127.0.0.1]:80", true},
		{"http remote ip", "http://10.0.0.5:8080", "http", "10.0.0.5:8080", false},
		{"http remote name", "http://app.internal:8080", "http", "app.internal:8080", false},
		{"http sub-localhost is not loopback", "http://evil.localhost:80", "http", "evil.localhost:80", false},
		{"uppercase scheme", "HTTP://127.0.0.1:1", "http", "127.0.0.1:1", true},
		{"h2c", "h2c://127.0.0.1:8080", "h2c", "127.0.0.1:8080", true},
		{"unix short", "unix:/run/app.sock", "unix", "/run/app.sock", true},
		{"unix url", "unix:///run/app.sock", "unix", "/run/app.sock", true},
		{"port leading zeros normalised", "http://127.0.0.1:08080", "http", "127.0.0.1:8080", true},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseUpstream(tc.in)
			if err != nil {
				t.Fatalf("ParseUpstream(%q): %v", tc.in, err)
			}
			if u.Scheme != tc.scheme || u.Addr != tc.addr || u.Raw != tc.in {
				t.Errorf("got %+v, want scheme %q addr %q raw %q", u, tc.scheme, tc.addr, tc.in)
			}
			if got := u.IsLoopback(); got != tc.loopback {
				t.Errorf("IsLoopback = %v, want %v", got, tc.loopback)
			}
		})
	}

	bad := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "must not be empty"},
		{"ftp", "ftp://x", "scheme must be http, h2c or unix"},
		{"https", "https://127.0.0.1:8443", "scheme must be http, h2c or unix"},
		{"no scheme", "127.0.0.1", "missing scheme"},
		{"host:port without scheme", "localhost:8080", "scheme must be"},
		{"path", "http://127.0.0.1:8080/app", "must not have a path"},
		{"query", "http://127.0.0.1:8080?x=1", "must not have a path, query"},
		{"fragment", "http://127.0.0.1:8080#f", "must not have a path, query"},
		{"userinfo", "http://u:p@127.0.0.1:8080", "user info"},
		{"no host", "http://:8080", "missing host"},
		{"no slashes", "http:127.0.0.1:8080", "want SCHEME://HOST:PORT"},
		{"empty authority", "http://", "missing host"},
		{"port zero", "http://127.0.0.1:0", "port \"0\""},
		{"port too big", "http://127.0.0.1:65536", "port \"65536\""},
		{"port not number", "http://127.0.0.1:http", "port \"http\""},
		{"port plus", "http://127.0.0.1:+80", "port \"+80\""},
		{"ipv6 without brackets", "http://::1:8080", "need brackets"},
		{"ipv6 zone", "http://[fe80::1%25eth0]:80", "zones"},
		{"bad host chars", "http://exa_mple!.com:80", "valid host name"},
		{"space", "http://127.0.0.1 :80", "control or space"},
		{"leading space", " http://127.0.0.1:80", "leading or trailing"},
		{"newline", "http://127.0.0.1:80\n", "leading or trailing"},
		{"nul", "http://127.0.0.1\x00:80", "control"},
		{"unix relative", "unix:run/app.sock", "must be absolute"},
		{"unix with host", "unix://host/run/app.sock", "empty host"},
		{"unix empty", "unix:", "must be absolute"},
		{"unix query", "unix:/run/app.sock?x", "query or fragment"},
		{"unix too long", "unix:/" + strings.Repeat("a", 200), "longer than"},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.name, func(t *testing.T) {
			_, err := ParseUpstream(tc.in)
			if err == nil {
				t.Fatalf("ParseUpstream(%q) succeeded, want error containing %q", tc.in, tc.wantErr)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "--upstream ") || !strings.Contains(msg, tc.wantErr) {
				t.Errorf("error %q: want prefix --upstream and %q", msg, tc.wantErr)
			}
		})
	}
}

func FuzzParseUpstream(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:8080", "h2c://[::1]:1", "unix:/run/a.sock", "unix:///run/a.sock",
		"http://localhost", "ftp://x", "http://[::1", "http://a@b", "unix://x/y", "http://127.0.0.1:99999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUpstream(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--upstream ") {
				t.Fatalf("error %q does not name the flag", err)
			}
			return
		}
		if u.Raw != s {
			t.Fatalf("Raw = %q, want %q", u.Raw, s)
		}
		switch u.Scheme {
		case SchemeUnix:
			if !strings.HasPrefix(u.Addr, "/") {
				t.Fatalf("unix addr %q not absolute", u.Addr)
			}
			if !u.IsLoopback() {
				t.Fatal("unix upstream not loopback")
			}
		case SchemeHTTP, SchemeH2C:
			// The normalised form must parse again to the same address.
			again, err := ParseUpstream(u.Scheme + "://" + u.Addr)
			if err != nil {
				t.Fatalf("re-parse of %q: %v", u.Addr, err)
			}
			if again.Addr != u.Addr || again.IsLoopback() != u.IsLoopback() {
				t.Fatalf("re-parse changed %+v to %+v", u, again)
			}
		default:
			t.Fatalf("unexpected scheme %q", u.Scheme)
		}
		for i := 0; i < len(u.Addr); i++ {
			if c := u.Addr[i]; c < 0x21 || c == 0x7f {
				t.Fatalf("addr %q has control/space byte", u.Addr)
			}
		}
	})
}
