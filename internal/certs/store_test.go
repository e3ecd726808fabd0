package certs

import (
	"context"
	"crypto/tls"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/outrigger-sidecar/outrigger/internal/certs/certstest"
	"github.com/outrigger-sidecar/outrigger/internal/testutil/poll"
)

// runStore starts s.Run and stops it at the end of the test.
func runStore(t *testing.T, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func testDeps(t *testing.T) (Deps, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	h := slog.NewJSONHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})
	return Deps{Logger: slog.New(h), Registry: reg}, reg
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func serialOf(s *Store) *big.Int { return s.Current().Leaf.SerialNumber }

func reloads(t *testing.T, reg *prometheus.Registry, kind, result string) float64 {
	t.Helper()
	m, err := newMetrics(reg) // returns the already registered collectors
	if err != nil {
		t.Fatal(err)
	}
	return metricValue(m.reloads.WithLabelValues(kind, result))
}

func TestStoreRotation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "fsnotify watch", cfg: Config{CheckInterval: -1, Debounce: 20 * time.Millisecond}},
		{name: "periodic check", cfg: Config{NoWatch: true, CheckInterval: 30 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := certstest.NewCA(t, "ca")
			dir := t.TempDir()
			first := ca.Issue(t, certstest.LeafOpts{})
			tt.cfg.CertFile, tt.cfg.KeyFile = certstest.WritePair(t, dir, first)
			deps, reg := testDeps(t)
			s, err := New(tt.cfg, deps)
			if err != nil {
				t.Fatal(err)
			}
			if serialOf(s).Cmp(first.Cert.SerialNumber) != 0 {
				t.Fatal("initial certificate not served")
			}
			runStore(t, s.Run)

			second := ca.Issue(t, certstest.LeafOpts{})
			certstest.WritePair(t, dir, second)
			poll.Until(t, 10*time.Second, "rotation", func() bool { return serialOf(s).Cmp(second.Cert.SerialNumber) == 0 })
			got, err := s.GetCertificate(&tls.ClientHelloInfo{})
			if err != nil || got.Leaf.SerialNumber.Cmp(second.Cert.SerialNumber) != 0 {
				t.Fatalf("GetCertificate after rotation = %v, %v", got, err)
			}
			if n := reloads(t, reg, kindServing, "success"); n < 2 {
				t.Fatalf("success reloads = %v, want >= 2", n)
			}
			m, _ := newMetrics(reg)
			if exp := metricValue(m.expiry.WithLabelValues(kindServing)); exp != float64(second.Cert.NotAfter.Unix()) {
				t.Fatalf("expiry gauge = %v, want %v", exp, second.Cert.NotAfter.Unix())
			}
		})
	}
}

func TestStoreKubernetesSecretSwap(t *testing.T) {
	ca := certstest.NewCA(t, "ca")
	dir := t.TempDir()
	first := ca.Issue(t, certstest.LeafOpts{})
	vol := certstest.NewSecretVolume(t, dir, map[string][]byte{"tls.crt": first.CertPEM, "tls.key": first.KeyPEM})
	deps, _ := testDeps(t)
	s, err := New(Config{
		CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"),
		CheckInterval: -1, Debounce: 20 * time.Millisecond,
	}, deps)
	if err != nil {
		t.Fatal(err)
	}
	runStore(t, s.Run)
	for i := range 3 { // several swaps: the old timestamped dir is deleted each time
		next := ca.Issue(t, certstest.LeafOpts{})
		vol.Update(map[string][]byte{"tls.crt": next.CertPEM, "tls.key": next.KeyPEM})
		poll.Until(t, 10*time.Second, "secret swap "+string(rune('1'+i)), func() bool { return serialOf(s).Cmp(next.Cert.SerialNumber) == 0 })
	}
}

