package proxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/certs/certstest"
	"github.com/outrigger-sidecar/outrigger/internal/testutil/poll"
)

func TestCertRotationDuringLongRequest(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(e.clientTLS(), false)

	type result struct {
		status int
		err    error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := c.Get("https://" + e.addr() + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		slow <- result{status: resp.StatusCode}
	}()
	<-e.up.slowStarted

	next := e.ca.Issue(t, certstest.LeafOpts{})
	certstest.WritePair(t, e.dir, next)
	poll.Until(t, 10*time.Second, "new handshakes to see the rotated certificate", func() bool {
		leaf, _, err := handshake(e.addr(), e.clientTLS())
		return err == nil && leaf.SerialNumber.Cmp(next.Cert.SerialNumber) == 0
	})

	e.up.releaseSlow()
	select {
	case r := <-slow:
		if r.err != nil || r.status != http.StatusOK {
			t.Fatalf("in-flight request across rotation: status %d err %v", r.status, r.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("in-flight request never completed")
	}
}

func TestBadRotatedCertKeepsOld(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CertCheckInterval = 0 }) // watch + SIGHUP only
	tests := []struct {
		name  string
		write func(certFile, keyFile string)
	}{
		{name: "garbage certificate", write: func(c, _ string) { certstest.WriteAtomic(t, c, []byte("-----BEGIN CERTIFICATE-----\nnope\n")) }},
		{name: "key of another certificate", write: func(_, k string) {
			certstest.WriteAtomic(t, k, e.ca.Issue(t, certstest.LeafOpts{}).KeyPEM)
		}},
		{name: "empty key", write: func(_, k string) { certstest.WriteAtomic(t, k, nil) }},
	}
	certFile, keyFile := filepath.Join(e.dir, "tls.crt"), filepath.Join(e.dir, "tls.key")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certstest.WritePair(t, e.dir, e.leaf) // start from the good pair
			before := metricValue(t, e.reg, "outrigger_cert_reloads_total", map[string]string{"result": "failure"})
			tt.write(certFile, keyFile)
			e.p.ReloadCerts() // as on SIGHUP
			poll.Until(t, 10*time.Second, "refusal counted", func() bool {
				return metricValue(t, e.reg, "outrigger_cert_reloads_total", map[string]string{"result": "failure"}) > before
			})
			leaf, _, err := handshake(e.addr(), e.clientTLS())
			if err != nil {
				t.Fatalf("handshake after refused reload: %v", err)
			}
			if leaf.SerialNumber.Cmp(e.leaf.Cert.SerialNumber) != 0 {
				t.Fatal("refused certificate is being served")
			}
			e.waitReady()
		})
	}
}

func TestMutualTLS(t *testing.T) {
	clientCA := certstest.NewCA(t, "client CA")
	otherCA := certstest.NewCA(t, "other CA")
	alice := clientCA.Issue(t, certstest.LeafOpts{CommonName: "alice", Client: true}).TLS()
	mallory := otherCA.Issue(t, certstest.LeafOpts{CommonName: "mallory", Client: true}).TLS()

	tests := []struct {
		name      string
		auth      string
		cert      *tls.Certificate
		wantOK    bool
		wantIdent string // substring of the identity header upstream; "" = header absent
	}{
		{name: "require/no cert", auth: ClientAuthRequire, cert: nil, wantOK: false},
		{name: "require/trusted cert", auth: ClientAuthRequire, cert: &alice, wantOK: true, wantIdent: "CN=alice"},
		{name: "require/untrusted cert", auth: ClientAuthRequire, cert: &mallory, wantOK: false},
		{name: "default mode requires", auth: "", cert: nil, wantOK: false},
		{name: "optional/no cert", auth: ClientAuthOptional, cert: nil, wantOK: true},
		{name: "optional/trusted cert", auth: ClientAuthOptional, cert: &alice, wantOK: true, wantIdent: "CN=alice"},
		{name: "optional/untrusted cert", auth: ClientAuthOptional, cert: &mallory, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				caFile := filepath.Join(t.TempDir(), "clients.pem")
				certstest.WriteAtomic(t, caFile, clientCA.PEM)
				c.ClientCA = caFile
				c.ClientAuth = tt.auth
				c.ClientCertHeader = clientCertHeader
			})
			tc := e.clientTLS()
			if tt.cert != nil {
				cert := tt.cert
				tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
			}
			req, _ := http.NewRequest(http.MethodGet, "https://"+e.addr()+"/who", nil)
			req.Header.Set(clientCertHeader, "Subject=\"CN=admin\"") // spoof attempt
			resp, err := e.client(tc, false).Do(req)
			if !tt.wantOK {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded with status %d", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			got := string(body)
			if strings.Contains(got, "CN=admin") {
				t.Fatalf("spoofed identity header reached the upstream: %s", got)
			}
			if tt.wantIdent != "" && !strings.Contains(got, tt.wantIdent) {
				t.Fatalf("upstream echo %s lacks identity %q", got, tt.wantIdent)
			}
			if tt.wantIdent == "" && strings.Contains(got, `"client_cert":"S`) {
				t.Fatalf("identity header sent without a client certificate: %s", got)
			}
		})
	}
}
