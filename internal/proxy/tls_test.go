package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrigger-sidecar/outrigger/internal/testutil/poll"
)

func TestTLSProtocolsAndSuites(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name    string
		mutate  func(*tls.Config)
		wantOK  bool
		wantVer uint16
	}{
		{name: "TLS 1.0 refused", mutate: func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS10 }},
		{name: "TLS 1.1 refused", mutate: func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS11, tls.VersionTLS11 }},
		{name: "TLS 1.2 CBC suite refused", mutate: func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
		}},
		{name: "TLS 1.2 static RSA GCM refused", mutate: func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}
		}},
		{name: "TLS 1.2 ECDHE GCM accepted", wantOK: true, wantVer: tls.VersionTLS12, mutate: func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
		}},
		{name: "TLS 1.2 ECDHE ChaCha20 accepted", wantOK: true, wantVer: tls.VersionTLS12, mutate: func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}
		}},
		{name: "TLS 1.2 P-384 only accepted", wantOK: true, wantVer: tls.VersionTLS12, mutate: func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CurvePreferences = []tls.CurveID{tls.CurveP384}
		}},
		{name: "TLS 1.2 P-521 only refused", mutate: func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CurvePreferences = []tls.CurveID{tls.CurveP521}
		}},
		{name: "default client negotiates TLS 1.3", wantOK: true, wantVer: tls.VersionTLS13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := metricValue(t, e.reg, "outrigger_tls_handshake_errors_total", nil)
			tc := e.clientTLS()
			if tt.mutate != nil {
				tt.mutate(tc)
			}
			_, st, err := handshake(e.addr(), tc)
			if !tt.wantOK {
				if err == nil {
					t.Fatalf("handshake succeeded with version %x suite %s", st.Version, tls.CipherSuiteName(st.CipherSuite))
				}
				poll.Until(t, 10*time.Second, "handshake error counted", func() bool {
					return metricValue(t, e.reg, "outrigger_tls_handshake_errors_total", nil) > before
				})
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if st.Version != tt.wantVer {
				t.Fatalf("version = %x, want %x", st.Version, tt.wantVer)
			}
		})
	}
}

func TestALPN(t *testing.T) {
	tests := []struct {
		name      string
		h2        bool
		offer     []string
		wantProto string
		wantMajor int
	}{
		{name: "h2 negotiated", h2: true, offer: []string{"h2", "http/1.1"}, wantProto: "h2", wantMajor: 2},
		{name: "http/1.1 client", h2: true, offer: []string{"http/1.1"}, wantProto: "http/1.1", wantMajor: 1},
		{name: "h2 disabled", h2: false, offer: []string{"h2", "http/1.1"}, wantProto: "http/1.1", wantMajor: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.H2 = tt.h2 })
			tc := e.clientTLS()
			tc.NextProtos = tt.offer
			_, st, err := handshake(e.addr(), tc)
			if err != nil {
				t.Fatal(err)
			}
			if st.NegotiatedProtocol != tt.wantProto {
				t.Fatalf("ALPN = %q, want %q", st.NegotiatedProtocol, tt.wantProto)
			}
			resp, ec := get(t, e.client(e.clientTLS(), tt.wantMajor == 2), "https://"+e.addr()+"/hello?x=1", nil)
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != tt.wantMajor {
				t.Fatalf("status %d proto %s, want 200 HTTP/%d", resp.StatusCode, resp.Proto, tt.wantMajor)
			}
			if ec.Path != "/hello" || ec.Query != "x=1" {
				t.Fatalf("upstream saw %+v", ec)
			}
		})
	}
}

func TestSelfSigned(t *testing.T) {
	up := newUpstream(t)
	cfg := baseConfig(up, "", "")
	cfg.Hostnames = []string{"app.internal"}
	var logs syncBuffer
	p, err := New(cfg, Deps{Logger: newBufLogger(&logs), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	leaf, _, err := handshake(p.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("app.internal"); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); !strings.Contains(out, `"level":"WARN","msg":"NO --cert GIVEN`) || !strings.Contains(out, `"sha256"`) {
		t.Fatalf("no loud self-signed warning in logs:\n%s", logs.String())
	}
}

func TestHTTP2Settings(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxConcurrentStreams = 17 })
	tc := e.clientTLS()
	tc.NextProtos = []string{"h2"}
	conn, err := tls.Dial("tcp", e.addr(), tc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %T, want SETTINGS", f)
	}
	want := map[http2.SettingID]uint32{
		http2.SettingMaxConcurrentStreams: 17,
		http2.SettingMaxFrameSize:         h2MaxReadFrameSize,
	}
	for id, v := range want {
		if got, ok := sf.Value(id); !ok || got != v {
			t.Errorf("%v = %d (present %v), want %d", id, got, ok, v)
		}
	}
}
