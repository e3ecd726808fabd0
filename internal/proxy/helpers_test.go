package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/outrigger-sidecar/outrigger/internal/certs/certstest"
	"github.com/outrigger-sidecar/outrigger/internal/testutil/poll"
)

// echo is what the test upstream reports about a request.
type echo struct {
	Path       string `json:"path"`
	Query      string `json:"query"`
	Host       string `json:"host"`
	XFF        string `json:"xff"`
	ClientCert string `json:"client_cert"`
}

const clientCertHeader = "X-Client-Cert-Subject"

// upstream is a real HTTP server on 127.0.0.1 standing in for the app.
// /slow blocks until release is closed (or the test ends); slowStarted
// receives one value per /slow request that arrived.
type upstream struct {
	srv         *httptest.Server
	release     chan struct{}
	slowStarted chan struct{}
	once        sync.Once
}

func newUpstream(t testing.TB) *upstream {
	t.Helper()
	u := &upstream{release: make(chan struct{}), slowStarted: make(chan struct{}, 16)}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			serveEchoUpgrade(w, r)
			return
		}
		if r.URL.Path == "/slow" {
			u.slowStarted <- struct{}{}
			select {
			case <-u.release:
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Second): // deadlock guard
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echo{
			Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host,
			XFF: r.Header.Get("X-Forwarded-For"), ClientCert: r.Header.Get(clientCertHeader),
		})
	}))
	t.Cleanup(func() { u.releaseSlow(); u.srv.Close() })
	return u
}

func (u *upstream) releaseSlow() { u.once.Do(func() { close(u.release) }) }

func (u *upstream) url() string { return u.srv.URL }

// env is one proxy under test with its CA, files and registry.
type env struct {
	t        testing.TB
	ca       *certstest.CA
	dir      string
	leaf     *certstest.Leaf
	up       *upstream
	reg      *prometheus.Registry
	p        *Proxy
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// http1FastFlag selects --http1-fast for every test of the package (on, as
// the default); CI also runs them with net/http alone:
// go test ./internal/proxy -args -http1-fast=false
var http1FastFlag = flag.Bool("http1-fast", DefaultConfig().HTTP1Fast, "run the proxy tests with --http1-fast")

// baseConfig is a fast test configuration against up, with cert files in dir.
func baseConfig(up *upstream, certFile, keyFile string) Config {
	c := DefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.Upstream = up.url()
	c.CertFile, c.KeyFile = certFile, keyFile
	c.ShutdownDelay = 0
	c.DrainTimeout = 10 * time.Second
	c.UpstreamCheckInterval = 50 * time.Millisecond
	c.AccessLog = false
	c.HTTP1Fast = *http1FastFlag
	return c
}

// newEnv starts a proxy; mutate adjusts the config before New.
func newEnv(t testing.TB, mutate func(*Config)) *env {
	t.Helper()
	e := &env{t: t, ca: certstest.NewCA(t, "test CA"), dir: t.TempDir(), up: newUpstream(t), reg: prometheus.NewRegistry()}
	e.leaf = e.ca.Issue(t, certstest.LeafOpts{})
	certFile, keyFile := certstest.WritePair(t, e.dir, e.leaf)
	cfg := baseConfig(e.up, certFile, keyFile)
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := New(cfg, Deps{Logger: testLogger(t), Registry: e.reg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.p = p
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan error, 1)
	go func() { e.done <- p.Run(ctx) }()
	t.Cleanup(func() { _ = e.stop() })
	return e
}

// stop cancels Run and returns its result.
func (e *env) stop() error {
	var err error
	e.stopOnce.Do(func() {
		e.cancel()
		select {
		case err = <-e.done:
		case <-time.After(30 * time.Second):
			e.t.Error("Run did not return")
		}
	})
	return err
}

func (e *env) addr() string { return e.p.Addr().String() }

func (e *env) waitReady() {
	e.t.Helper()
	poll.Until(e.t, 10*time.Second, "proxy ready", func() bool { return e.p.Ready() == nil })
}

// clientTLS trusts the test CA.
func (e *env) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost"}
}

// client is an HTTP client for the proxy; h2 selects HTTP/2 via ALPN.
func (e *env) client(tc *tls.Config, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: h2, DisableKeepAlives: false}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// get fetches path and decodes the upstream's echo.
func get(t testing.TB, c *http.Client, url string, hdr http.Header) (*http.Response, echo) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ec echo
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &ec); err != nil {
			t.Fatalf("decode %q: %v", body, err)
		}
	}
	return resp, ec
}

// handshake dials the proxy and returns the served leaf, or the error.
func handshake(addr string, tc *tls.Config) (*x509.Certificate, tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, tc)
	if err != nil {
		return nil, tls.ConnectionState{}, err
	}
	defer c.Close()
	st := c.ConnectionState()
	return st.PeerCertificates[0], st, nil
}

// metricValue sums the samples of a metric family with matching labels.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
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
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// testLogger logs into the test output and records lines for assertions;
// lines written after the test ended are dropped (t.Log would panic).
// Benchmarks discard logs.
func testLogger(t testing.TB) *slog.Logger {
	if _, ok := t.(*testing.B); ok {
		return slog.New(slog.DiscardHandler)
	}
	w := &logWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type logWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// syncBuffer is a log sink safe for concurrent writers and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newBufLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// serveEchoUpgrade switches to a trivial "echo" protocol (like a WebSocket
// without framing) and echoes bytes until the peer closes.
func serveEchoUpgrade(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "echo") {
		http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	_ = brw.Flush()
	_, _ = io.Copy(conn, brw)
}
