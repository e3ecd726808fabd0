package proxy

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/outrigger-sidecar/outrigger/internal/testutil/poll"
)

func TestRedirectAndHSTS(t *testing.T) {
	tests := []struct {
		name      string
		httpsPort int // --redirect-https-port
		host      string
		target    string // request-target
		wantCode  int
		wantLoc   string // %d = the proxy's HTTPS port
	}{
		{name: "path and query kept", host: "example.com", target: "/a/b?c=d&e=%20f", wantCode: 308, wantLoc: "https://example.com:%d/a/b?c=d&e=%%20f"},
		{name: "host port replaced", host: "example.com:8080", target: "/", wantCode: 308, wantLoc: "https://example.com:%d/"},
		{name: "port 443 omitted", httpsPort: 443, host: "example.com:80", target: "/x", wantCode: 308, wantLoc: "https://example.com/x"},
		{name: "IPv6 literal", httpsPort: 8443, host: "[::1]:80", target: "/", wantCode: 308, wantLoc: "https://[::1]:8443/"},
		{name: "double slash collapsed", httpsPort: 443, host: "example.com", target: "//evil.example/x", wantCode: 308, wantLoc: "https://example.com/evil.example/x"},
		{name: "escaped path kept", httpsPort: 443, host: "example.com", target: "/a%2Fb", wantCode: 308, wantLoc: "https://example.com/a%2Fb"},
		{name: "host with userinfo refused", host: "user@evil.example", target: "/", wantCode: 400},
		{name: "bad IPv6 refused", host: "[zz]", target: "/", wantCode: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.RedirectHTTP = "127.0.0.1:0"
				c.RedirectHTTPSPort = tt.httpsPort
				c.HSTS = true
			})
			conn, err := net.DialTimeout("tcp", e.p.RedirectAddr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n\r\n", tt.target, tt.host)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if tt.wantCode != 308 {
				return
			}
			want := tt.wantLoc
			if strings.Contains(want, "%d") {
				want = fmt.Sprintf(want, e.p.Addr().(*net.TCPAddr).Port)
			}
			want = strings.ReplaceAll(want, "%%", "%")
			if got := resp.Header.Get("Location"); got != want {
				t.Fatalf("Location %q, want %q", got, want)
			}
			if resp.Header.Get("Strict-Transport-Security") != "" {
				t.Fatal("HSTS sent over plain HTTP")
			}
			// The HTTPS side sends HSTS.
			hresp, _ := get(t, e.client(e.clientTLS(), false), "https://"+e.addr()+"/", nil)
			if got := hresp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
				t.Fatalf("HSTS = %q", got)
			}
		})
	}
}

func TestProxyProtocol(t *testing.T) {
	v1 := &proxyproto.Header{
		Version: 1, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
		SourceAddr:      &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 40000},
		DestinationAddr: &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 443},
	}
	v2 := &proxyproto.Header{
		Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv6,
		SourceAddr:      &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 40000},
		DestinationAddr: &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443},
	}
	tests := []struct {
		name     string
		trusted  string
		header   *proxyproto.Header
		wantOK   bool
		wantXFF  string
		rejected bool // counted as an untrusted peer
	}{
		{name: "v1 from any peer", header: v1, wantOK: true, wantXFF: "203.0.113.7"},
		{name: "v2 IPv6 from any peer", header: v2, wantOK: true, wantXFF: "2001:db8::7"},
		{name: "v2 from trusted peer", trusted: "127.0.0.1/32", header: v2, wantOK: true, wantXFF: "2001:db8::7"},
		{name: "missing header refused", header: nil, wantOK: false},
		{name: "untrusted peer closed", trusted: "10.0.0.0/8", header: v1, wantOK: false, rejected: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.ProxyProtocol = true
				c.ReadHeaderTimeout = 2 * time.Second
				if tt.trusted != "" {
					ps, err := ParseCIDRList(tt.trusted)
					if err != nil {
						t.Fatal(err)
					}
					c.TrustedProxies = ps
				}
			})
			tr := &http.Transport{
				TLSClientConfig: e.clientTLS(),
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					var d net.Dialer
					c, err := d.DialContext(ctx, network, addr)
					if err != nil || tt.header == nil {
						return c, err
					}
					if _, err := tt.header.WriteTo(c); err != nil {
						c.Close()
						return nil, err
					}
					return c, nil
				},
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			resp, err := client.Get("https://" + e.addr() + "/ip")
			if !tt.wantOK {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded: %d", resp.StatusCode)
				}
				if tt.rejected && metricValue(t, e.reg, "outrigger_proxy_protocol_rejected_connections_total", nil) == 0 {
					t.Fatal("untrusted peer not counted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			_, ec := get(t, client, "https://"+e.addr()+"/ip", nil)
			if ec.XFF != tt.wantXFF {
				t.Fatalf("X-Forwarded-For upstream = %q, want %q", ec.XFF, tt.wantXFF)
			}
		})
	}
}

func TestHeaderLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxHeaderBytes = 16 << 10 })
	c := e.client(e.clientTLS(), false)
	tests := []struct {
		name     string
		size     int
		wantCode int
	}{
		{name: "small header passes", size: 8 << 10, wantCode: http.StatusOK},
		{name: "oversized header gets 431", size: 64 << 10, wantCode: http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := get(t, c, "https://"+e.addr()+"/", http.Header{"X-Big": {strings.Repeat("a", tt.size)}})
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
		})
	}
}

func TestReusePort(t *testing.T) {
	e := newEnv(t, nil)
	port := strconv.Itoa(e.p.Addr().(*net.TCPAddr).Port)
	tests := []struct {
		name   string
		reuse  bool
		wantOK bool
	}{
		{name: "second proxy shares the port", reuse: true, wantOK: true},
		{name: "without reuse-port the port is in use", reuse: false, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig(e.up, "", "")
			cfg.Listen = "127.0.0.1:" + port
			cfg.ReusePort = tt.reuse
			p, err := New(cfg, Deps{})
			if !tt.wantOK {
				if err == nil || !strings.Contains(err.Error(), "--listen") {
					if p != nil {
						p.Close()
					}
					t.Fatalf("New error = %v, want one naming --listen", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p.Close()
		})
	}
}

func TestReadiness(t *testing.T) {
	// The app listens on a unix socket that does not exist yet.
	sock := filepath.Join(t.TempDir(), "app.sock")
	e := newEnv(t, func(c *Config) { c.Upstream = "unix:" + sock })
	poll.Until(t, 10*time.Second, "a failed upstream check", func() bool {
		err := e.p.Ready()
		return err != nil && strings.Contains(err.Error(), "has not answered")
	})
	if v := metricValue(t, e.reg, "outrigger_upstream_up", nil); v != 0 {
		t.Fatalf("upstream_up = %v", v)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e.waitReady()
	if v := metricValue(t, e.reg, "outrigger_upstream_up", nil); v != 1 {
		t.Fatalf("upstream_up = %v", v)
	}
	l.Close()
	_ = os.Remove(sock)
	poll.Until(t, 10*time.Second, "unready after the upstream went away", func() bool {
		err := e.p.Ready()
		return err != nil && strings.Contains(err.Error(), "unreachable")
	})
}

func TestContainsAddr(t *testing.T) {
	ps, err := ParseCIDRList("10.0.0.0/8,::1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		addr string
		want bool
	}{{"10.1.2.3", true}, {"11.0.0.1", false}, {"::1", true}, {"::2", false}} {
		if got := containsAddr(ps, netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("containsAddr(%s) = %v", tt.addr, got)
		}
	}
}

func TestProxyProtocolOnRedirectListener(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.ProxyProtocol = true
		c.ReadHeaderTimeout = 2 * time.Second
		c.RedirectHTTP = "127.0.0.1:0"
		c.RedirectHTTPSPort = 443
	})
	hdr := &proxyproto.Header{
		Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
		SourceAddr:      &net.TCPAddr{IP: net.ParseIP("203.0.113.9"), Port: 1234},
		DestinationAddr: &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 80},
	}
	for _, tt := range []struct {
		name   string
		header bool
		wantOK bool
	}{{"with header", true, true}, {"without header", false, false}} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", e.p.RedirectAddr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if tt.header {
				if _, err := hdr.WriteTo(conn); err != nil {
					t.Fatal(err)
				}
			}
			fmt.Fprintf(conn, "GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if !tt.wantOK {
				// net/http answers 400 to the unreadable request, or the
				// connection just closes; never a redirect.
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusBadRequest {
						t.Fatalf("got %d without a PROXY header", resp.StatusCode)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://example.com/x" {
				t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}
