package source

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/outrigger-sidecar/outrigger/internal/certs/certstest"
)

// testCA issues real certificates for TLS tests (certstest with the
// source tests' shorthand).
type testCA struct{ *certstest.CA }

func newTestCA(t *testing.T) *testCA { return &testCA{certstest.NewCA(t, "outrigger test CA")} }

// issue returns PEM cert and key for cn; server certs are for 127.0.0.1.
func (ca *testCA) issue(t *testing.T, cn string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	o := certstest.LeafOpts{CommonName: cn, Client: !server}
	if server {
		o.IPs = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	l := ca.Issue(t, o)
	return l.CertPEM, l.KeyPEM
}

func TestHTTPSMutualTLSAndRotation(t *testing.T) {
	ca := newTestCA(t)
	api := newFakeAPI("app")
	api.put("mtls", "text/plain")
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			mu.Lock()
			seen = append(seen, r.TLS.PeerCertificates[0].Subject.CommonName)
			mu.Unlock()
		}
		api.ServeHTTP(w, r)
	}))
	scert, skey := ca.issue(t, "server", true)
	pair, err := tls.X509KeyPair(scert, skey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, caFile, string(ca.PEM))
	writeClient := func(cn string) {
		c, k := ca.issue(t, cn, false)
		writeFile(t, certFile, string(c))
		writeFile(t, keyFile, string(k))
	}
	writeClient("sidecar-1")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	src := openHTTPSource(t, srv.URL+"/v1/configs/app", Options{CAFile: caFile, ClientCert: certFile, ClientKey: keyFile})
	if cfg, err := src.Get(ctx); err != nil || string(cfg.Data) != "mtls" {
		t.Fatalf("Get with mTLS = %q, %v", cfg.Data, err)
	}
	// A rotated client certificate is used on the next connection.
	writeClient("sidecar-2")
	src.Close() // drop the idle connection
	if _, err := src.Get(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := strings.Join(seen, ",")
	mu.Unlock()
	if got != "sidecar-1,sidecar-2" {
		t.Fatalf("server saw client certificates %q", got)
	}
	// Without a client certificate the server refuses the handshake.
	noCert := openHTTPSource(t, srv.URL+"/v1/configs/app", Options{CAFile: caFile})
	if _, err := noCert.Get(ctx); err == nil {
		t.Fatal("Get without a client certificate succeeded")
	}
	// A broken key pair fails at Open, naming the flags.
	writeFile(t, keyFile, "garbage")
	if _, err := Open(srv.URL+"/v1/configs/app", Options{CAFile: caFile, ClientCert: certFile, ClientKey: keyFile}); err == nil || !strings.Contains(err.Error(), "--client-cert") {
		t.Fatalf("Open with a broken key: %v", err)
	}
}
