package reliability

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/certs/certstest"
	"github.com/outrigger-sidecar/outrigger/internal/loadgen"
)

// serialTracker records which certificate serials clients were served.
type serialTracker struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (s *serialTracker) tlsConfig(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, VerifyConnection: func(cs tls.ConnectionState) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.seen[cs.PeerCertificates[0].SerialNumber.String()] = true
		return nil
	}}
}

func (s *serialTracker) has(serial string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[serial]
}

func (s *serialTracker) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// TestCertRotationUnderLoad rewrites the proxy's certificate and key files
// (each by write-temp-then-rename, as cert-manager's sidecars and editors do,
// so the proxy also sees the half-rotated state: new cert, old key) every
// second while clients that trust only the test CA send load, half of it on
// keep-alive connections and half with a new TLS handshake per request.
// Nothing may fail: not a request, not a handshake.
//
// RELIABILITY_ROTATION_DURATION sets the length (default 20s).
func TestCertRotationUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("rotates certificates for 20s; skipped with -short")
	}
	dur := envDuration(t, "RELIABILITY_ROTATION_DURATION", 20*time.Second)
	dir := t.TempDir()
	ca := certstest.NewCA(t, "reliability test CA")
	first := ca.Issue(t, certstest.LeafOpts{})
	certFile, keyFile := certstest.WritePair(t, dir, first)

	appAddr := freeAddr(t)
	startApp(t, dir, appAddr, "hello rotation")
	tracker := &serialTracker{seen: map[string]bool{}}
	tlsConf := tracker.tlsConfig(ca.Pool())
	p := startProxy(t, freeAddr(t), "http://"+appAddr, tlsConf,
		"--cert", certFile, "--key", keyFile, "--cert-check-interval", "1s")

	keepAlive := goLoad(t, loadgen.Options{URL: p.url + "/", Concurrency: 4, Duration: dur, TLSConfig: tlsConf})
	handshakes := goLoad(t, loadgen.Options{URL: p.url + "/", Concurrency: 2, Duration: dur, TLSConfig: tlsConf,
		NewConnPerRequest: true})
	h2 := goLoad(t, loadgen.Options{URL: p.url + "/", Concurrency: 2, Duration: dur, TLSConfig: tlsConf, HTTP2: true})

	rotations := 0
	last := first
	tick := time.NewTicker(time.Second)
	deadline := time.After(dur - 500*time.Millisecond)
rotate:
	for {
		select {
		case <-tick.C:
			last = ca.Issue(t, certstest.LeafOpts{})
			certstest.WritePair(t, dir, last)
			rotations++
		case <-deadline:
			break rotate
		}
	}
	tick.Stop()
	rk, rh, r2 := keepAlive(), handshakes(), h2()
	report(t, "cert-rotation/keep-alive", rk, "")
	report(t, "cert-rotation/new-conn-per-request", rh, "")
	report(t, "cert-rotation/h2", r2, "")

	lastSerial := last.Cert.SerialNumber.String()
	waitFor(t, 15*time.Second, "a new handshake to be served the last certificate", func() bool {
		code, _ := httpGet(httpsClient(tlsConf), p.url+"/")
		return code == http.StatusOK && tracker.has(lastSerial)
	})
	for name, r := range map[string]loadgen.Result{"keep-alive": rk, "new-conn-per-request": rh, "h2": r2} {
		if r.Failed != 0 || r.Sent == 0 {
			t.Errorf("%s: %d of %d requests failed (errors %v, status %v, samples %q), want 0",
				name, r.Failed, r.Sent, r.Errors, r.ByStatus, r.ErrorSamples)
		}
		if r.Errors[loadgen.ClassTLS] != 0 {
			t.Errorf("%s: %d failed TLS handshakes, want 0", name, r.Errors[loadgen.ClassTLS])
		}
	}
	if r2.ByProto["HTTP/2.0"] != r2.OK {
		t.Errorf("h2 load: protocols %v, want all HTTP/2.0", r2.ByProto)
	}
	// Reloads are coalesced, so not every rotation must be seen, but clients
	// making new handshakes must have met several certificates.
	if n := tracker.count(); n < 3 && rotations >= 5 {
		t.Errorf("clients saw %d distinct certificates over %d rotations, want several", n, rotations)
	}
	t.Logf("rotations=%d distinct certificates served=%d", rotations, tracker.count())
}
