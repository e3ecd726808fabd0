package forward

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// rewriteFor runs the handler's Rewrite on a synthetic inbound request, the
// way ReverseProxy does (forwarding headers already removed from Out).
func rewriteFor(t *testing.T, h *Handler, in *http.Request) http.Header {
	t.Helper()
	out := in.Clone(in.Context())
	for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		out.Header.Del(k)
	}
	h.rewrite(&httputil.ProxyRequest{In: in, Out: out})
	if out.URL.Host != h.targetHost || out.URL.Scheme != "http" {
		t.Errorf("target %s://%s", out.URL.Scheme, out.URL.Host)
	}
	return out.Header
}

// TestForwardedHeaders checks the forwarding headers on both upstream paths:
// ReverseProxy's Rewrite and the direct path's own serialisation.
func TestForwardedHeaders(t *testing.T) {
	up := mustUpstream(t, "http://127.0.0.1:8080")
	trustedNets := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	type want = forwardedWant
	for _, tc := range []struct {
		name    string
		remote  string
		tls     bool
		host    string
		headers map[string]string
		trusted []netip.Prefix
		want    want
	}{
		{
			name: "untrusted peer: spoofed headers replaced", remote: "192.0.2.7:5555", tls: true, host: "app.example",
			headers: map[string]string{
				"X-Forwarded-For": "1.1.1.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example",
				"Forwarded": "for=1.1.1.1;proto=http", "X-Real-IP": "1.1.1.1",
				"X-Forwarded-Ssl": "on", "True-Client-IP": "1.1.1.1",
			},
			trusted: trustedNets,
			want:    want{"192.0.2.7", "https", "app.example", "for=192.0.2.7;host=app.example;proto=https", "192.0.2.7"},
		},
		{
			name: "no trusted proxies configured", remote: "10.1.2.3:1", host: "app.example",
			headers: map[string]string{"X-Forwarded-For": "1.1.1.1"},
			want:    want{"10.1.2.3", "http", "app.example", "for=10.1.2.3;host=app.example;proto=http", "10.1.2.3"},
		},
		{
			name: "trusted peer: appended", remote: "10.1.2.3:1", tls: true, host: "app.example:8443",
			headers: map[string]string{
				"X-Forwarded-For": "198.51.100.9, 10.9.9.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example",
				"Forwarded": `for=198.51.100.9;proto=https, for=10.9.9.9`, "X-Real-IP": "6.6.6.6",
				"X-Forwarded-Ssl": "on", "True-Client-IP": "on",
			},
			trusted: trustedNets,
			want: want{
				"198.51.100.9, 10.9.9.9, 10.1.2.3", "https", "public.example",
				`for=198.51.100.9;proto=https, for=10.9.9.9, for=10.1.2.3;host="app.example:8443";proto=https`,
				"198.51.100.9",
			},
		},
		{
			name: "trusted peer without prior headers", remote: "10.1.2.3:1", host: "app.example",
			trusted: trustedNets,
			want:    want{"10.1.2.3", "http", "app.example", "for=10.1.2.3;host=app.example;proto=http", "10.1.2.3"},
		},
		{
			name: "trusted peer, garbage in XFF stops the real-IP walk", remote: "10.1.2.3:1", host: "h",
			headers: map[string]string{"X-Forwarded-For": "203.0.113.5, not-an-ip, 10.2.2.2"},
			trusted: trustedNets,
			want:    want{"203.0.113.5, not-an-ip, 10.2.2.2, 10.1.2.3", "http", "h", "for=10.1.2.3;host=h;proto=http", "10.2.2.2"},
		},
		{
			name: "IPv6 peer quoted and bracketed", remote: "[2001:db8::1]:443", tls: true, host: "[2001:db8::80]:8443",
			want: want{"2001:db8::1", "https", "[2001:db8::80]:8443", `for="[2001:db8::1]";host="[2001:db8::80]:8443";proto=https`, "2001:db8::1"},
		},
		{
			name: "IPv6 trusted chain", remote: "[fd00::2]:1", host: "h",
			headers: map[string]string{"X-Forwarded-For": "[2001:db8::9]:1234"},
			trusted: trustedNets,
			want:    want{"[2001:db8::9]:1234, fd00::2", "http", "h", `for="[fd00::2]";host=h;proto=http`, "2001:db8::9"},
		},
		{
			name: "IPv4-mapped peer unmapped", remote: "[::ffff:192.0.2.8]:1", host: "h",
			want: want{"192.0.2.8", "http", "h", "for=192.0.2.8;host=h;proto=http", "192.0.2.8"},
		},
		{
			name: "unix-socket peer: unknown", remote: "@", host: "h",
			headers: map[string]string{"X-Forwarded-For": "1.1.1.1", "X-Real-IP": "1.1.1.1"},
			want:    want{"", "http", "h", "for=unknown;host=h;proto=http", ""},
		},
		{
			name: "host needing quotes is escaped", remote: "192.0.2.1:1", host: `a"b\c`,
			want: want{"192.0.2.1", "http", `a"b\c`, `for=192.0.2.1;host="a\"b\\c";proto=http`, "192.0.2.1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(Config{Upstream: up, TrustedProxies: tc.trusted}, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			in := httptest.NewRequest(http.MethodGet, "http://x/", nil)
			in.RemoteAddr = tc.remote
			in.Host = tc.host
			if !tc.tls {
				in.TLS = nil
			} else {
				in.TLS = &tls.ConnectionState{Version: tls.VersionTLS13}
			}
			for k, v := range tc.headers {
				in.Header.Set(k, v)
			}
			for _, path := range []struct {
				name string
				out  func(*testing.T, *Handler, *http.Request) http.Header
			}{{"reverseproxy", rewriteFor}, {"direct", directRequestFor}} {
				t.Run(path.name, func(t *testing.T) { checkForwarded(t, h, tc.remote, tc.headers, path.out(t, h, in), tc.want) })
			}
		})
	}
}

