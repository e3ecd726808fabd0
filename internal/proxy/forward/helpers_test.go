package forward

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// testTimeout guards against deadlocks only; no test asserts durations.
const testTimeout = 10 * time.Second

// directEnv makes newEnv enable Config.DirectHTTP1, so that
// TestDirectModeSuite can run every end-to-end test over the direct path.
const directEnv = "OUTRIGGER_FORWARD_TEST_DIRECT"

var testDirect = os.Getenv(directEnv) == "1"

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log records written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// env is a proxy under test: the Handler behind a real TLS listener.
type env struct {
	h     *Handler
	front *httptest.Server
	reg   *prometheus.Registry
	logs  *syncBuffer
}

// newEnv starts the handler behind an HTTPS server with HTTP/2 enabled.
// mutate, if not nil, adjusts the front server before it starts.
func newEnv(t *testing.T, cfg Config, mutate func(*httptest.Server)) *env {
	t.Helper()
	e := &env{reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	if testDirect {
		cfg.DirectHTTP1 = true
	}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := New(cfg, Deps{Logger: logger, Registry: e.reg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.h = h
	e.front = httptest.NewUnstartedServer(h)
	e.front.EnableHTTP2 = true
	if mutate != nil {
		mutate(e.front)
	}
	e.front.StartTLS()
	t.Cleanup(func() {
		e.front.CloseClientConnections()
		e.front.Close()
		h.CloseIdle()
	})
	return e
}

// client returns an HTTPS client speaking HTTP/2 (h2) or HTTP/1.1 to the front.
func (e *env) client(t *testing.T, h2 bool) *http.Client {
	t.Helper()
	base := e.front.Client().Transport.(*http.Transport).Clone()
	base.DisableCompression = true // so the upstream sees exactly what the proxy adds
	if !h2 {
		base.ForceAttemptHTTP2 = false
		base.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		base.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	t.Cleanup(base.CloseIdleConnections)
	return &http.Client{Transport: base, Timeout: testTimeout}
}

// mustUpstream parses an upstream URL for tests.
func mustUpstream(t *testing.T, s string) Upstream {
	t.Helper()
	u, err := ParseUpstream(s)
	if err != nil {
		t.Fatalf("ParseUpstream(%q): %v", s, err)
	}
	return u
}

// startUpstream starts a plain HTTP/1.1 app on 127.0.0.1:0.
func startUpstream(t *testing.T, h http.Handler) (*httptest.Server, Upstream) {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s, mustUpstream(t, s.URL)
}

// httptestServer starts an app on 127.0.0.1:0 with a ConnState hook.
func httptestServer(t *testing.T, h http.Handler, state func(net.Conn, http.ConnState)) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = state
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// freeAddr returns a loopback address where nothing listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	// Bind without listening and keep the socket until the test ends: the
	// port stays reserved, so no other test's server can take it (a closed
	// listener's port can be handed out again at once), and every connect
	// to it is refused.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

// metricValue returns the value of the counter or gauge name with labels, or 0.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !labelsMatch(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, lp := range m.GetLabel() {
		got[lp.GetName()] = lp.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// testPKI is a CA with helpers to issue server and client certificates.
type testPKI struct {
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	pool  *x509.CertPool
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "outrigger test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{ca: ca, caKey: key, pool: pool}
}

// issue signs a leaf certificate for tmpl (serial, validity and key are filled in).
func (p *testPKI) issue(t *testing.T, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
