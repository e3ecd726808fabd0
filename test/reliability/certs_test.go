package reliability

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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

// rotator swaps in a new certificate and key.
type rotator interface {
	rotate(l *certstest.Leaf)
}

// renamedFiles rewrites tls.crt and tls.key one after the other, each by
// write-temp-then-rename, so the proxy also sees the half-rotated state (new
// certificate, old key) and must keep the last good pair meanwhile.
type renamedFiles struct {
	t   testing.TB
	dir string
}

func (r renamedFiles) rotate(l *certstest.Leaf) { certstest.WritePair(r.t, r.dir, l) }

// secretVolume swaps both files at once the way the kubelet updates a
// mounted Secret: a new timestamped directory and an atomic rename of the
// "..data" symlink (the files are symlinks through it).
type secretVolume struct{ v *certstest.SecretVolume }

func (s secretVolume) rotate(l *certstest.Leaf) {
	s.v.Update(map[string][]byte{"tls.crt": l.CertPEM, "tls.key": l.KeyPEM})
}

// TestCertRotationUnderLoad replaces the proxy's certificate and key every
// second while clients that trust only the test CA send load on keep-alive
// HTTP/1.1 connections, with a new TLS handshake per request, and over
// HTTP/2. Nothing may fail: not a request, not a handshake. Two ways of
// replacing the files are covered: plain files renamed into place one after
// the other, and a Kubernetes Secret volume's "..data" symlink swap.
//
// RELIABILITY_ROTATION_DURATION sets the length of the plain-file case
// (default 20s); the Secret volume case runs half as long.
func TestCertRotationUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("rotates certificates for 30s; skipped with -short")
	}
	dur := envDuration(t, "RELIABILITY_ROTATION_DURATION", 20*time.Second)
	cases := []struct {
		name  string
		dur   time.Duration
		setup func(t *testing.T, dir string, first *certstest.Leaf) (certFile, keyFile string, r rotator)
	}{
		{"renamed files", dur, func(t *testing.T, dir string, first *certstest.Leaf) (string, string, rotator) {
			c, k := certstest.WritePair(t, dir, first)
			return c, k, renamedFiles{t, dir}
		}},
		{"kubernetes secret volume", dur / 2, func(t *testing.T, dir string, first *certstest.Leaf) (string, string, rotator) {
			vol := filepath.Join(dir, "secret")
			if err := os.Mkdir(vol, 0o755); err != nil {
				t.Fatal(err)
			}
			v := certstest.NewSecretVolume(t, vol, map[string][]byte{"tls.crt": first.CertPEM, "tls.key": first.KeyPEM})
			return filepath.Join(vol, "tls.crt"), filepath.Join(vol, "tls.key"), secretVolume{v}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rotationUnderLoad(t, tc.name, tc.dur, tc.setup)
		})
	}
}

func rotationUnderLoad(t *testing.T, name string, dur time.Duration,
	setup func(t *testing.T, dir string, first *certstest.Leaf) (string, string, rotator)) {
	dir := t.TempDir()
	ca := certstest.NewCA(t, "reliability test CA")
	first := ca.Issue(t, certstest.LeafOpts{})
	certFile, keyFile, rot := setup(t, dir, first)

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
			rot.rotate(last)
			rotations++
		case <-deadline:
			break rotate
		}
	}
	tick.Stop()
	rk, rh, r2 := keepAlive(), handshakes(), h2()
	note := fmt.Sprintf("rotations=%d in %s", rotations, dur)
	prefix := "cert-rotation/" + strings.ReplaceAll(name, " ", "-")
	report(t, prefix+"/keep-alive", rk, note)
	report(t, prefix+"/new-conn-per-request", rh, note)
	report(t, prefix+"/h2", r2, note)

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
	// The server side must agree: no handshake failed at the proxy either.
	if n := metricValue(t, "http://"+p.admin+"/metrics", "outrigger_tls_handshake_errors_total"); n != 0 {
		t.Errorf("proxy counted %v failed TLS handshakes during rotation, want 0", n)
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