// directRequestFor serialises in the way the direct path does and parses
// the result back, so its headers can be compared with rewriteFor's.
func directRequestFor(t *testing.T, h *Handler, in *http.Request) http.Header {
	t.Helper()
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	ci := h.inspectClient(in)
	var f fwdHeaders
	h.fillForwarded(&f, in, ci)
	if err := h.writeRequest(bw, in, ci.trusted, &f); err != nil {
		t.Fatal(err)
	}
	out, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatalf("direct request unreadable: %v\n%s", err, buf.String())
	}
	return out.Header
}

type forwardedWant struct {
	xff, proto, host, fwd, realIP string
}

// checkForwarded compares the forwarding headers a request from remote
// carrying headers was sent upstream with.
func checkForwarded(t *testing.T, h *Handler, remote string, headers map[string]string, got http.Header, want forwardedWant) {
	t.Helper()
	tc := struct {
		remote  string
		headers map[string]string
		want    forwardedWant
	}{remote, headers, want}
	check := func(name, want string) {
		t.Helper()
		vals := got.Values(name)
		if want == "" {
			if len(vals) != 0 {
				t.Errorf("%s = %q, want none", name, vals)
			}
			return
		}
		if len(vals) != 1 || vals[0] != want {
			t.Errorf("%s = %q, want %q", name, vals, want)
		}
	}
	check("X-Forwarded-For", tc.want.xff)
	check("X-Forwarded-Proto", tc.want.proto)
	check("X-Forwarded-Host", tc.want.host)
	check("Forwarded", tc.want.fwd)
	check("X-Real-Ip", tc.want.realIP)
	if tc.headers["X-Forwarded-Ssl"] != "" {
		want := ""
		if h.trusted(mustPeer(t, tc.remote)) {
			want = tc.headers["X-Forwarded-Ssl"]
		}
		check("X-Forwarded-Ssl", want)
		check("True-Client-Ip", want)
	}
}

