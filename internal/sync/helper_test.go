package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/outrigger-sidecar/outrigger/internal/atomicfile"
	"github.com/outrigger-sidecar/outrigger/internal/source"
)

type configT = source.Config

// appEnv turns the re-executed test binary into a stand-in legacy app:
// --listen, --config (JSON {"greeting","healthy"}), --pid-file, --addr-file.
// "/" shows the greeting, /healthz answers 503 when healthy is false,
// /reloads counts SIGHUP reloads. A config that does not parse on SIGHUP is
// ignored (the old one stays), as real apps do.
const appEnv = "SYNC_TEST_LEGACY_APP"

func TestMain(m *testing.M) {
	if os.Getenv(appEnv) == "1" {
		if err := legacyApp(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "legacy app:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type appConfig struct {
	Greeting string `json:"greeting"`
	Healthy  bool   `json:"healthy"`
}

func legacyApp(args []string) error {
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "")
	conf := fs.String("config", "", "")
	pidFile := fs.String("pid-file", "", "")
	addrFile := fs.String("addr-file", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cur atomic.Pointer[appConfig]
	var reloads atomic.Int64
	load := func() error {
		b, err := os.ReadFile(*conf)
		if err != nil {
			return err
		}
		var c appConfig
		if err := json.Unmarshal(b, &c); err != nil {
			return err
		}
		cur.Store(&c)
		return nil
	}
	if err := load(); err != nil {
		return err
	}
	hup := make(chan os.Signal, 4)
	signal.Notify(hup, syscall.SIGHUP)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, cur.Load().Greeting) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !cur.Load().Healthy {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/reloads", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, reloads.Load()) })
	go func() { _ = http.Serve(ln, mux) }()
	if err := atomicfile.Write(*pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), atomicfile.Options{UID: -1, GID: -1}); err != nil {
		return err
	}
	if err := atomicfile.Write(*addrFile, []byte(ln.Addr().String()), atomicfile.Options{UID: -1, GID: -1}); err != nil {
		return err
	}
	orphan := time.After(2 * time.Minute)
	for {
		select {
		case <-hup:
			if err := load(); err != nil {
				fmt.Fprintln(os.Stderr, "legacy app: reload failed, keeping config:", err)
			}
			reloads.Add(1)
		case <-term:
			return nil
		case <-orphan:
			return errors.New("orphaned")
		}
	}
}

// app is a running stand-in legacy app.
type app struct {
	url, pidFile string
}

// startApp runs the legacy app reading conf (which must exist).
func startApp(t *testing.T, conf string) *app {
	t.Helper()
	dir := t.TempDir()
	a := &app{pidFile: filepath.Join(dir, "app.pid")}
	addrFile := filepath.Join(dir, "addr")
	cmd := exec.Command(os.Args[0], "--listen", "127.0.0.1:0", "--config", conf, "--pid-file", a.pidFile, "--addr-file", addrFile)
	cmd.Env = append(os.Environ(), appEnv+"=1")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	eventually(t, "app writes its address", func() bool {
		b, err := os.ReadFile(addrFile)
		if err == nil && len(b) > 0 {
			a.url = "http://" + string(b)
			return true
		}
		return false
	})
	return a
}

func (a *app) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(a.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (a *app) greeting(t *testing.T) string { _, s := a.get(t, "/"); return s }

func (a *app) reloads(t *testing.T) int {
	_, s := a.get(t, "/reloads")
	n, _ := strconv.Atoi(s)
	return n
}

// eventually polls cond; the timeout is only a deadlock guard.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func appJSON(greeting string, healthy bool) []byte {
	b, _ := json.Marshal(appConfig{Greeting: greeting, Healthy: healthy})
	return b
}

// writeSource replaces the source file atomically, as a ConfigMap update does.
func writeSource(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := atomicfile.Write(path, data, atomicfile.Options{UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
}

// testLogger writes JSON log lines to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewJSONHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// harness runs a Syncer in the background for one test.
type harness struct {
	s    *Syncer
	reg  *prometheus.Registry
	done chan error
}

func startSyncer(t *testing.T, cfg Config, deps Deps) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	deps.Registry = h.reg
	if deps.Logger == nil {
		deps.Logger = testLogger(t)
	}
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return h
}

func (h *harness) status() Status { return h.s.Status().(Status) }

func (h *harness) outcomes(outcome string) int {
	return int(metricValue(h.s.m.applies.WithLabelValues(outcome)))
}

// metricValue reads a counter's or gauge's current value.
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

// gatherCount counts the series of a metric family in reg.
func gatherCount(reg prometheus.Gatherer, name string) int {
	mfs, err := reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// baseConfig is a sync config with the role's defaults, for a file source.
func baseConfig(t *testing.T, src, dest string) Config {
	t.Helper()
	var c Config
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--source", "file://" + src, "--dest", dest}); err != nil {
		t.Fatal(err)
	}
	c.MinReloadInterval = 0
	c.HealthInterval = 100 * time.Millisecond
	c.HealthTimeout = 2 * time.Second
	c.SidecarID = "test-sidecar"
	return c
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// chanSource is an in-memory source for the loop's own edge cases (a
// source that fails, a burst of versions). End-to-end tests use real sources.
type chanSource struct {
	mu      gosync.Mutex
	cur     []byte
	version int
	getErr  error
	changed chan struct{}
	gets    atomic.Int64
}

func newChanSource() *chanSource { return &chanSource{changed: make(chan struct{})} }

func (c *chanSource) set(data []byte) {
	c.mu.Lock()
	c.cur = bytes.Clone(data)
	c.version++
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *chanSource) Get(ctx context.Context) (configT, error) {
	c.gets.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.getErr != nil {
		return configT{}, c.getErr
	}
	if c.version == 0 {
		return configT{}, errors.New("chan source: not found")
	}
	return configT{Version: strconv.Itoa(c.version), Data: bytes.Clone(c.cur)}, nil
}

func (c *chanSource) Watch(ctx context.Context, after string) (configT, error) {
	for {
		c.mu.Lock()
		n, ch := c.version, c.changed
		v, data := strconv.Itoa(n), bytes.Clone(c.cur)
		c.mu.Unlock()
		if n > 0 && v != after {
			return configT{Version: v, Data: data}, nil
		}
		select {
		case <-ctx.Done():
			return configT{}, ctx.Err()
		case <-ch:
		}
	}
}

func (c *chanSource) String() string { return "chan://test" }
