package certs

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/certs/certstest"
	"github.com/outrigger-sidecar/outrigger/internal/testutil/poll"
)

// mtlsServer serves "ok" after a successful handshake on 127.0.0.1:0.
func mtlsServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				tc := tls.Server(c, cfg)
				if err := tc.Handshake(); err != nil {
					return
				}
				_, _ = tc.Write([]byte("ok"))
				_ = tc.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// dialOK reports whether a client with cert (nil = none) gets "ok".
func dialOK(t *testing.T, addr string, roots *x509.CertPool, cert *tls.Certificate, cache tls.ClientSessionCache) (ok, resumed bool) {
	t.Helper()
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost", ClientSessionCache: cache}
	if cert != nil {
		// Always present the certificate, even when the server's list of
		// acceptable CAs does not name its issuer (Go would send none).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return false, false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	return err == nil && string(b) == "ok", c.ConnectionState().DidResume
}

func TestCAPoolReloadTakesEffect(t *testing.T) {
	serverCA := certstest.NewCA(t, "server CA")
	ca1 := certstest.NewCA(t, "client CA 1")
	ca2 := certstest.NewCA(t, "client CA 2")
	c1 := ca1.Issue(t, certstest.LeafOpts{CommonName: "alice", Client: true}).TLS()
	c2 := ca2.Issue(t, certstest.LeafOpts{CommonName: "bob", Client: true}).TLS()

	dir := t.TempDir()
	certFile, keyFile := certstest.WritePair(t, dir, serverCA.Issue(t, certstest.LeafOpts{}))
	caFile := filepath.Join(dir, "clients.pem")
	certstest.WriteAtomic(t, caFile, ca1.PEM)
	deps, reg := testDeps(t)
	store, err := New(Config{CertFile: certFile, KeyFile: keyFile}, deps)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := NewCAPool(CAConfig{File: caFile, CheckInterval: -1, Debounce: 10 * time.Millisecond}, deps)
	if err != nil {
		t.Fatal(err)
	}
	runStore(t, pool.Run)
	base := &tls.Config{GetCertificate: store.GetCertificate, MinVersion: tls.VersionTLS12}
	addr := mtlsServer(t, pool.ServerConfig(base, tls.RequireAndVerifyClientCert))
	roots := serverCA.Pool()
	cache := tls.NewLRUClientSessionCache(8)

	tests := []struct {
		name string
		cert *tls.Certificate
		want bool
	}{
		{name: "no cert", cert: nil, want: false},
		{name: "cert from trusted CA", cert: &c1, want: true},
		{name: "cert from other CA", cert: &c2, want: false},
	}
	for _, tt := range tests {
		t.Run("before/"+tt.name, func(t *testing.T) {
			if ok, _ := dialOK(t, addr, roots, tt.cert, nil); ok != tt.want {
				t.Fatalf("handshake ok = %v, want %v", ok, tt.want)
			}
		})
	}
	// Populate a session ticket for alice.
	if ok, _ := dialOK(t, addr, roots, &c1, cache); !ok {
		t.Fatal("alice refused")
	}
	if ok, resumed := dialOK(t, addr, roots, &c1, cache); !ok || !resumed {
		t.Fatalf("alice resumption ok=%v resumed=%v", ok, resumed)
	}

	certstest.WriteAtomic(t, caFile, ca2.PEM)
	poll.Until(t, 10*time.Second, "CA reload", func() bool { return reloads(t, reg, kindClientCA, "success") >= 2 })

	for _, tt := range []struct {
		name string
		cert *tls.Certificate
		want bool
	}{
		{name: "cert from old CA", cert: &c1, want: false},
		{name: "cert from new CA", cert: &c2, want: true},
	} {
		t.Run("after/"+tt.name, func(t *testing.T) {
			if ok, _ := dialOK(t, addr, roots, tt.cert, nil); ok != tt.want {
				t.Fatalf("handshake ok = %v, want %v", ok, tt.want)
			}
		})
	}
	// A resumed session must not outlive the CA that verified it.
	if ok, resumed := dialOK(t, addr, roots, &c1, cache); ok && resumed {
		t.Fatal("alice resumed a session verified by a removed CA")
	}

	// A broken bundle is refused and the current pool keeps working.
	certstest.WriteAtomic(t, caFile, []byte("not pem"))
	poll.Until(t, 10*time.Second, "CA refusal", func() bool { return reloads(t, reg, kindClientCA, "failure") >= 1 })
	if ok, _ := dialOK(t, addr, roots, &c2, nil); !ok {
		t.Fatal("current CA stopped working after a refused reload")
	}
}

func TestCAPoolOptionalAuth(t *testing.T) {
	serverCA := certstest.NewCA(t, "server CA")
	ca1 := certstest.NewCA(t, "client CA")
	other := certstest.NewCA(t, "other")
	dir := t.TempDir()
	certFile, keyFile := certstest.WritePair(t, dir, serverCA.Issue(t, certstest.LeafOpts{}))
	caFile := filepath.Join(dir, "clients.pem")
	certstest.WriteAtomic(t, caFile, ca1.PEM)
	store, err := New(Config{CertFile: certFile, KeyFile: keyFile}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := NewCAPool(CAConfig{File: caFile}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	addr := mtlsServer(t, pool.ServerConfig(&tls.Config{GetCertificate: store.GetCertificate}, tls.VerifyClientCertIfGiven))
	good := ca1.Issue(t, certstest.LeafOpts{Client: true}).TLS()
	bad := other.Issue(t, certstest.LeafOpts{Client: true}).TLS()
	for _, tt := range []struct {
		name string
		cert *tls.Certificate
		want bool
	}{
		{name: "no cert", want: true},
		{name: "trusted cert", cert: &good, want: true},
		{name: "untrusted cert", cert: &bad, want: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if ok, _ := dialOK(t, addr, serverCA.Pool(), tt.cert, nil); ok != tt.want {
				t.Fatalf("ok = %v, want %v", ok, tt.want)
			}
		})
	}
}

func TestNewCAPoolErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	certstest.WriteAtomic(t, bad, []byte("nope"))
	for _, tt := range []struct{ name, file string }{
		{name: "no file", file: ""},
		{name: "missing", file: filepath.Join(dir, "missing.pem")},
		{name: "not pem", file: bad},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewCAPool(CAConfig{File: tt.file}, Deps{}); err == nil {
				t.Fatal("NewCAPool accepted")
			}
		})
	}
}