func mustPeer(t *testing.T, remote string) netip.Addr {
	t.Helper()
	a, ok := peerAddr(remote)
	if !ok {
		t.Fatalf("bad remote %q", remote)
	}
	return a
}

// TestForwardedHeadersEndToEnd sends spoofed headers through the real TLS
// front from 127.0.0.1, once untrusted and once as a trusted proxy.
func TestForwardedHeadersEndToEnd(t *testing.T) {
	_, up := startUpstream(t, http.HandlerFunc(echoHandler))
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		wantXFF string
		wantFwd string
	}{
		{"untrusted", nil, "127.0.0.1", "for=127.0.0.1;host=app.example;proto=https"},
		{"trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "203.0.113.1, 127.0.0.1", "for=203.0.113.1, for=127.0.0.1;host=app.example;proto=https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{Upstream: up, PreserveHost: true, TrustedProxies: tc.trusted}, nil)
			req, _ := http.NewRequest(http.MethodGet, e.front.URL+"/", nil)
			req.Host = "app.example"
			req.Header.Set("X-Forwarded-For", "203.0.113.1")
			req.Header.Set("Forwarded", "for=203.0.113.1")
			resp, err := e.client(t, true).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := decodeEcho(t, resp)
			if v := got.Header.Values("X-Forwarded-For"); len(v) != 1 || v[0] != tc.wantXFF {
				t.Errorf("X-Forwarded-For %q, want %q", v, tc.wantXFF)
			}
			if v := got.Header.Values("Forwarded"); len(v) != 1 || v[0] != tc.wantFwd {
				t.Errorf("Forwarded %q, want %q", v, tc.wantFwd)
			}
		})
	}
}

func TestClientCertHeader(t *testing.T) {
	pki := newPKI(t)
	_, up := startUpstream(t, http.HandlerFunc(echoHandler))
	const hdr = "X-Client-Cert"
	e := newEnv(t, Config{Upstream: up, ClientCertHeader: hdr}, func(s *httptest.Server) {
		s.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pki.pool}
	})
	u := mustURL(t, "spiffe://example.org/ns/app")
	clientCert := pki.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "client one", Organization: []string{"Acme, Inc."}},
		DNSNames:    []string{"client.example"},
		URIs:        []*url.URL{u},
		IPAddresses: []net.IP{net.ParseIP("192.0.2.10")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		want  string
	}{
		{"verified client cert", []tls.Certificate{clientCert},
			`Subject="CN=client one,O=Acme\\, Inc.";URI=spiffe://example.org/ns/app;DNS=client.example;IP=192.0.2.10`},
		{"no client cert: spoofed header removed", nil, ""},
	} {
		for _, h2 := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "/h1", true: "/h2"}[h2], func(t *testing.T) {
				c := e.client(t, h2)
				c.Transport.(*http.Transport).TLSClientConfig.Certificates = tc.certs
				req, _ := http.NewRequest(http.MethodGet, e.front.URL+"/", nil)
				req.Header.Set(hdr, `Subject="CN=admin"`)
				req.Header.Add(strings.ToLower(hdr), `Subject="CN=root"`)
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got := decodeEcho(t, resp).Header.Values(hdr)
				if tc.want == "" {
					if len(got) != 0 {
						t.Errorf("spoofed header passed: %q", got)
					}
					return
				}
				if len(got) != 1 || got[0] != tc.want {
					t.Errorf("%s = %q\nwant %q", hdr, got, tc.want)
				}
			})
		}
	}
}

