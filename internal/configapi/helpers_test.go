package configapi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testServer struct {
	srv  *Server
	url  string
	logs *syncBuffer
	reg  *prometheus.Registry
	stop func()
}

// startServer runs a real Server over bbolt in a temp dir on 127.0.0.1:0.
func startServer(t testing.TB, mutate func(*Config)) *testServer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.DrainTimeout = 5 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	return runServer(t, cfg)
}

func runServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	srv, err := New(cfg, Deps{
		Logger:   slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry: reg,
		Gatherer: reg,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	scheme := "http"
	if cfg.Cert != "" {
		scheme = "https"
	}
	return &testServer{srv: srv, url: scheme + "://" + srv.Addr().String(), logs: logs, reg: reg, stop: stop}
}

// req is one raw HTTP request for contract tests.
type req struct {
	method, path, body string
	hdr                map[string]string
}

type resp struct {
	code int
	hdr  http.Header
	body string
}

func (ts *testServer) do(t testing.TB, r req) resp {
	t.Helper()
	return doURL(t, http.DefaultClient, ts.url, r)
}

func doURL(t testing.TB, hc *http.Client, base string, r req) resp {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, r.method, base+r.path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	for k, v := range r.hdr {
		hr.Header.Set(k, v)
	}
	res, err := hc.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", r.method, r.path, err)
	}
	return resp{code: res.StatusCode, hdr: res.Header, body: string(b)}
}

func put(path, ct, body string) req {
	return req{method: "PUT", path: path, body: body, hdr: map[string]string{"Content-Type": ct}}
}

func get(path string) req { return req{method: "GET", path: path} }

func withHdr(r req, k, v string) req {
	h := map[string]string{}
	for a, b := range r.hdr {
		h[a] = b
	}
	h[k] = v
	r.hdr = h
	return r
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
