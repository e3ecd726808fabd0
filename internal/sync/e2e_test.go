package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrigger-sidecar/outrigger/internal/configapi"
)

var errUnreachable = errors.New("source unreachable")

// startConfigAPI runs a real config API (bbolt store) on 127.0.0.1.
func startConfigAPI(t *testing.T) (url string, client *configapi.Client) {
	t.Helper()
	cfg := configapi.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.DrainTimeout = time.Second
	srv, err := configapi.New(cfg, configapi.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("config API did not stop")
		}
	})
	url = "http://" + srv.Addr().String()
	client, err = configapi.NewClient(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return url, client
}

// TestBurstFromConfigAPI pushes 100 versions to a real config API as fast
// as it takes them: the sync role applies far fewer, ends on the newest, and
// reports its outcome back to the API.
func TestBurstFromConfigAPI(t *testing.T) {
	api, client := startConfigAPI(t)
	ctx := context.Background()
	if _, err := client.Push(ctx, "app", appJSON("v0", true), "application/json", nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.json")
	if err := os.WriteFile(dest, appJSON("v0", true), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, dest)
	cfg := baseConfig(t, "unused", dest)
	cfg.Source = api + "/v1/configs/app"
	cfg.PidFile = a.pidFile
	cfg.Health = a.url + "/healthz"
	cfg.MinReloadInterval = 200 * time.Millisecond
	h := startSyncer(t, cfg, Deps{})
	eventually(t, "baseline adopted as version 1", func() bool { return h.status().Version == "1" })

	for i := 1; i <= 100; i++ {
		if _, err := client.Push(ctx, "app", appJSON("v"+strconv.Itoa(i), true), "application/json", nil); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "app greets v100", func() bool { return a.greeting(t) == "v100" })
	eventually(t, "status shows version 101", func() bool { return h.status().Version == "101" })
	reloads := a.reloads(t)
	if reloads < 1 || reloads > 20 {
		t.Errorf("100 versions caused %d reloads, want few", reloads)
	}
	t.Logf("100 versions -> %d reloads", reloads)
	// The sidecar reported its outcome to the config API.
	eventually(t, "status reported", func() bool {
		rep, err := client.Status(ctx, "app")
		if err != nil {
			return false
		}
		for _, sc := range rep.Sidecars {
			if sc.Sidecar == "test-sidecar" && sc.Version == 101 && sc.Outcome == OutcomeApplied {
				return true
			}
		}
		return false
	})
}

// TestBurstCoalescesInLoop drives the loop's own coalescing with an
// in-memory source whose versions arrive faster than applies.
func TestBurstCoalescesInLoop(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.json")
	counter := filepath.Join(dir, "reloads")
	src := newChanSource()
	src.set(appJSON("v0", true))
	cfg := baseConfig(t, "unused", dest)
	cfg.Source = "chan://test"
	cfg.ReloadCmd = "echo x >> " + shellQuote(counter)
	cfg.MinReloadInterval = 100 * time.Millisecond
	h := startSyncer(t, cfg, Deps{Source: src})
	for i := 1; i <= 100; i++ {
		src.set(appJSON(fmt.Sprintf("v%d", i), true))
	}
	eventually(t, "dest holds v100", func() bool {
		b, _ := os.ReadFile(dest)
		return string(b) == string(appJSON("v100", true))
	})
	eventually(t, "status v101", func() bool { return h.status().Version == "101" })
	b, _ := os.ReadFile(counter)
	n := len(b) / 2
	if n > 20 {
		t.Errorf("100 versions caused %d reloads", n)
	}
	t.Logf("100 versions -> %d reloads", n)
}

func TestSourceErrorsNeverEmptyFile(t *testing.T) {
	src, dest, a := setup(t, appJSON("v1", true))
	cfg := baseConfig(t, src, dest)
	cfg.PidFile = a.pidFile
	cfg.Resync = 50 * time.Millisecond
	h := startSyncer(t, cfg, Deps{})
	eventually(t, "baseline adopted", func() bool { return h.status().Version != "" })
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	eventually(t, "source errors counted", func() bool { return h.status().SourceErrors >= 2 })
	if got := readFile(t, dest); string(got) != string(appJSON("v1", true)) {
		t.Errorf("dest = %q after the source vanished", got)
	}
	if a.greeting(t) != "v1" {
		t.Error("app lost its config")
	}
	// The source comes back with a new version: applied.
	writeSource(t, src, appJSON("v2", true))
	eventually(t, "app greets v2", func() bool { return a.greeting(t) == "v2" })
}

func TestReadyAndStaleness(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.json")
	src := newChanSource()
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	cfg := baseConfig(t, "unused", dest)
	cfg.Source = "chan://test"
	cfg.Resync = time.Hour
	cfg.MaxStaleness = 2 * time.Hour
	s, err := New(cfg, Deps{Source: src, Clock: func() time.Time { return *now.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(); err == nil {
		t.Fatal("ready without any config")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	src.set(appJSON("v1", true))
	eventually(t, "ready", func() bool { return s.Ready() == nil })
	// Three hours without reaching the source (fake clock): stale.
	later := start.Add(3 * time.Hour)
	now.Store(&later)
	if err := s.Ready(); err == nil {
		t.Fatal("ready although stale")
	}
}

func TestBundleFromDirectory(t *testing.T) {
	dir := t.TempDir()
	srcDir := filepath.Join(dir, "configmap")
	if err := os.Mkdir(srcDir, 0o755); err != nil {
		t.Fatal(err)
	}
	putFile(t, filepath.Join(srcDir, "app.json"), appJSON("v1", true))
	putFile(t, filepath.Join(srcDir, "extra.ini"), []byte("[a]\nb = c\n"))
	dest := filepath.Join(dir, "conf")
	cfg := baseConfig(t, srcDir, dest)
	cfg.Bundle = true
	cfg.Rollback = true
	cfg.ReloadCmd = "test -f " + shellQuote(filepath.Join(dest, "app.json"))
	cfg.Check = "test -f {}/extra.ini"
	h := startSyncer(t, cfg, Deps{})
	eventually(t, "bundle applied", func() bool { return h.outcomes(OutcomeApplied) == 1 })
	if got := readFile(t, filepath.Join(dest, "extra.ini")); string(got) != "[a]\nb = c\n" {
		t.Errorf("extra.ini = %q", got)
	}
	// A broken INI file in the bundle rejects the whole version.
	putFile(t, filepath.Join(srcDir, "extra.ini"), []byte("[unclosed\n"))
	eventually(t, "bundle rejected", func() bool { return h.outcomes(OutcomeRejected) == 1 })
	if got := readFile(t, filepath.Join(dest, "extra.ini")); string(got) != "[a]\nb = c\n" {
		t.Errorf("extra.ini = %q after rejection", got)
	}
}

// putFile writes a file elsewhere and renames it into place, so that a
// directory source never lists a temporary file.
func putFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "staged")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// deadWatch is a source whose watch hangs forever without an error, as
// watches behind a silently dropped connection do.
type deadWatch struct{ *chanSource }

func (d deadWatch) Watch(ctx context.Context, _ string) (configT, error) {
	<-ctx.Done()
	return configT{}, ctx.Err()
}

func TestResyncCatchesDeadWatch(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.json")
	src := newChanSource()
	src.set(appJSON("v1", true))
	cfg := baseConfig(t, "unused", dest)
	cfg.Source = "chan://test"
	cfg.Resync = 50 * time.Millisecond
	h := startSyncer(t, cfg, Deps{Source: deadWatch{src}})
	eventually(t, "v1 via resync", func() bool { return h.status().Version == "1" })
	src.set(appJSON("v2", true))
	eventually(t, "v2 via resync", func() bool { return h.status().Version == "2" })
	if got := readFile(t, dest); string(got) != string(appJSON("v2", true)) {
		t.Errorf("dest = %q", got)
	}
}

func TestResyncOnDemand(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.json")
	src := newChanSource()
	src.set(appJSON("v1", true))
	cfg := baseConfig(t, "unused", dest)
	cfg.Source = "chan://test"
	cfg.Resync = 0 // no ticker: only Resync() reads
	h := startSyncer(t, cfg, Deps{Source: deadWatch{src}})
	h.s.Resync()
	eventually(t, "v1 after Resync", func() bool { return h.status().Version == "1" })
	if src.gets.Load() < 1 {
		t.Error("Resync did not call Get")
	}
	b, err := json.Marshal(h.s.Status())
	if err != nil || !strings.Contains(string(b), `"version":"1"`) || !strings.Contains(string(b), `"outcomes":{"applied":1}`) {
		t.Errorf("status JSON %s, %v", b, err)
	}
}