func TestCertIdentityHostileValues(t *testing.T) {
	c := &x509.Certificate{
		Subject:        pkix.Name{CommonName: "evil\r\nX-Injected: 1\"\\"},
		DNSNames:       []string{"a;b=c"},
		EmailAddresses: []string{"x@example.org"},
	}
	got := certIdentity(c)
	want := `Subject="CN=evilX-Injected: 1\\\"\\\\";DNS="a;b=c";Email=x@example.org`
	if got != want {
		t.Errorf("certIdentity = %q\nwant          %q", got, want)
	}
	if strings.ContainsAny(got, "\r\n") {
		t.Error("control characters in header value")
	}
}

// FuzzForwardedHeaders feeds hostile X-Forwarded-For, Forwarded and Host
// values from a trusted peer: the output must be valid header values and the
// real client an IP address.
func FuzzForwardedHeaders(f *testing.F) {
	f.Add("203.0.113.1, 10.0.0.1", "for=203.0.113.1", "app.example", "10.0.0.9:1")
	f.Add("[2001:db8::1]:80,,, garbage", `for="[::1]";proto=https`, "[::1]:443", "[fd00::1]:5")
	f.Add("", "", "", "@")
	f.Add("1.1.1.1\r\nX-Evil: 1", "a\"b", "h\"o\\st", "10.0.0.1:1")
	up := Upstream{Scheme: "http", Addr: "127.0.0.1:8080", Raw: "http://127.0.0.1:8080"}
	h, err := New(Config{Upstream: up, TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"),
	}, ClientCertHeader: "X-Client-Cert"}, Deps{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, xff, fwd, host, remote string) {
		in := httptest.NewRequest(http.MethodGet, "http://x/", nil)
		in.RemoteAddr = remote
		in.Host = host
		in.Header["X-Forwarded-For"] = []string{xff}
		in.Header["Forwarded"] = []string{fwd}
		in.Header["X-Client-Cert"] = []string{"spoofed"}
		ci := h.inspectClient(in)
		if ci.realClient != "" {
			if _, err := netip.ParseAddr(ci.realClient); err != nil {
				t.Fatalf("real client %q is not an IP", ci.realClient)
			}
		}
		if ci.trusted && !ci.peer.IsValid() {
			t.Fatal("trusted without a peer")
		}
		out := rewriteFor(t, h, in)
		if _, ok := out["X-Client-Cert"]; ok {
			t.Fatal("spoofed client cert header kept")
		}
		// Values we generate (not the trusted prior chain) must be clean.
		for _, k := range []string{"X-Real-Ip", "X-Forwarded-Proto"} {
			for _, v := range out[k] {
				if strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("%s = %q", k, v)
				}
			}
		}
		fw := out.Get("Forwarded")
		own := fw[strings.LastIndex(fw, "for="):]
		if !ci.trusted {
			own = fw
		}
		if strings.ContainsAny(own, "\r\n\x00") || !strings.HasPrefix(own, "for=") {
			t.Fatalf("own Forwarded element %q", own)
		}
	})
}

// TestPeerString checks that the allocation-free peer text equals
// netip.Addr.String for every remote address shape peerAddr accepts.
func TestPeerString(t *testing.T) {
	for _, remote := range []string{
		"192.0.2.1:80", "10.0.0.1:1", "255.255.255.255:65535", "0.0.0.0:0", "1.2.3.4",
		"[::ffff:192.0.2.8]:1", "::ffff:192.0.2.8", "[2001:db8::1]:443", "[2001:DB8:0::1]:1", "2001:db8::1",
		"[fe80::1%eth0]:1", "[::1]:8443", "[::ffff:7f00:1]:9",
	} {
		a, ok := peerAddr(remote)
		if !ok {
			t.Fatalf("peerAddr(%q) failed", remote)
		}
		if got, want := peerString(remote, a), a.String(); got != want {
			t.Errorf("peerString(%q) = %q, want %q", remote, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		a, _ := peerAddr("192.0.2.1:443")
		_ = peerString("192.0.2.1:443", a)
	}); n != 0 {
		t.Errorf("IPv4 peer text allocates %.0f times", n)
	}
}