func TestStoreRefusesBadUpdates(t *testing.T) {
	ca := certstest.NewCA(t, "ca")
	now := time.Now()
	other := ca.Issue(t, certstest.LeafOpts{})
	expired := ca.Issue(t, certstest.LeafOpts{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	tests := []struct {
		name   string
		mutate func(t *testing.T, certFile, keyFile string)
	}{
		{name: "garbage cert", mutate: func(t *testing.T, c, _ string) { certstest.WriteAtomic(t, c, []byte("garbage")) }},
		{name: "empty cert", mutate: func(t *testing.T, c, _ string) { certstest.WriteAtomic(t, c, nil) }},
		{name: "truncated key", mutate: func(t *testing.T, _, k string) {
			b, _ := os.ReadFile(k)
			certstest.WriteAtomic(t, k, b[:len(b)/2])
		}},
		{name: "mismatched key", mutate: func(t *testing.T, _, k string) { certstest.WriteAtomic(t, k, other.KeyPEM) }},
		{name: "expired pair", mutate: func(t *testing.T, c, k string) {
			certstest.WriteAtomic(t, c, expired.CertPEM)
			certstest.WriteAtomic(t, k, expired.KeyPEM)
		}},
		{name: "deleted cert", mutate: func(t *testing.T, c, _ string) {
			if err := os.Remove(c); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "deleted directory", mutate: func(t *testing.T, c, _ string) {
			if err := os.RemoveAll(filepath.Dir(c)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tls")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			good := ca.Issue(t, certstest.LeafOpts{})
			certFile, keyFile := certstest.WritePair(t, dir, good)
			deps, reg := testDeps(t)
			s, err := New(Config{CertFile: certFile, KeyFile: keyFile, CheckInterval: -1, Debounce: 10 * time.Millisecond}, deps)
			if err != nil {
				t.Fatal(err)
			}
			runStore(t, s.Run)
			tt.mutate(t, certFile, keyFile)
			poll.Until(t, 10*time.Second, "refusal", func() bool { return reloads(t, reg, kindServing, "failure") >= 1 })
			if serialOf(s).Cmp(good.Cert.SerialNumber) != 0 {
				t.Fatal("bad update replaced the good certificate")
			}
			if err := s.Ready(); err != nil {
				t.Fatalf("Ready after refused reload = %v", err)
			}

			// A good pair afterwards is picked up (watches are re-added for a
			// recreated directory).
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			fixed := ca.Issue(t, certstest.LeafOpts{})
			certstest.WritePair(t, dir, fixed)
			poll.Until(t, 10*time.Second, "recovery", func() bool { return serialOf(s).Cmp(fixed.Cert.SerialNumber) == 0 })
		})
	}
}

func TestStoreExplicitReload(t *testing.T) {
	ca := certstest.NewCA(t, "ca")
	dir := t.TempDir()
	first := ca.Issue(t, certstest.LeafOpts{})
	certFile, keyFile := certstest.WritePair(t, dir, first)
	deps, _ := testDeps(t)
	// No watch, no periodic check: only Reload can pick the change up.
	s, err := New(Config{CertFile: certFile, KeyFile: keyFile, NoWatch: true, CheckInterval: -1}, deps)
	if err != nil {
		t.Fatal(err)
	}
	runStore(t, s.Run)
	second := ca.Issue(t, certstest.LeafOpts{})
	certstest.WritePair(t, dir, second)
	s.Reload()
	poll.Until(t, 10*time.Second, "explicit reload", func() bool { return serialOf(s).Cmp(second.Cert.SerialNumber) == 0 })
}

func TestStoreNewErrors(t *testing.T) {
	ca := certstest.NewCA(t, "ca")
	dir := t.TempDir()
	a := ca.Issue(t, certstest.LeafOpts{})
	b := ca.Issue(t, certstest.LeafOpts{})
	certFile, keyFile := certstest.WritePair(t, dir, a)
	otherKey := filepath.Join(dir, "other.key")
	certstest.WriteAtomic(t, otherKey, b.KeyPEM)
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "missing cert file", cfg: Config{CertFile: filepath.Join(dir, "nope.crt"), KeyFile: keyFile}, wantErr: "nope.crt"},
		{name: "mismatch", cfg: Config{CertFile: certFile, KeyFile: otherKey}, wantErr: "does not match"},
		{name: "key without cert", cfg: Config{KeyFile: keyFile}, wantErr: "no certificate file"},
		{name: "cert without key", cfg: Config{CertFile: certFile}, wantErr: "no key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, Deps{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestStoreExpiredInitialIsServed(t *testing.T) {
	// With nothing better available an expired pair is served (clients
	// decide); only a reload refuses to replace a valid one with it.
	ca := certstest.NewCA(t, "ca")
	now := time.Now()
	expired := ca.Issue(t, certstest.LeafOpts{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	certFile, keyFile := certstest.WritePair(t, t.TempDir(), expired)
	s, err := New(Config{CertFile: certFile, KeyFile: keyFile}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if serialOf(s).Cmp(expired.Cert.SerialNumber) != 0 {
		t.Fatal("expired initial pair not served")
	}
}

func TestStoreSelfSigned(t *testing.T) {
	deps, reg := testDeps(t)
	s, err := New(Config{Hostnames: []string{"app.example", "10.1.2.3", "[::1]"}}, deps)
	if err != nil {
		t.Fatal(err)
	}
	if !s.SelfSigned() || s.Ready() != nil {
		t.Fatal("self-signed store not ready")
	}
	leaf := s.Current().Leaf
	if err := leaf.VerifyHostname("app.example"); err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("10.1.2.3"); err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("::1"); err != nil {
		t.Fatal(err)
	}
	if leaf.NotBefore.After(time.Now().Add(-50*time.Minute)) || leaf.NotAfter.Before(time.Now().Add(300*24*time.Hour)) {
		t.Fatalf("validity %v..%v not backdated / about a year", leaf.NotBefore, leaf.NotAfter)
	}
	if reloads(t, reg, kindServing, "success") != 1 {
		t.Fatal("self-signed load not counted")
	}
	s.Reload() // no-op, must not block
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}

	d, err := New(Config{}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Current().Leaf.VerifyHostname("localhost"); err != nil {
		t.Fatalf("default hostnames: %v", err)
	}
}

func TestSharedRegistry(t *testing.T) {
	// A Store and a CAPool (and a second Store) share one registry.
	reg := prometheus.NewRegistry()
	ca := certstest.NewCA(t, "ca")
	dir := t.TempDir()
	certFile, keyFile := certstest.WritePair(t, dir, ca.Issue(t, certstest.LeafOpts{}))
	caFile := filepath.Join(dir, "ca.pem")
	certstest.WriteAtomic(t, caFile, ca.PEM)
	for i := range 2 {
		if _, err := New(Config{CertFile: certFile, KeyFile: keyFile}, Deps{Registry: reg}); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
	if _, err := NewCAPool(CAConfig{File: caFile}, Deps{Registry: reg}); err != nil {
		t.Fatal(err)
	}
	if n := reloads(t, reg, kindServing, "success"); n != 2 {
		t.Fatalf("serving successes = %v", n)
	}
}

// metricValue reads a counter or gauge.
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
